"""The modern cells (minGRU, minLSTM, the signed minGRU, the LRU, sLSTM) equal an unroll of their
papers' equations written out here, apart from the module's code; the gate theory is exact for a
diagonal recurrence; the registry contract holds (stacked, bidirectional, layer_stack). Their paths
(scan, loop and the kernels) against one another: tests/test_modern_paths.py."""
import math

import pytest
import torch

from bench.cells.build import build_model
from bench.cells.registry import family, spec
from bench.cells.stack import layer_stack
from bench.measures.gradients import profile_rows

DIAGONAL = list(family("diagonal"))    # every registered diagonal cell (mingru, minlstm, lru, ...)
MODERN = DIAGONAL + list(family("exponential"))


@pytest.mark.parametrize("cell", MODERN)
def test_layer_stack_keeps_the_path_and_the_function(cell):
    extra = {"scan": False} if cell in DIAGONAL else {}
    model = build_model(cell, 4, 6, 3, True, **extra).double()
    x = torch.randn(10, 2, 4, dtype=torch.float64)
    h = x
    for layer in layer_stack(model):
        assert getattr(layer, "scan", False) is False
        h, _ = layer(h)
    assert torch.allclose(h, model(x)[0], atol=1e-13)


def paper_unroll(cell, m, x):
    """The single-layer forward pass from the papers' equations, step by step, written apart
    from bench/cells/diagonal.py (no log space, no stabiliser): (T, B, I) -> (T, B, H)."""
    sig, H, out = torch.sigmoid, m.hidden_size, []
    g = lambda v: torch.where(v >= 0, v + 0.5, sig(v))
    if cell == "lru":
        lam = torch.exp(-torch.exp(m.nu_l0) + 1j * torch.exp(m.theta_l0))
        B = (m.weight_b_re_l0 + 1j * m.weight_b_im_l0) * torch.exp(m.gamma_l0)[:, None]
        C = m.weight_c_re_l0 + 1j * m.weight_c_im_l0
        h = torch.zeros(x.shape[1], H, dtype=torch.complex128)
    else:
        h = c = n = torch.zeros(x.shape[1], H, dtype=torch.float64)
    for x_t in x:
        if cell == "lru":
            u = torch.nn.functional.gelu(x_t @ m.weight_ih_l0.T + m.bias_ih_l0)
            h = lam * h + u.to(h.dtype) @ B.T
            out.append((h @ C.T).real + u @ m.weight_d_l0.T)
            continue
        if cell == "slstm":
            i, f, z, o = (x_t @ m.weight_ih_l0.T + m.bias_ih_l0 + h @ m.weight_hh_l0.T + m.bias_hh_l0).chunk(4, -1)
            f = sig(f) if m.forget_gate == "sigmoid" else torch.exp(f)  # official code / paper
            c = f * c + torch.exp(i) * torch.tanh(z)    # exponential input gate, unstabilised
            n = f * n + torch.exp(i)
            h = sig(o) * c / n
        else:
            proj = x_t @ m.weight_ih_l0.T + m.bias_ih_l0
            if cell == "mingru":
                k, h_tilde = proj.chunk(2, -1)
                z = sig(k)
                h = (1 - z) * h + z * g(h_tilde)
            elif cell == "mingru_signed":  # the transition 1 - 2z in (-1, 1)
                k, h_tilde = proj.chunk(2, -1)
                z = sig(k)
                h = (1 - 2 * z) * h + z * g(h_tilde)
            else:
                k_f, k_i, h_tilde = proj.chunk(3, -1)
                f, i = sig(k_f), sig(k_i)
                h = f / (f + i) * h + i / (f + i) * g(h_tilde)
        out.append(h)
    return torch.stack(out)


@pytest.mark.parametrize("cell,scan", [(c, s) for c in DIAGONAL for s in (True, False)]
                         + [("slstm", None), ("slstm", "sigmoid")])
def test_module_equals_the_papers_equations_unrolled(cell, scan):
    torch.manual_seed(3)
    extra = {} if scan is None else {"forget_gate": scan} if scan == "sigmoid" else {"scan": scan}
    model = build_model(cell, 5, 7, **extra).double()
    if scan == "sigmoid":  # the official init sets W_hh to zero: move it off zero to test it
        with torch.no_grad():
            model.weight_hh_l0.normal_(0, 0.3)
    x = torch.randn(30, 4, 5, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x)[0], paper_unroll(cell, model, x), rtol=1e-9, atol=1e-12)


def test_slstm_stabiliser_keeps_large_preactivations_finite():
    """exp(f~) overflows float32 above 88; the stabilised cell does not."""
    from bench.cells.xlstm import SLSTM
    m = SLSTM(3, 4)
    with torch.no_grad():
        m.bias_ih_l0.fill_(200.0)
        out, _ = m(torch.randn(50, 2, 3))
    assert torch.isfinite(out).all()


def test_lru_ring_initialisation():
    """|lambda| on the ring [r_min, r_max], phases in [0, max_phase], gamma = sqrt(1 - |lambda|^2)."""
    from bench.cells.lru import LRU
    torch.manual_seed(0)
    m = LRU(2, 2000, r_min=0.4, r_max=0.8, max_phase=1.0)
    lam = torch.exp(m.log_lambda()).detach()
    assert 0.4 <= lam.abs().min() and lam.abs().max() <= 0.8
    assert (lam.angle() >= 0).all() and lam.angle().max() <= 1.0
    # uniform by area: |lambda|^2 uniform on [0.16, 0.64], so its mean is 0.40
    assert (lam.abs() ** 2).mean().item() == pytest.approx(0.40, abs=0.01)
    assert torch.allclose(torch.exp(m.gamma_l0).detach(), torch.sqrt(1 - lam.abs() ** 2), atol=1e-6)
    with pytest.raises(ValueError, match="ring radii"):
        LRU(2, 4, r_min=0.9, r_max=1.0)


@pytest.mark.slow  # 400 steps of float64 profiles per cell; the LRU's exact case below stays in `make test`
@pytest.mark.parametrize("cell", DIAGONAL)
def test_gate_theory_is_exact_for_a_diagonal_recurrence(cell):
    """d h_t / d h_{t-1} = diag(a_t): far from the readout the slowest unit's product of a_t
    sets the decay, so the measured per-step decay approaches the slowest unit's time-mean
    log10 a (gate_decay_per_step), and the Jacobian-product exponent equals it."""
    torch.manual_seed(1)
    model = build_model(cell, 4, 16, scan=False).double()  # the loop: see the scan's floor below
    x = torch.randn(400, 8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    rows = sorted((r for r in profile_rows(model, x, seed=0, condition="init") if r["layer"] == 0),
                  key=lambda r: r["distance"])
    theory = rows[0]["gate_decay_per_step"]
    far = [r for r in rows if r["distance"] >= 200 and math.isfinite(r["log10_grad_norm"])]
    slope = (far[-1]["log10_grad_norm"] - far[0]["log10_grad_norm"]) / (far[-1]["distance"] - far[0]["distance"])
    assert slope == pytest.approx(theory, rel=0.1, abs=2e-3)
    assert rows[0]["jacobian_decay_per_step"] == pytest.approx(theory, rel=0.05, abs=1e-3)


def test_gate_theory_is_exact_for_the_lru():
    """The LRU's Jacobian is diag(lambda): its decay is log10 max |lambda| exactly, at every step.
    A ring far from 1 so that the decay is steep and the tolerance tight."""
    from bench.cells.lru import LRU
    from bench.cells.registry import spec as entry
    torch.manual_seed(1)
    model = LRU(4, 16, scan=False, r_min=0.5, r_max=0.9).double()
    x = torch.randn(300, 8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    rows = sorted((r for r in profile_rows(model, x, seed=0, condition="init") if r["layer"] == 0),
                  key=lambda r: r["distance"])
    exact = math.log10(torch.exp(model.log_lambda()).abs().max().item())
    assert rows[0]["gate_decay_per_step"] == pytest.approx(exact, rel=1e-9)
    assert rows[0]["jacobian_decay_per_step"] == pytest.approx(exact, rel=0.01)  # power iteration
    far = [r for r in rows if 150 <= r["distance"] <= 250]
    slope = (far[-1]["log10_grad_norm"] - far[0]["log10_grad_norm"]) / (far[-1]["distance"] - far[0]["distance"])
    assert slope == pytest.approx(exact, rel=0.03)
    assert entry("lru").memory_gate_values(model, x, None).shape == (300, 8, 16)


@pytest.mark.parametrize("cell", DIAGONAL)
def test_parameter_count_has_no_recurrent_matrix(cell):
    s = spec(cell)
    model = build_model(cell, 3, 7, 2, True)
    assert sum(p.numel() for p in model.parameters()) == s.params(3, 7, 2, True)
    if cell == "lru":   # W_ih, b_ih; nu, theta, gamma; B and C re/im; D
        assert s.params(3, 7) == 7 * 3 + 7 + 3 * 7 + 5 * 7 * 7
    else:
        assert s.params(3, 7) == s.gates * 7 * (3 + 1)
    assert not any("weight_hh" in n for n, _ in model.named_parameters())
