"""Each diagonal cell's `model.path` through the suite's own training step, at T=1024 and T=4096
(hidden 64, batch 16, input 32, one thread, float32, subnormals flushed), all paths timed
alternately in one process against today's loop (`loop`, model.scan=false), beside the roofline
bound measured in the same run (the matmul peak and a triad's bandwidth, bench/measures/throughput.py),
and the chunked path's C against the candidates that chose DEFAULT_CHUNK.

Run: make bench-pytest, or
  pytest tests/benchmarks/test_paths.py -m benchmark_suite --benchmark-only -s
"""
import statistics

import pytest
import torch
from omegaconf import OmegaConf

from bench.cells.cpp_linrec import cpp_kernel
from bench.cells.recurrence import DEFAULT_CHUNK, KERNEL_OF_PATH
from bench.cells.registry import family, spec
from bench.config.schema import MODEL_DEFAULTS
from bench.measures.point import Point
from bench.measures.roofline import calibrate_bandwidth, calibrate_matmul, compulsory_bytes
from bench.measures.throughput import setup, training_step
from bench.run.device import denormal_context, threads_context

SIZES = {"input_size": 32, "hidden_size": 64, "batch_size": 16}
WARMUP, ROUNDS = 2, 7


def _point(cell: str, seq_len: int, path: str, chunk=None) -> Point:
    cfg = OmegaConf.create({
        "model": {"cell": cell, "input_size": SIZES["input_size"], "hidden_size": SIZES["hidden_size"],
                  "num_layers": 1, "bidirectional": False, "forget_bias": None,
                  **MODEL_DEFAULTS, "path": path, "chunk": chunk},
        "data": {"seq_len": seq_len, "batch_size": SIZES["batch_size"]},
        "measure": {"name": "throughput", "lr": 1e-3, "loss": "last"}, "seed": 0})
    return Point(cfg=cfg, device="cpu", dtype=torch.float32, backend="native")


def _interleaved(steps: dict) -> dict:
    """Median step ms of each entry, the entries run in turn (order reversed every round)."""
    names, times = list(steps), {k: [] for k in steps}
    for i in range(WARMUP + ROUNDS):
        for name in (names if i % 2 else names[::-1]):
            ms = steps[name]()[2]
            if i >= WARMUP:
                times[name].append(ms)
    return {k: statistics.median(v) for k, v in times.items()}


def _paths(cell: str):
    """The cell's paths that run here (cpp and compiled need a C++ compiler)."""
    missing = cpp_kernel()
    return [p for p in spec(cell).paths if not (missing and KERNEL_OF_PATH.get(p) == "cpp")], missing


@pytest.mark.parametrize("seq_len", [1024, 4096])
@pytest.mark.parametrize("cell", list(family("diagonal")))
def test_path_step_times(benchmark, cell, seq_len):
    """Every path's step time against today's loop and the roofline bound. Holds: the fastest
    path is ahead of the loop, and no path beats the roofline bound (a bound beaten would be wrong)."""
    paths, missing = _paths(cell)
    with threads_context(1), denormal_context(True):
        steps, points = {}, {}
        for path in paths:
            points[path] = _point(cell, seq_len, path)
            model, opt, x, target = setup(points[path])
            steps[path] = training_step(model, opt, x, target, "cpu")[1]
        bandwidth = calibrate_bandwidth("cpu", torch.float32)
        peak = calibrate_matmul("cpu", torch.float32)
        med = benchmark.pedantic(lambda: _interleaved(steps), rounds=1, iterations=1)
    fwd, bwd = spec(cell).flops(SIZES["input_size"], SIZES["hidden_size"], 1, False, seq_len, SIZES["batch_size"])
    bound_ms = ((fwd + bwd) / peak + compulsory_bytes(points["loop"]) / bandwidth) * 1e3
    fastest = min((p for p in med if p != "loop"), key=med.get)
    benchmark.extra_info.update({**SIZES, "cell": cell, "seq_len": seq_len, "threads": 1,
                                 **{f"{p}_ms": v for p, v in med.items()},
                                 **{f"{p}_over_loop": v / med["loop"] for p, v in med.items()},
                                 "fastest": fastest, "roofline_ms": bound_ms,
                                 "calib_bytes_per_s": bandwidth, "calib_flops_per_s": peak,
                                 "roofline_fraction_of_fastest": bound_ms / med[fastest],
                                 "skipped": f"cpp, compiled: {missing}" if missing else ""})
    print(f"\n{cell} T={seq_len} (one thread; triad {bandwidth / 1e9:.1f} GB/s, matmul {peak / 1e9:.0f} "
          f"GFLOP/s; roofline {bound_ms:.1f} ms):")
    for p, v in med.items():
        print(f"  {p:10s} {v:8.1f} ms  x{v / med['loop']:.2f} of loop  roofline {bound_ms / v:.0%}")
    if missing:
        print(f"  (cpp, compiled not run: {missing})")
    assert med[fastest] < med["loop"], f"{fastest} {med[fastest]:.1f} ms is not ahead of the loop {med['loop']:.1f} ms"
    assert all(v > bound_ms for v in med.values()), "a path beat the roofline bound: the bound is wrong"


@pytest.mark.parametrize("seq_len", [1024, 4096])
def test_chunk_size(benchmark, seq_len):
    """minGRU's chunked path at C in 16..256, alternately: DEFAULT_CHUNK was chosen from this
    sweep (the best at T=4096 within noise at T=1024); holds it within 1.3x of the best C here."""
    candidates = (16, 32, 64, 128, 256)
    with threads_context(1), denormal_context(True):
        steps = {}
        for chunk in candidates:
            model, opt, x, target = setup(_point("mingru", seq_len, "chunked", chunk))
            steps[chunk] = training_step(model, opt, x, target, "cpu")[1]
        med = benchmark.pedantic(lambda: _interleaved(steps), rounds=1, iterations=1)
    best = min(med, key=med.get)
    benchmark.extra_info.update({"seq_len": seq_len, **{f"C{c}_ms": v for c, v in med.items()},
                                 "best_chunk": best, "default_chunk": DEFAULT_CHUNK,
                                 "default_over_best": med[DEFAULT_CHUNK] / med[best]})
    print(f"\nchunked minGRU T={seq_len}: " + ", ".join(f"C={c} {v:.1f} ms" for c, v in med.items())
          + f"; best C={best}, default C={DEFAULT_CHUNK} x{med[DEFAULT_CHUNK] / med[best]:.2f} of it")
    assert med[DEFAULT_CHUNK] <= 1.3 * med[best]


# Where a step's time goes, by the ops torch's profiler names (self time): the input projection
# and its gradients (matmuls, the bias gradient's sum), the coefficients (the compiled graphs,
# forward and backward), the recurrence op, the optimiser's arithmetic, copies and fills (making
# tensors contiguous, zeroing gradients), and the framework's own time per step (the Python of
# the optimiser and of the compiled and autograd functions, the autograd engine's nodes): fixed
# per step, so its share falls as T grows. The rest (views, the readout and loss) is `other`.
PIECES = {"projection": ("aten::addmm", "aten::mm", "aten::sum"),
          "coefficients, forward and backward (compiled)": ("## Call CompiledFxGraph",),
          "recurrence, forward": ("rnn_bench::linrec",), "recurrence, backward": ("rnn_bench::linrec_backward",),
          "optimiser": ("aten::_foreach", "aten::add_", "aten::mul_", "aten::addcmul_", "aten::addcdiv_",
                        "aten::sqrt", "aten::lerp_", "aten::div_"),
          "copies and fills": ("aten::copy_", "aten::fill_", "aten::zero_"),
          "framework (Python wrappers, autograd engine)": (
              "Optimizer.", "CompiledFunction", "Torch-Compiled Region", "TorchDynamo", "AOTDispatcher",
              "LinearRecurrence", "autograd::engine", "AddmmBackward0", "TBackward0")}


def piece_of(name: str) -> str:
    for piece, prefixes in PIECES.items():
        if any(name == p or name.startswith(p) for p in prefixes):
            return "recurrence, backward" if name == "rnn_bench::linrec_backward" else piece
    return "other (views, readout, loss)"


@pytest.mark.parametrize("seq_len", [1024, 4096])
def test_where_the_fastest_path_spends_its_step(benchmark, seq_len):
    """minGRU's compiled path, one thread: a profiled step's self time per piece, each beside its
    own bound (the projection's FLOPs at the measured matmul peak; the coefficients' and the
    recurrence's compulsory bytes at the measured triad bandwidth). Holds: the pieces named cover
    at least 80% of the profiled time (a piece the table misses would hide where the time goes)."""
    from torch.profiler import ProfilerActivity, profile

    from bench.cells.recurrence import recurrence_bytes
    _, missing = _paths("mingru")
    if missing:
        pytest.skip(f"the compiled path needs the C++ kernel: {missing}")
    T, B, I, H, n = seq_len, SIZES["batch_size"], SIZES["input_size"], SIZES["hidden_size"], 3
    with threads_context(1), denormal_context(True):
        model, opt, x, target = setup(_point("mingru", seq_len, "compiled"))
        step = training_step(model, opt, x, target, "cpu")[1]
        for _ in range(WARMUP):
            step()
        bandwidth, peak = calibrate_bandwidth("cpu", torch.float32), calibrate_matmul("cpu", torch.float32)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            benchmark.pedantic(step, rounds=n, iterations=1)
    spent: dict = {}
    for e in prof.key_averages():
        spent[piece_of(e.key)] = spent.get(piece_of(e.key), 0.0) + e.self_cpu_time_total / 1e3 / n
    e4 = 4 * T * B * H * 4                        # one (T, B, H) float32 tensor
    rf, rb = recurrence_bytes("cpp", T, B * H, 4)
    bounds = {"projection": 3 * 2 * T * B * I * 2 * H / peak * 1e3,   # forward, weight and bias gradients
              "coefficients, forward and backward (compiled)": (4 + 6) * e4 / 4 / bandwidth * 1e3,
              "recurrence, forward": rf / bandwidth * 1e3, "recurrence, backward": rb / bandwidth * 1e3}
    total = sum(spent.values())
    benchmark.extra_info.update({"seq_len": T, **{f"{k}_ms": v for k, v in spent.items()},
                                 **{f"{k}_bound_ms": v for k, v in bounds.items()},
                                 "calib_bytes_per_s": bandwidth, "calib_flops_per_s": peak})
    print(f"\nmingru compiled, T={T} (one thread; triad {bandwidth / 1e9:.1f} GB/s, matmul {peak / 1e9:.0f} "
          f"GFLOP/s): {total:.1f} ms of profiled self time a step")
    for k, v in sorted(spent.items(), key=lambda kv: -kv[1]):
        b = bounds.get(k)
        print(f"  {k:48s} {v:7.1f} ms ({v / total:4.0%})" + (f"  bound {b:6.1f} ms, x{v / b:.1f} of it" if b else ""))
    assert 1 - spent.get("other (views, readout, loss)", 0.0) / total >= 0.8
