"""`throughput`: the cost of one training step, every repetition a row.

One step = forward (with the loss on the readout), backward, optimiser step; each phase is timed
on its own inside the same repetition (`forward`, `backward`) and the whole as `step`. The clock
is read after synchronising the device, so no asynchronous launch is ever timed. Warm-up first
(absorbs oneDNN/cuDNN set-up and allocator growth), then repetitions until both `min_reps` and
`min_time_s` are reached. A point whose relative IQR of step time exceeds `noise_limit` is
measured once more and flagged `noisy` if it stays above. A calibration matmul of the same dtype,
timed in the same point, gives the device's achievable peak (`calib_flops_per_s`).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn

from bench.cells import forward_flops
from bench.device import synchronize
from bench.measures.gradients import readout
from bench.measures.point import Point, seeded_normal

CALIB_N = {"cpu": 512, "cuda": 8192}  # square matmul size for the peak calibration


def rel_iqr(values: List[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (0, 0, 0)
    med = statistics.median(values)
    return (q3 - q1) / med if med > 0 else float("inf")


def calibrate_matmul(device: str, dtype: torch.dtype, reps: int = 10) -> float:
    """Achieved FLOP/s of an N x N x N matmul (median of `reps`), the device's measured peak."""
    n = CALIB_N[device]
    a = seeded_normal((n, n), 1, dtype, device)
    b = seeded_normal((n, n), 2, dtype, device)
    times = []
    for i in range(reps + 2):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        if i >= 2:  # two warm-ups
            times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)


def cpu_step_bytes(model: nn.Module, opt: torch.optim.Optimizer, forward_loss: Callable[[], Tensor]) -> int:
    """Bytes a training step holds at its peak on CPU: parameters, gradients, optimiser state
    and the tensors autograd saves for backward (counted once each, via saved-tensor hooks)."""
    seen, saved = {id(p) for p in model.parameters()}, 0

    def pack(t: Tensor) -> Tensor:
        nonlocal saved
        if id(t) not in seen:
            seen.add(id(t))
            saved += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward_loss()
    loss.backward()
    opt.step()
    held = sum(2 * p.numel() * p.element_size() for p in model.parameters())  # weights + grads
    held += sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                if torch.is_tensor(v))
    opt.zero_grad(set_to_none=True)
    return held + saved


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
    target = seeded_normal((point.batch_size, width), point.seed + 1, point.dtype, point.device)
    return model, opt, x, target


def measure(point: Point) -> List[Dict]:
    cfg, m = point.cfg.measure, point.cfg.model
    device = point.device
    model, opt, x, target = setup(point)
    forward_loss, step = training_step(model, opt, x, target, device)

    for _ in range(cfg.warmup):
        step()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = cpu_step_bytes(model, opt, forward_loss)
    calib = [calibrate_matmul(device, point.dtype)]
    attempt, reps = 1, time_steps(step, cfg)
    noise = rel_iqr([r[2] for r in reps])
    if noise > cfg.noise_limit:  # re-measure once; keep the second attempt
        attempt, reps = 2, time_steps(step, cfg)
        noise = rel_iqr([r[2] for r in reps])
    calib.append(calibrate_matmul(device, point.dtype))
    fwd = forward_flops(m.cell, m.input_size, m.hidden_size, m.num_layers, m.bidirectional,
                        point.seq_len, point.batch_size)
    common = {"measure": "throughput", "attempt": attempt, "rel_iqr": noise,
              "noisy": noise > cfg.noise_limit, "peak_mem_bytes": peak,
              "calib_flops_per_s": statistics.median(calib), "calib_n": CALIB_N[device],
              "params": sum(p.numel() for p in model.parameters()),
              "tokens": point.seq_len * point.batch_size}
    rows = []
    for rep, times in enumerate(reps):
        for phase, ms, flops in zip(("forward", "backward", "step"), times, (fwd, 2 * fwd, 3 * fwd)):
            rows.append({"phase": phase, "rep": rep, "time_ms": ms, "flops": flops, **common})
    return rows
