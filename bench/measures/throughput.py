"""`throughput`: the cost of one training step, every repetition a row.

One step = forward (with the loss on the readout, `measure.loss=last`, or on every step's output,
`measure.loss=every`), backward, optimiser step; each phase is timed
on its own inside the same repetition (`forward`, `backward`) and the whole as `step`. The clock
is read after synchronising the device, so no asynchronous launch is ever timed. Warm-up first
(absorbs oneDNN/cuDNN set-up and allocator growth), then repetitions until both `min_reps` and
`min_time_s` are reached. A point whose relative IQR of step time exceeds `noise_limit` is
measured once more and flagged `noisy` if it stays above. A calibration matmul of the same dtype,
timed in the same point, gives the device's achievable peak (`calib_flops_per_s`), and a
STREAM-like triad its memory bandwidth (`calib_bytes_per_s`): with the step's FLOPs and the bytes
it must move at least (`min_bytes`, `compulsory_bytes`), the roofline bound of the step is
flops / calib_flops_per_s + min_bytes / calib_bytes_per_s (matmuls and the memory-bound passes
run one after the other; bench/measures/roofline.py); the bytes its ops do move are counted
(`bytes`, ByteCounter).

Measured, not modelled (docs/architecture.md): memory comes from torch's allocation events on
CPU (`cpu_alloc_peak_bytes`, one profiled step after warm-up, never a timed one) and from
`torch.cuda.max_memory_allocated` on CUDA (`cuda_max_allocated_bytes`); `peak_mem_bytes` is the
device's own reading and `peak_mem_source` says which. FLOPs are counted by FlopCounterMode on
the step that runs; a fused kernel hides its matmuls from the counter, so there `step_flops`
(the registry's `flops`, held to the counter on the native path by a test) gives them, and `flops_source` says which.
The same profiled step shows which kernel ran: a point whose observed backend differs from the
one it was asked for fails.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells.recurrence import KERNEL_OF_PATH, forget_compiled, kernel_of
from bench.cells.registry import spec
from bench.config.errors import ConfigError
from bench.config.schema import ThroughputConfig
from bench.measures.gradients import readout
from bench.measures.memory import ITEMSIZE, directions, training
from bench.measures.observe import count_bytes, count_flops, profile_step
from bench.measures.point import Point, seeded_normal, synchronize
from bench.measures.registry import MeasureSpec, positive, register_measure
from bench.measures.roofline import CALIB_N, TRIAD_N, calibrate_bandwidth, calibrate_matmul, compulsory_bytes

# bump when a change moves the numbers; stored points of another version are re-run.
# 3: model.path=compiled is timed compiled (version 2 timed it eagerly after the FLOP and byte counters)
VERSION = 3
def rel_iqr(values: List[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (0, 0, 0)
    med = statistics.median(values)
    return (q3 - q1) / med if med > 0 else float("inf")


class KernelFallback(RuntimeError):
    """A `model.path` whose kernel could not run here (`cpp`, `compiled` without a compiler)."""


def recurrence_kernel(point: Point) -> Optional[str]:
    """The bench/cells/recurrence.py kernel the point's path runs (None for loop, scan and the cells
    without paths); a path whose kernel falls back fails the point, as a backend mismatch does,
    so that no timing is recorded under a kernel that did not run."""
    path = point.cfg.model.get("path")
    if path not in KERNEL_OF_PATH:
        return None
    kernel = kernel_of(path)
    if kernel != KERNEL_OF_PATH[path]:
        from bench.cells.cpp_linrec import cpp_kernel
        raise KernelFallback(f"model.path={path} needs the C++ kernel, which cannot run here: {cpp_kernel()}")
    return kernel


def time_steps(step: Callable[[], Tuple[float, float, float]], cfg) -> List[Tuple[float, float, float]]:
    """Repetitions of `step` until min_reps and min_time_s are both reached (max_reps caps)."""
    reps, start = [], time.perf_counter()
    while len(reps) < cfg.max_reps and (len(reps) < cfg.min_reps or time.perf_counter() - start < cfg.min_time_s):
        reps.append(step())
    return reps


def training_step(model: nn.Module, opt: torch.optim.Optimizer, x: Tensor, target: Tensor,
                  device: str) -> Tuple[Callable[[], Tensor], Callable[[], Tuple[float, float, float]]]:
    """(forward_loss, step): step() runs one training step and returns its
    (forward, backward, step) times in ms, reading the clock only after a device sync."""
    hidden, bidir = model.hidden_size, model.bidirectional

    def forward_loss() -> Tensor:
        out, _ = model(x)
        if target.dim() == 3:   # measure.loss=every: a target at every step
            return nn.functional.mse_loss(out, target)
        return nn.functional.mse_loss(readout(out, hidden, bidir), target)

    def step() -> Tuple[float, float, float]:
        synchronize(device)
        t0 = time.perf_counter()
        loss = forward_loss()
        synchronize(device)
        t1 = time.perf_counter()
        loss.backward()
        synchronize(device)
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        synchronize(device)
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t0) * 1e3
    return forward_loss, step


def setup(point: Point) -> Tuple[nn.Module, torch.optim.Optimizer, Tensor, Tensor]:
    """Seeded model, Adam, input (T, B, I) and readout target (B, D*H) of a throughput point."""
    m = point.cfg.model
    model = point.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=point.cfg.measure.lr)
    x = seeded_normal((point.seq_len, point.batch_size, point.input_size), point.seed, point.dtype, point.device)
    width = m.hidden_size * (2 if m.bidirectional else 1)
    shape = ((point.seq_len,) if point.cfg.measure.get("loss", "last") == "every" else ()) + (point.batch_size, width)
    target = seeded_normal(shape, point.seed + 1, point.dtype, point.device)
    return model, opt, x, target


class BackendMismatch(RuntimeError):
    """The kernel that ran is not the one the point was asked (and recorded) to use."""


def memory_and_backend(point: Point, step: Callable[[], object]) -> Dict:
    """One profiled step (after warm-up): memory and the observed backend, as row columns."""
    if point.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    prof = profile_step(step)
    if prof.backend != point.backend:
        raise BackendMismatch(f"backend {point.backend!r} was expected but {prof.backend!r} ran "
                              f"(recurrent ops seen: {', '.join(prof.ops) or 'none'})")
    if point.device == "cuda":
        cuda = torch.cuda.max_memory_allocated()
        return {"observed_backend": prof.backend, "cpu_alloc_peak_bytes": None,
                "cuda_max_allocated_bytes": cuda, "peak_mem_bytes": cuda,
                "peak_mem_source": "cuda_max_memory_allocated"}
    return {"observed_backend": prof.backend, "cpu_alloc_peak_bytes": prof.cpu_alloc_peak_bytes,
            "cuda_max_allocated_bytes": None, "peak_mem_bytes": prof.cpu_alloc_peak_bytes,
            "peak_mem_source": "cpu_allocation_events"}


def bytes_of(point: Point, model: nn.Module, forward_loss: Callable[[], Tensor]) -> Dict:
    """Forward and backward bytes of one untimed step as its ops move them (ByteCounter); a
    compiled region is counted as its eager ops (`bytes_source` says so)."""
    fwd, bwd = count_bytes(forward_loss)
    model.zero_grad(set_to_none=True)
    compiled = point.cfg.model.get("path") == "compiled"
    return {"forward": fwd, "backward": bwd, "step": fwd + bwd,
            "source": "dispatch_counter_eager" if compiled else "dispatch_counter"}


def flops_of(point: Point, model: nn.Module, forward_loss: Callable[[], Tensor]) -> Dict:
    """Forward and backward FLOPs of one step: counted on the native path, formula when fused."""
    m = point.cfg.model
    if point.backend == "native":
        fwd, bwd = count_flops(forward_loss)
        model.zero_grad(set_to_none=True)
        source = "flop_counter"
    else:
        fwd, bwd = spec(m.cell).flops(m.input_size, m.hidden_size, m.num_layers, m.bidirectional,
                                      point.seq_len, point.batch_size)
        source = "formula"
    return {"forward": fwd, "backward": bwd, "step": fwd + bwd, "source": source}


def subnormal_fraction(model: nn.Module, x: Tensor, forward_loss: Callable[[], Tensor]) -> float:
    """Fraction of the input gradient dL/dx that is subnormal, from one untimed pass with x
    requiring grad (the timed step never computes dL/dx): whether the backward recurrence
    carries subnormal floats under this point's flush setting. NaN for non-float dtypes."""
    if not x.is_floating_point():
        return float("nan")
    x.requires_grad_(True)
    try:
        forward_loss().backward()
        g = x.grad.abs()
        tiny = torch.finfo(g.dtype).tiny
        return ((g > 0) & (g < tiny)).double().mean().item()
    finally:
        x.requires_grad_(False)
        x.grad = None
        model.zero_grad(set_to_none=True)


def measure(point: Point) -> List[Dict]:
    cfg = point.cfg.measure
    device = point.device
    kernel = recurrence_kernel(point)
    model, opt, x, target = setup(point)
    forward_loss, step = training_step(model, opt, x, target, device)

    for _ in range(cfg.warmup):
        step()
    memory = memory_and_backend(point, step)
    flops = flops_of(point, model, forward_loss)
    moved = bytes_of(point, model, forward_loss)
    if point.cfg.model.get("path") == "compiled":  # the counters leave it eager: compile it again
        forget_compiled()
        for _ in range(cfg.warmup):
            step()
    # the triad first: the matmul calibration stays what runs just before the timed steps, as
    # before the triad existed, so the timings keep their conditions (VERSION unchanged)
    bandwidth = [calibrate_bandwidth(device, point.dtype)]
    calib = [calibrate_matmul(device, point.dtype)]
    attempt, reps = 1, time_steps(step, cfg)
    noise = rel_iqr([r[2] for r in reps])
    if noise > cfg.noise_limit:  # re-measure once; keep the second attempt
        attempt, reps = 2, time_steps(step, cfg)
        noise = rel_iqr([r[2] for r in reps])
    calib.append(calibrate_matmul(device, point.dtype))
    bandwidth.append(calibrate_bandwidth(device, point.dtype))
    common = {"measure": "throughput", "attempt": attempt, "subnormal_dx_fraction": subnormal_fraction(model, x, forward_loss),
              "rel_iqr": noise, "noisy": noise > cfg.noise_limit, **memory,
              "flops_source": flops["source"],
              "calib_flops_per_s": statistics.median(calib), "calib_n": CALIB_N[device],
              "calib_bytes_per_s": statistics.median(bandwidth), "calib_triad_n": TRIAD_N[device],
              "min_bytes": compulsory_bytes(point), "bytes_source": moved["source"],
              "recurrence_kernel": kernel,
              "params": sum(p.numel() for p in model.parameters()),
              "tokens": point.seq_len * point.batch_size}
    rows = []
    for rep, times in enumerate(reps):
        for phase, ms in zip(("forward", "backward", "step"), times):
            rows.append({"phase": phase, "rep": rep, "time_ms": ms, "flops": flops[phase],
                         "bytes": moved[phase], **common})
    return rows


def check(cfg) -> None:
    m = cfg.measure
    for key in ("min_reps", "max_reps"):
        if m[key] < 1:
            raise ConfigError(f"measure.{key}={m[key]}: must be a positive int")
    if m.max_reps < m.min_reps:
        raise ConfigError(f"measure.max_reps={m.max_reps} is below measure.min_reps={m.min_reps}: "
                          "need max_reps >= min_reps")
    if m.warmup < 0 or not 0 <= m.min_time_s < float("inf"):
        raise ConfigError("measure.warmup and measure.min_time_s: must be >= 0 and finite")
    positive(cfg, "noise_limit", "lr")
    if m.get("round") is not None and m.round < 1:
        raise ConfigError(f"measure.round={m.round}: must be a positive int (rounds count from 1)")


def memory(cfg, dtype: str, device: str) -> int:
    """Bytes (bench/measures/memory.py): the training step, a target at every step where
    `measure.loss=every`, the triad's three arrays and the calibration matmul's three."""
    e, m, T, B = ITEMSIZE[dtype], cfg.model, cfg.data.seq_len, cfg.data.batch_size
    target = T * B * m.hidden_size * directions(m) if cfg.measure.get("loss", "last") == "every" else 0
    return training(cfg, dtype, device) + e * (target + 3 * TRIAD_N[device] + 3 * CALIB_N[device] ** 2)


register_measure(MeasureSpec("throughput", measure, VERSION, ThroughputConfig, default_dtype="float32",
                             finite=("time_ms",), timed=True, check=check, memory=memory))
