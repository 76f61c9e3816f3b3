"""The diagonal cells' paths (`model.path`: the autograd loop, the log-space scan, the fused
loop, the chunked scan, the C++ op and the compiled path) agree with the loop to float64 rounding,
outputs and gradients; where they differ (the scan's gradient floor) is measured; the path is
recorded, hashed and refused where it does not apply. The cells themselves: tests/test_modern.py."""
import collections

import pytest
import torch

from bench.cells.build import build_model
from bench.cells.diagonal import log_g, parallel_scan, sequential_scan
from bench.cells.recurrence import PATHS
from bench.cells.registry import family, spec
from bench.measures.gradients import profile_rows

DIAGONAL = list(family("diagonal"))    # every registered diagonal cell (mingru, minlstm, lru, ...)
MODERN = DIAGONAL + list(family("exponential"))


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
    # The signed cell's scan differentiates log|a| with a = 1 - 2z near 0 at init (z near 1/2):
    # rounding amplified by 1/|a| leaves its gradient within 1e-9 of the loop's (relative to the
    # largest entry) instead of 1e-12; its outputs agree to rounding. Its default path is the loop.
    rtol, atol = (1e-7, 1e-9) if cell == "mingru_signed" else (1e-10, 1e-13)
    for g_scan, g_loop in zip(*grads):
        assert torch.allclose(g_scan, g_loop, rtol=rtol, atol=atol * g_loop.abs().max().item())


KERNEL_PATHS = [p for p in PATHS if p not in ("loop", "scan")]  # the linear-space kernels
# torch.compile's first call compiles for seconds: its rows run with the slow tests
CELL_PATHS = [pytest.param(c, p, marks=pytest.mark.slow) if p == "compiled" else (c, p)
              for c in DIAGONAL for p in spec(c).paths if p != "loop"]


@pytest.mark.parametrize("cell,path", CELL_PATHS)
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_every_path_equals_the_loop_outputs_and_gradients(cell, path, layers, bidir):
    """Every `model.path` of every diagonal cell (CellSpec.paths: the LRU's complex recurrence has
    all but `compiled`) against today's loop in float64, with an initial state where the cell
    takes one; T = 70 is not a multiple of the chunk, so the chunked path runs its leftover steps.
    (The signed cell's log-space scan is held looser below, as in the scan-loop test above.)"""
    torch.manual_seed(0)
    loop = build_model(cell, 5, 8, layers, bidir, path="loop").double()
    other = build_model(cell, 5, 8, layers, bidir, path=path, chunk=16).double()
    other.load_state_dict(loop.state_dict())
    x = torch.randn(70, 3, 5, dtype=torch.float64, requires_grad=True)
    hx = None if cell == "lru" else torch.randn(layers * (2 if bidir else 1), 3, 8, dtype=torch.float64,
                                                 requires_grad=True)
    outs, grads = [], []
    for model in (loop, other):
        out, h_n = model(x, hx)
        ((out ** 2).sum() + (h_n ** 3).sum()).backward()
        outs.append(torch.cat([out.flatten(), h_n.flatten()]).detach())
        grads.append([x.grad.clone()] + ([] if hx is None else [hx.grad.clone()])
                     + [p.grad.clone() for p in model.parameters()])
        x.grad = None
        if hx is not None:
            hx.grad = None
    assert torch.allclose(outs[1], outs[0], rtol=1e-12, atol=1e-13 * outs[0].abs().max().item())
    rtol, atol = (1e-7, 1e-9) if (cell, path) == ("mingru_signed", "scan") else (1e-10, 1e-12)
    for g_other, g_loop in zip(*grads):
        assert torch.allclose(g_other, g_loop, rtol=rtol, atol=atol * g_loop.abs().max().item())


@pytest.mark.parametrize("cell", DIAGONAL)
def test_the_log_space_scan_has_a_gradient_floor_the_loop_has_not(cell):
    """Measured, not assumed: for minGRU and minLSTM the parallel scan's gradient equals the loop's (within 2%) while
    it is above 1e-11 of the nearest position's, then stops decaying near float64's rounding of the
    largest terms of its cumulative sums (about 1e-15 of the nearest), where the loop's goes on
    down; the signed minGRU's scan, through complex logs of a = 1 - 2z near 0, floors near 1e-12.
    So a scan cannot carry a gradient signal that has decayed below that floor. (The LRU
    on a ring of radius 0.3-0.7, so that its loop decays that far within the sequence.)"""
    from bench.cells.lru import LRU
    x = torch.randn(200, 8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    logs = {}
    for scan in (True, False):
        torch.manual_seed(1)
        model = (LRU(4, 16, scan=scan, r_min=0.3, r_max=0.7) if cell == "lru"
                 else build_model(cell, 4, 16, scan=scan)).double()
        rows = sorted((r for r in profile_rows(model, x, seed=0, condition="init", theory=False)
                       if r["layer"] == 0), key=lambda r: r["distance"])
        logs[scan] = [r["log10_grad_norm"] for r in rows]
    near = logs[False][0]
    # decades below the nearest position: (the scan equals the loop above, its floor within)
    agree, floor = (8, (10, 14)) if cell == "mingru_signed" else (11, (13, 17))
    above = [d for d, v in enumerate(logs[False]) if v > near - agree]
    assert max(abs(logs[True][d] - logs[False][d]) for d in above) < 1e-2  # within 2.3%
    assert logs[False][-1] < near - 30                      # the loop keeps decaying
    if cell == "lru":
        # No floor: lambda does not depend on the input, so dL/dx reaches x only through b, and
        # the scan's gradient follows the loop's all the way down.
        assert max(abs(a - b) for a, b in zip(logs[True], logs[False])) < 1e-2
        return
    # the scan floors near 1e-15; the signed scan's complex logs near a = 0 near 1e-12
    assert near - floor[1] < logs[True][-1] < near - floor[0]


def test_scan_is_refused_where_there_is_one_path(make_cfg):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate
    with pytest.raises(ConfigError, match="model.scan=true with model.cell=lstm: lstm has one path only"):
        validate(make_cfg(["model.cell=lstm", "model.scan=true"]))


def test_scan_default_is_recorded_and_hashed(make_cfg):
    from bench.run.runner import resolve
    a, b = resolve(make_cfg(["model.cell=mingru"])), resolve(make_cfg(["model.cell=mingru", "model.scan=false"]))
    assert a.point["scan"] is True and b.point["scan"] is False and a.chash != b.chash
    assert resolve(make_cfg(["model.cell=mingru", "model.scan=true"])).chash == a.chash


def graph_nodes(fn) -> collections.Counter:
    """How many autograd nodes of each kind the graph behind `fn` holds."""
    seen, names, stack = set(), collections.Counter(), [fn]
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        names[type(f).__name__] += 1
        stack.extend(g for g, _ in f.next_functions)
    return names


@pytest.mark.parametrize("cell", MODERN + ["ref_lstm"])
def test_the_loops_do_not_index_the_sequence(cell):
    """x[t] in a loop makes backward build a (T, B, H) zero tensor per step (one SelectBackward
    node per step): O(T^2) work charged to the loop (at T=4096 it made minGRU's loop 40x
    slower). The loops unbind the sequence instead, whose backward assembles the gradient once.
    (The LRU's few selects are Re and Im of its complex state, not per step.)"""
    extra = {"scan": False} if cell in DIAGONAL else {}
    model = build_model(cell, 3, 4, **extra)
    out, _ = model(torch.randn(24, 2, 3))
    names = graph_nodes(out.grad_fn)
    assert names["SelectBackward0"] <= 4 and names["UnbindBackward0"] >= 1


def test_path_keeps_the_hashes_that_scan_stored(make_cfg):
    """model.path=loop and =scan are the points model.scan=false and =true stored before the key
    existed (same hash, and `path` recorded all the same); every other path is a new point, and
    the chunked path records its C."""
    from bench.cells.recurrence import DEFAULT_CHUNK
    from bench.run.records import config_hash
    from bench.run.runner import resolve
    base = ["model.cell=mingru"]
    for scan, path in (("true", "scan"), ("false", "loop")):
        old = resolve(make_cfg(base + [f"model.scan={scan}"]))
        new = resolve(make_cfg(base + [f"model.path={path}"]))
        legacy = {k: v for k, v in old.point.items() if k not in ("path", "chunk")}  # stored before model.path
        assert new.chash == old.chash == config_hash(legacy)
        assert new.point["path"] == old.point["path"] == path and new.point["scan"] is (scan == "true")
    assert resolve(make_cfg(base)).point["path"] == "scan"      # the cell's default, recorded
    chunked = resolve(make_cfg(base + ["model.path=chunked"]))
    assert chunked.point["chunk"] == DEFAULT_CHUNK and chunked.point["scan"] is None
    assert resolve(make_cfg(base + ["model.path=chunked", f"model.chunk={DEFAULT_CHUNK}"])).chash == chunked.chash
    hashes = {resolve(make_cfg(base + [f"model.path={p}"])).chash for p in PATHS}
    assert len(hashes | {resolve(make_cfg(base + ["model.path=chunked", "model.chunk=8"])).chash}) == len(PATHS) + 1
    assert resolve(make_cfg(["model.cell=lstm"])).point["path"] is None   # one path only: nothing recorded


@pytest.mark.parametrize("overrides,message", [
    (["model.cell=lstm", "model.path=chunked"], "model.path=chunked with model.cell=lstm: lstm has one path only"),
    (["model.cell=lru", "model.path=compiled"], "model.path=compiled: not a path of lru \\(allowed: loop"),
    (["model.cell=mingru", "model.path=cpp", "model.scan=true"], "model.path=cpp with model.scan=true"),
    (["model.cell=mingru", "model.path=cpp", "model.chunk=8"], "model.chunk=8 with model.path=cpp"),
    (["model.cell=mingru", "model.path=chunked", "model.chunk=0"], "model.chunk=0: must be a positive int"),
])
def test_path_and_chunk_are_refused_where_they_do_not_apply(make_cfg, overrides, message):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate
    with pytest.raises(ConfigError, match=message):
        validate(make_cfg(overrides))


def test_the_cpp_paths_are_refused_off_the_cpu(make_cfg):
    from bench.config.errors import ConfigError
    from bench.config.validate import validate_on_device
    for path in ("cpp", "compiled"):
        with pytest.raises(ConfigError, match=f"model.path={path} with device=cuda: its C\\+\\+ recurrence"):
            validate_on_device(make_cfg(["model.cell=mingru", f"model.path={path}"]), "cuda")
    validate_on_device(make_cfg(["model.cell=mingru", "model.path=chunked"]), "cuda")
