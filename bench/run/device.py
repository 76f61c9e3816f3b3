"""Where a point runs: device and dtype resolution, backend switches as scoped contexts."""
from __future__ import annotations

import contextlib
import os
import platform
from typing import Iterator, Optional, Tuple

import torch

from bench.cells.registry import spec
from bench.config.errors import ConfigError
from bench.measures.memory import describe
from bench.measures.registry import MEASURES

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def resolve_device(requested: str) -> str:
    """`auto` -> the best device present; `cuda` without a GPU is a ConfigError."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: no CUDA device is present here (allowed: auto, cpu)")
    return requested


def resolve_dtype(requested: Optional[str], measure: str) -> str:
    """`dtype`, or the measure's own default when null (MeasureSpec.default_dtype)."""
    return requested or MEASURES[measure].default_dtype


def machine_memory(device: str) -> Tuple[int, str]:
    """(bytes, what they are) a point may use: the GPU's memory for cuda; on the CPU the physical
    RAM, or the cgroup's limit where one is lower (a container, a SLURM job's allocation)."""
    if device == "cuda":
        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory, "the GPU's memory"
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                limit = fh.read().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < ram:
            return int(limit), "this machine's memory limit (cgroup)"
    return ram, "this machine's RAM"


def check_memory(cfg, need: int, device: str) -> None:
    """ConfigError when a point's estimated bytes exceed the machine's (or `max_memory_gb`)."""
    limit, what = machine_memory(device)
    if cfg.get("max_memory_gb") is not None:
        limit, what = int(cfg.max_memory_gb * 1e9), f"max_memory_gb={cfg.max_memory_gb:g}"
    if need > limit:
        gb = lambda n: f"{n / 1e9:.3g}" if n < 1e12 else f"{n / 1e9:,.0f}"
        raise ConfigError(f"the point needs about {gb(need)} GB (estimated from its shapes: "
                          f"{describe(cfg)}), more than {what} ({gb(limit)} GB); make it "
                          "smaller, or set max_memory_gb=<GB> to run it anyway")


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def effective_backend(cell: str, device: str, dtype: str, requested: str) -> str:
    """The kernel family that runs `cell`, as recorded in every row.

    The registry says which fused backend can run a cell on each device (`CellSpec.fused`): on
    CPU only nn.LSTM has one (oneDNN, float32/bfloat16); on CUDA the torch.nn cells go to cuDNN
    unless it is switched off. A cell without one (ref_lstm, a Python loop) is always native.
    """
    if requested == "onednn" and device != "cpu" or requested == "cudnn" and device != "cuda":
        raise ConfigError(f"measure.backend={requested}: not available on device={device} "
                          f"(allowed there: auto, native, {'onednn' if device == 'cpu' else 'cudnn'})")
    fused = spec(cell).fused.get(device)
    if requested == "native" or fused is None:
        if requested in ("onednn", "cudnn"):
            raise ConfigError(f"measure.backend={requested}: {cell} has no fused kernel on {device}")
        return "native"
    if device == "cuda":
        return "cudnn" if torch.backends.cudnn.is_available() else "native"
    onednn = dtype in ("float32", "bfloat16") and torch.backends.mkldnn.is_available()
    if requested == "onednn" and not onednn:
        raise ConfigError(f"measure.backend=onednn: oneDNN runs only lstm in float32/bfloat16 "
                          f"on CPU, not {cell} in {dtype}")
    return "onednn" if onednn else "native"


@contextlib.contextmanager
def backend_context(backend: str, tf32: bool = False) -> Iterator[None]:
    """Switch oneDNN/cuDNN off for `native`, and set TF32, for the duration of a point only."""
    enabled = backend != "native"
    saved = (torch.backends.mkldnn.enabled, torch.backends.cudnn.enabled,
             torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.mkldnn.enabled = enabled
    torch.backends.cudnn.enabled = enabled
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        (torch.backends.mkldnn.enabled, torch.backends.cudnn.enabled,
         torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = saved


@contextlib.contextmanager
def denormal_context(flush: bool) -> Iterator[None]:
    """Flush subnormal floats to zero (CPU) for the duration of a point, if asked."""
    if not flush:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def threads_context(threads: Optional[int]) -> Iterator[int]:
    """Set torch's intra-op threads for a point; yields the count in force."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
