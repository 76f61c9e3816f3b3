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

from bench.cells.recurrence import DEFAULT_CHUNK, KERNEL_OF_PATH, cpp_kernel
from bench.cells.registry import family, spec
from bench.config.schema import MODEL_DEFAULTS
from bench.measures.point import Point
from bench.measures.throughput import calibrate_bandwidth, calibrate_matmul, compulsory_bytes, setup, training_step
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
