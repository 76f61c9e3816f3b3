"""Analytic oracles for the gradients measure, in float64, to ~1e-12."""
import math

import pytest
import torch
from torch import nn

from bench.cells.build import build_model
from bench.cells.classic import lstm_cell
from bench.cells.registry import REGISTRY
from bench.measures.gradients import distance, profile_rows, projection

TOL = 1e-12
T, B, H = 30, 3, 6


def _orthogonal(n, seed=0):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def _norms(rows, layer=0):
    return [r["grad_norm"] for r in sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["t"])]


@pytest.mark.parametrize("a", [0.9, 1.0, 1.1])
def test_linear_regime_rnn_gradient_is_a_to_the_k(a):
    """tanh RNN, W_hh = a Q, W_ih = I, zero biases, x = 0, h0 = 0: h stays 0, tanh' = 1, so
    dL/dx_{T-1-k} = dL/dh_{T-1-k} = (W_hh^T)^k w and its norm is a^k ||w||."""
    rnn = nn.RNN(H, H, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(a * _orthogonal(H))
        rnn.weight_ih_l0.copy_(torch.eye(H))
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    rows = profile_rows(rnn, torch.zeros(T, B, H, dtype=torch.float64), seed=3, condition="init")
    w_norm = 10 ** projection(B, H, 3, torch.float64, "cpu").norm(dim=-1).log10().mean().item()  # geometric mean
    for t, g in enumerate(_norms(rows)):
        k = T - 1 - t
        assert abs(g - a ** k * w_norm) <= TOL * max(1.0, a ** k * w_norm)
    # Lyapunov exponent of the Jacobian product (a Q)^k is log10 a; tanh' = 1 at h = 0.
    assert rows[0]["jacobian_decay_per_step"] == pytest.approx(math.log10(a), abs=1e-9)
    assert rows[0]["rnn_heuristic_decay_per_step"] == pytest.approx(math.log10(a), abs=1e-9)
    assert math.isnan(rows[0]["gate_decay_per_step"])  # rnn has no gate: its column is the heuristic
    assert rows[0]["spectral_radius"] == pytest.approx(a, rel=1e-12)


def _lstm_unroll(lstm, x):
    """Step-by-step unroll with retained cell states; returns loss, cells, forget gates."""
    w_ih, w_hh, b_ih, b_hh = (getattr(lstm, n) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    h = c = torch.zeros(x.shape[1], lstm.hidden_size, dtype=x.dtype)
    cells, gates = [], []
    for t in range(x.shape[0]):
        h, c, f = lstm_cell(x[t] @ w_ih.T + b_ih, h, c, w_hh, b_hh)
        c.retain_grad()
        cells.append(c)
        gates.append(f.detach())
    return h, cells, gates


@pytest.mark.parametrize("forget_bias", [0.0, 2.0])
def test_lstm_cell_path_is_product_of_forget_gates(forget_bias):
    """W_hh = 0: c_t reaches the loss only through c_{t+1} = f_{t+1} c_t + ..., so
    dL/dc_t = dL/dc_{T-1} * prod_{s>t} f_s, elementwise."""
    lstm = build_model("lstm", 4, H, forget_bias=forget_bias).double()
    with torch.no_grad():
        lstm.weight_hh_l0.zero_()
    x = torch.randn(T, B, 4, dtype=torch.float64)
    h, cells, gates = _lstm_unroll(lstm, x)
    (h * torch.randn(B, H, dtype=torch.float64)).sum().backward()
    upstream = cells[-1].grad
    for t in range(T - 1):
        expected = upstream * torch.stack(gates[t + 1:]).prod(dim=0)
        assert (cells[t].grad - expected).abs().max() <= TOL * upstream.abs().max()


def test_huge_forget_bias_gives_constant_cell_gradient():
    lstm = build_model("lstm", 4, H, forget_bias=60.0).double()  # sigmoid(60 + O(1)) == 1.0
    with torch.no_grad():
        lstm.weight_hh_l0.zero_()
    h, cells, gates = _lstm_unroll(lstm, torch.randn(T, B, 4, dtype=torch.float64))
    h.sum().backward()
    assert all(bool((g == 1.0).all()) for g in gates)
    for c in cells:
        assert (c.grad - cells[-1].grad).abs().max() <= TOL


def test_identity_relu_rnn_keeps_constant_gradient():
    """ReLU RNN, W_hh = I, positive weights, biases and inputs: every pre-activation is positive,
    relu' = 1, so dL/dx_t = W_ih^T w for every t."""
    rnn = nn.RNN(4, H, nonlinearity="relu").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.eye(H))
        rnn.weight_ih_l0.uniform_(0.1, 1.0)
        rnn.bias_ih_l0.fill_(0.1)
        rnn.bias_hh_l0.zero_()
    x = torch.rand(T, B, 4, dtype=torch.float64) + 0.1
    norms = _norms(profile_rows(rnn, x, seed=0, condition="init"))
    assert max(norms) - min(norms) <= TOL * max(norms)


CELL_STEP = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


@pytest.mark.parametrize("cell", sorted(CELL_STEP))
def test_fused_module_gradients_equal_step_by_step_unroll(cell):
    model = build_model(cell, 4, H).double()
    step = CELL_STEP[cell](4, H).double()
    step.load_state_dict({k.replace("_l0", ""): v for k, v in model.state_dict().items()})
    x = torch.randn(T, B, 4, dtype=torch.float64)
    fused = _norms(profile_rows(model, x, seed=1, condition="init"))
    xs = x.clone().requires_grad_(True)
    state = None
    for t in range(T):
        state = step(xs[t], state)
    h = state[0] if cell == "lstm" else state
    (h * projection(B, H, 1, torch.float64, "cpu")).sum().backward()
    unrolled = (10 ** xs.grad.norm(dim=-1).log10().mean(dim=1)).tolist()  # geometric mean over samples
    assert max(abs(a - b) for a, b in zip(fused, unrolled)) <= TOL


@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_bidirectional_profile_is_u_shaped(cell):
    model = build_model(cell, 4, H, bidirectional=True).double()
    rows = profile_rows(model, torch.randn(T, B, 4, dtype=torch.float64), seed=0, condition="init")
    assert [r["distance"] for r in rows] == distance(T, True)
    assert max(r["distance"] for r in rows) == (T - 1) // 2  # the longest path halves
    norms = _norms(rows)
    middle = norms[T // 2 - 2: T // 2 + 2]
    assert norms[0] > max(middle) and norms[-1] > max(middle)


@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_layer_rows_and_fused_x_grad(cell):
    """num_layers = 3: rows for layers 0..2; layer 0 (the fused module's x.grad) equals the
    input gradient of the layer-by-layer copy, and layer 2 is the top layer's input."""
    from bench.cells.stack import layer_stack
    from bench.measures.gradients import readout
    model = build_model(cell, 4, H, num_layers=3).double()
    x = torch.randn(T, B, 4, dtype=torch.float64)
    rows = profile_rows(model, x, seed=0, condition="init")
    assert sorted({r["layer"] for r in rows}) == [0, 1, 2]
    xs = x.clone().requires_grad_(True)
    h = xs
    for layer in layer_stack(model):
        h, _ = layer(h)
    (readout(h, H, False) * projection(B, H, 0, torch.float64, "cpu")).sum().backward()
    unrolled = (10 ** xs.grad.norm(dim=-1).log10().mean(dim=1)).tolist()  # geometric mean over samples
    assert max(abs(a - b) for a, b in zip(_norms(rows, 0), unrolled)) <= TOL * max(unrolled)
    assert all(math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in rows)


def test_overflow_is_a_measurement():
    rnn = nn.RNN(H, H, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1e3 * _orthogonal(H))
        rnn.weight_ih_l0.copy_(torch.eye(H))
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    rows = profile_rows(rnn, torch.zeros(150, B, H, dtype=torch.float64), seed=0, condition="init")
    assert {r["status"] for r in rows} == {"overflow"}
    k = min(r["distance"] for r in rows if not math.isfinite(r["grad_norm"]))
    assert f"from distance {k} " in rows[0]["error"] and 100 < k < 110  # 1e3^k passes 1.8e308


@pytest.mark.parametrize("cell,forget_bias", [("rnn", None), ("gru", None), ("lstm", None), ("lstm", 1.0),
                                              ("ref_lstm", 2.0)])
def test_jacobian_theory_predicts_measured_decay(cell, forget_bias):
    """The top Lyapunov exponent of the recurrent Jacobians predicts the measured slope."""
    import pandas as pd

    from analysis.reduce.fits import decay_summary
    torch.manual_seed(0)
    model = build_model(cell, 8, 32, forget_bias=forget_bias).double()
    rows = profile_rows(model, torch.randn(150, 16, 8, dtype=torch.float64), seed=0, condition="init")
    measured = decay_summary(pd.DataFrame(rows), 0.1, 0.9)["decay_per_step"]
    assert rows[0]["jacobian_decay_per_step"] == pytest.approx(measured, abs=0.01)


def test_gate_theory_is_the_slowest_unit_not_the_mean():
    """Constant forget gates f_j = sigmoid(b_j) (no input or recurrent weight on the forget
    slice): the top exponent of the product of diag(f) is max_j log10 f_j. The mean over units
    (the old statistic) would be far below it."""
    lstm = nn.LSTM(H, H).double()
    biases = torch.full((H,), -1.0, dtype=torch.float64)
    biases[3] = 5.0
    with torch.no_grad():
        lstm.weight_ih_l0[H:2 * H].zero_()
        lstm.weight_hh_l0[H:2 * H].zero_()
        lstm.bias_ih_l0[H:2 * H].copy_(biases)
        lstm.bias_hh_l0[H:2 * H].zero_()
    x = torch.randn(T, B, H, dtype=torch.float64)
    rows = profile_rows(lstm, x, seed=1, condition="init")
    slowest = math.log10(torch.sigmoid(torch.tensor(5.0, dtype=torch.float64)).item())
    mean = torch.log10(torch.sigmoid(biases)).mean().item()
    assert rows[0]["gate_decay_per_step"] == pytest.approx(slowest, abs=1e-12)
    assert rows[0]["slowest_gate"] == pytest.approx(10 ** slowest, abs=1e-12)
    assert abs(rows[0]["gate_decay_per_step"] - mean) > 0.1


def _positive_relu_rnn(W_hh, n=H):
    """ReLU RNN with W_ih = I, zero biases and x >= 0: every pre-activation stays >= 0, the ReLU
    is the identity on the trajectory, and dL/dx_{T-1-k} = (W_hh^T)^k w exactly."""
    rnn = build_model("rnn", n, n, init="identity", nonlinearity="relu").double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(n, dtype=torch.float64))
        rnn.weight_hh_l0.copy_(W_hh)
    return rnn


def test_identity_relu_rnn_keeps_the_gradient_norm():
    """IRNN (Le et al. 2015): W_hh = I from `model.init=identity`, relu: the norm is the same at
    every distance."""
    rnn = build_model("rnn", H, H, init="identity", nonlinearity="relu").double()
    assert torch.equal(rnn.weight_hh_l0, torch.eye(H, dtype=torch.float64))
    x = torch.rand(T, B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rnn.weight_ih_l0.abs_()
    norms = _norms(profile_rows(rnn, x, seed=0, condition="init"))
    assert max(abs(n / norms[-1] - 1) for n in norms) < TOL


def test_orthogonal_linear_rnn_keeps_the_gradient_norm_exactly():
    """An orthogonal W_hh (here a permutation, so x >= 0 keeps the ReLU linear) preserves the
    norm of the backward vector at every step."""
    perm = torch.eye(H, dtype=torch.float64)[torch.randperm(H, generator=torch.Generator().manual_seed(1))]
    rnn = _positive_relu_rnn(perm)
    x = torch.rand(T, B, H, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    norms = _norms(profile_rows(rnn, x, seed=0, condition="init"))
    w_norm = projection(B, H, 0, torch.float64, "cpu").norm(dim=-1)
    assert max(abs(n / torch.exp(torch.log(w_norm).mean()).item() - 1) for n in norms) < TOL


def test_orthogonal_tanh_rnn_decays_slower_as_the_gain_grows():
    """The gain sweep's analytic ordering: an orthogonal tanh RNN's measured decay per step
    rises with the gain (each Jacobian has norm <= gain, since tanh' <= 1)."""
    x = torch.randn(60, 8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    slopes = []
    for gain in (0.5, 0.8, 1.0):
        torch.manual_seed(0)
        rnn = build_model("rnn", 4, 16, init="orthogonal", gain=gain).double()
        logs = [math.log10(n) for n in _norms(profile_rows(rnn, x, seed=0, condition="init"))]
        slopes.append((logs[0] - logs[-1]) / (len(logs) - 1))  # log10 per step, far vs near
    assert slopes == sorted(slopes)


def test_a_diverged_rnn_gets_nan_theory_not_a_crash():
    """After training diverged, W_hh holds NaN: LAPACK's eigvals would abort the process (seen
    in a fair-comparison sweep); the theory columns are NaN and the profile is an overflow."""
    rnn = build_model("rnn", 4, H, init="identity", nonlinearity="relu").double()
    with torch.no_grad():
        rnn.weight_hh_l0[0, 0] = float("nan")
    rows = profile_rows(rnn, torch.randn(T, B, 4, dtype=torch.float64), seed=0, condition="trained")
    assert math.isnan(rows[0]["spectral_radius"]) and math.isnan(rows[0]["rnn_heuristic_decay_per_step"])
    assert rows[0]["status"] == "overflow"
