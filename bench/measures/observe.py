"""What actually ran in a step, read from torch itself (docs/architecture.md, "Measured, not modelled").

- `profile_step`: one training step under `torch.profiler` with `profile_memory=True`, on its own
  repetition (never a timed one). From its events: the peak of live bytes allocated during the
  step (the allocator's allocation and free events, in time order) and the backend whose kernel
  ran (`aten::mkldnn_rnn_layer` is oneDNN, `aten::_cudnn_rnn` is cuDNN, anything else aten's loop).
- `count_flops`: the FLOPs of one forward and one backward pass as counted by
  `torch.utils.flop_counter.FlopCounterMode` on the ops that run.
- `count_bytes`: the bytes of one forward and one backward pass as the ops that run read and
  write them (`ByteCounter`): the operand traffic of a step, the measure the roofline's bytes
  are held to.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Tuple

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

# Substrings of op names that identify a fused recurrent kernel.
FUSED_OPS = {"onednn": ("mkldnn_rnn",), "cudnn": ("_cudnn_rnn", "miopen_rnn")}


@dataclass
class StepProfile:
    backend: str                      # observed: onednn | cudnn | native
    cpu_alloc_peak_bytes: Optional[int]  # peak live CPU bytes allocated during the step
    ops: Tuple[str, ...]              # recurrent ops seen (for the error message)


def _allocations(prof) -> Iterable[Tuple[int, int, str]]:
    """(time ns, bytes (+alloc / -free), device type) of every allocator event in the profile."""
    from torch._C._profiler import _EventType  # torch's own event tree; stable since 2.0

    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        e = stack.pop()
        if e.tag == _EventType.Allocation:
            f = e.extra_fields
            yield e.start_time_ns, f.alloc_size, f.device.type
        stack.extend(e.children)


def backend_of(op_names: Iterable[str]) -> str:
    names = list(op_names)
    for backend, markers in FUSED_OPS.items():
        if any(m in n for n in names for m in markers):
            return backend
    return "native"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C++-level stderr (kineto prints a line at every profiler start and stop, which
    would break the progress bar); Python exceptions still propagate with their messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def profile_step(step: Callable[[], object]) -> StepProfile:
    """Run `step` once under the profiler; peak live CPU bytes and the observed backend."""
    with quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    names = {e.name for e in prof.events()}
    rnn_ops = tuple(sorted(n for n in names if "rnn" in n or "lstm" in n or "gru" in n))
    live = peak = 0
    for _, size, device in sorted(_allocations(prof)):
        if device == "cpu":
            live += size
            peak = max(peak, live)
    return StepProfile(backend=backend_of(names), cpu_alloc_peak_bytes=peak, ops=rnn_ops)


def count_flops(forward_loss: Callable[[], torch.Tensor]) -> Tuple[int, int]:
    """(forward, backward) FLOPs that FlopCounterMode sees for one pass; grads are cleared after."""
    with FlopCounterMode(display=False) as fwd:
        loss = forward_loss()
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    return fwd.get_total_flops(), bwd.get_total_flops()


def tensor_bytes(value) -> int:
    """Bytes of memory a tensor operand (or a list of them) spans: its elements, or the extent of
    its strides where that is smaller (an expanded tensor reads its storage once)."""
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    if not isinstance(value, torch.Tensor) or value.numel() == 0:
        return 0
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(value.shape, value.stride()))
    return min(value.numel(), span) * value.element_size()


class ByteCounter(TorchDispatchMode):
    """Bytes read and written by every aten (and custom) op that runs, each tensor operand counted
    once per op, as if it streamed through memory: an upper bound on the memory traffic where
    caches keep nothing between ops, and exact for ops over tensors larger than the caches. Views
    and metadata ops move nothing, nor does an allocation (`empty`); an `out=` argument is written, an in-place `self` read and
    written (`copy_`, `fill_`, `zero_` only write it). A region that torch.compile would fuse runs
    eagerly under a dispatch mode, so it is counted as its eager ops."""

    WRITE_ONLY = ("copy_", "fill_", "zero_")
    NO_DATA = ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "resize_")

    def __init__(self) -> None:
        super().__init__()
        self.read = self.written = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        schema = func._schema
        name = func.__name__.split(".")[0]
        if name in self.NO_DATA or any(r.alias_info is not None and not r.alias_info.is_write
                                       for r in schema.returns):
            return out  # an allocation or a view: no data moves
        write_only = name in self.WRITE_ONLY
        for i, arg in enumerate(schema.arguments):
            value = args[i] if i < len(args) else kwargs.get(arg.name)
            nbytes = tensor_bytes(value)
            if arg.alias_info is not None and arg.alias_info.is_write:
                self.written += nbytes
                if not arg.kwarg_only and not write_only:  # in place: self is read too
                    self.read += nbytes
            else:
                self.read += nbytes
        returns = out if isinstance(out, (list, tuple)) else (out,)
        for r, value in zip(schema.returns, returns):
            if r.alias_info is None:
                self.written += tensor_bytes(value)
        return out

    @property
    def total(self) -> int:
        return self.read + self.written


def count_bytes(forward_loss: Callable[[], torch.Tensor]) -> Tuple[int, int]:
    """(forward, backward) bytes that ByteCounter sees for one pass; grads are left to the caller."""
    with ByteCounter() as fwd:
        loss = forward_loss()
    with ByteCounter() as bwd:
        loss.backward()
    return fwd.total, bwd.total
