"""The diagonal cells (minGRU, minLSTM): the parallel scan and the sequential loop agree to
float64 rounding, outputs and gradients; the gate theory is exact for a diagonal recurrence;
the registry contract holds (stacked, bidirectional, layer_stack)."""
import math

import pytest
import torch

from bench.cells import layer_stack
from bench.measures.gradients import profile_rows
from bench.modern import log_g, parallel_scan, sequential_scan
from bench.registry import build_model, spec

DIAGONAL = ["mingru", "minlstm"]


def test_log_g_is_the_log_of_a_positive_continuous_g():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    g = torch.where(x >= 0, x + 0.5, torch.sigmoid(x))
    assert torch.allclose(log_g(x), torch.log(g), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("h0", [False, True])
def test_scan_equals_loop_on_raw_coefficients(h0):
    gen = torch.Generator().manual_seed(0)
    log_a = -torch.rand(500, 3, 4, generator=gen, dtype=torch.float64) * 0.1   # long memory
    log_b = torch.randn(500, 3, 4, generator=gen, dtype=torch.float64)
    start = torch.randn(3, 4, generator=gen, dtype=torch.float64) if h0 else None
    a, b = parallel_scan(log_a, log_b, start), sequential_scan(log_a, log_b, start)
    assert ((a - b).abs() / b.abs().clamp_min(1e-300)).max() < 1e-11


@pytest.mark.parametrize("cell", DIAGONAL)
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_scan_and_loop_agree_outputs_and_gradients(cell, layers, bidir):
    torch.manual_seed(0)
    scan = build_model(cell, 5, 8, layers, bidir, scan=True).double()
    loop = build_model(cell, 5, 8, layers, bidir, scan=False).double()
    loop.load_state_dict(scan.state_dict())
    x = torch.randn(64, 3, 5, dtype=torch.float64, requires_grad=True)
    outs, grads = [], []
    for model in (scan, loop):
        out, h_n = model(x)
        (out ** 2).sum().backward()
        outs.append(out.detach())
        grads.append([x.grad.clone()] + [p.grad.clone() for p in model.parameters()])
        x.grad = None
    assert torch.allclose(outs[0], outs[1], rtol=1e-12, atol=1e-14)
    for g_scan, g_loop in zip(*grads):
        assert torch.allclose(g_scan, g_loop, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cell", DIAGONAL)
def test_layer_stack_keeps_the_path_and_the_function(cell):
    model = build_model(cell, 4, 6, 3, True, scan=False).double()
    x = torch.randn(10, 2, 4, dtype=torch.float64)
    h = x
    for layer in layer_stack(model):
        assert layer.scan is False
        h, _ = layer(h)
    assert torch.allclose(h, model(x)[0], atol=1e-13)


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
    far = [r for r in rows if r["distance"] >= 200]
    slope = (far[-1]["log10_grad_norm"] - far[0]["log10_grad_norm"]) / (far[-1]["distance"] - far[0]["distance"])
    assert slope == pytest.approx(theory, rel=0.1, abs=2e-3)
    assert rows[0]["jacobian_decay_per_step"] == pytest.approx(theory, rel=0.05, abs=1e-3)


@pytest.mark.parametrize("cell", DIAGONAL)
def test_the_log_space_scan_has_a_gradient_floor_the_loop_has_not(cell):
    """Measured, not assumed: the parallel scan's gradient equals the loop's (within 2%) while
    it is above 1e-11 of the nearest position's, then stops decaying near float64's rounding of the
    largest terms of its cumulative sums (about 1e-15 of the nearest), where the loop's goes on
    down. So a scan cannot carry a gradient signal that has decayed below that floor."""
    x = torch.randn(200, 8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    logs = {}
    for scan in (True, False):
        torch.manual_seed(1)
        model = build_model(cell, 4, 16, scan=scan).double()
        rows = sorted((r for r in profile_rows(model, x, seed=0, condition="init", theory=False)
                       if r["layer"] == 0), key=lambda r: r["distance"])
        logs[scan] = [r["log10_grad_norm"] for r in rows]
    near = logs[False][0]
    above = [d for d, v in enumerate(logs[False]) if v > near - 11]
    assert max(abs(logs[True][d] - logs[False][d]) for d in above) < 1e-2  # within 2.3%
    assert logs[False][-1] < near - 30                      # the loop keeps decaying
    assert near - 17 < logs[True][-1] < near - 13           # the scan floors near 1e-15


def test_scan_is_refused_where_there_is_one_path(make_cfg):
    from bench.config import ConfigError, validate
    with pytest.raises(ConfigError, match="model.scan=true with model.cell=lstm: lstm has one path only"):
        validate(make_cfg(["model.cell=lstm", "model.scan=true"]))


def test_scan_default_is_recorded_and_hashed(make_cfg):
    from bench.run import resolve
    a, b = resolve(make_cfg(["model.cell=mingru"])), resolve(make_cfg(["model.cell=mingru", "model.scan=false"]))
    assert a.point["scan"] is True and b.point["scan"] is False and a.chash != b.chash
    assert resolve(make_cfg(["model.cell=mingru", "model.scan=true"])).chash == a.chash


@pytest.mark.parametrize("cell", DIAGONAL)
def test_parameter_count_has_no_recurrent_matrix(cell):
    s = spec(cell)
    model = build_model(cell, 3, 7, 2, True)
    assert sum(p.numel() for p in model.parameters()) == s.params(3, 7, 2, True)
    assert s.params(3, 7) == s.gates * 7 * (3 + 1)
    assert not any("weight_hh" in n for n, _ in model.named_parameters())
