"""Kernels for the diagonal linear recurrence h_t = a_t * h_{t-1} + b_t, in linear space.

Pure functions on (a, b, h0): a, b (T, B, H) (real or complex, the same dtype), h0 (B, H) or
None (zeros); they return h (T, B, H). The cells (bench/cells/diagonal.py, bench/cells/lru.py) choose one by `model.path`:

- `fused_loop`: one `addcmul` a step, forward and backward (kernel `loop`);
- `chunked`: chunks of C steps; every chunk runs its C steps at once (the chunks side by side),
  then a carry crosses the chunks one by one, then every chunk runs again from its true start:
  2C + T/C tensor ops instead of T, each over T/C rows;
- `cpp`: a C++ op (forward and backward loops over t, vectorised over B x H), built on first use
  by `torch.utils.cpp_extension` under `build/` (git-ignored; its source and builder are
  bench/cells/cpp_linrec.py); where it cannot be built, one line says why and the `chunked` kernel
  runs instead (`kernel_of` says which ran);
- `compiled`: the `cpp` kernel, with the cell's coefficients (a, b) from its input projection
  compiled by `torch.compile` (`compiled`), so that their pointwise ops run as one fused loop
  forward and one backward instead of ~8 and ~12 passes over (T, B, H), each a fresh allocation.

All share one autograd rule (LinearRecurrence): the backward of a linear recurrence is the same
recurrence run backwards, g_t = dh_t + a_{t+1}^* g_{t+1}, with grad b = g, grad a_t = g_t h_{t-1}^*
and grad h0 = a_0^* g_0 (* the complex conjugate, torch's convention for complex gradients), so
backward costs one more pass of the kernel instead of an autograd graph of T nodes. No kernel
divides or takes a logarithm: each multiplies by |a| <= 1 only, so it is stable in float32 for a
in (0, 1), for signed a in (-1, 1) and for the LRU's complex |lambda| < 1 alike.
"""
from __future__ import annotations

import sys
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from bench.cells import cpp_linrec

# The `model.path` values. `loop` and `scan` are the paths `model.scan` names (false, true): the
# autograd loop and Heinsen's log-space scan, both in bench/cells/diagonal.py; the rest are kernels here.
PATHS = ("loop", "fused_loop", "scan", "chunked", "cpp", "compiled")
LEGACY_PATHS = {"scan": True, "loop": False}  # the paths `model.scan` names, and its value there
KERNEL_OF_PATH = {"fused_loop": "loop", "chunked": "chunked", "cpp": "cpp", "compiled": "cpp"}
# The chunk size C of `chunked` where `model.chunk` is null, chosen by measurement (minGRU's
# training step, hidden 64, batch 16, one thread, C = 16..256 alternately; 2 CPUs under load):
# best at T=1024 (76.8 ms; 16: 78.1, 256: 91.6), 1.02x the best (C=128) at T=4096; the kernel
# alone is flat within 10% over 16..128. tests/benchmarks/test_paths.py::test_chunk_size re-measures.
DEFAULT_CHUNK = 64
# Passes over (T, B, H) of each kernel, (forward, backward), as bench.measures.observe.ByteCounter
# counts them (each op reads its operands and writes its outputs once), for T >> C >> 1:
#   loop     forward addcmul a step (a_t, b_t, h_{t-1} read, h_t written) 4; backward the same
#            in reverse 4, grad a = g * h_prev 3;
#   chunked  forward (1) addcmul a step over the chunks 4, the product 1, (3) addcmul 4;
#            backward the same 9, grad a 3;
#   cpp      forward a, b read, h written 3; backward a, h, dh read, g, grad a written 5.
# Memory traffic is lower where caches hold an operand: h_{t-1} was written a step ago, and the
# chunked kernel's running (T/C, B, H) states fit in L2 at T = 4096, so from DRAM the loop moves
# 3 + 6, the chunked 6 + 9, the C++ op 3 + 5 (tests/test_recurrence.py holds PASSES to the counter).
PASSES = {"loop": (4, 7), "chunked": (9, 12), "cpp": (3, 5)}

Kernel = Callable[[Tensor, Tensor, Optional[Tensor], bool, Tensor, int], Tensor]


def _loop(a: Tensor, b: Tensor, h0: Optional[Tensor], reverse: bool, out: Tensor, chunk: int) -> Tensor:
    """out_t = a_t * out_{t-1} + b_t (reverse: out_t = a_t * out_{t+1} + b_t), one addcmul a step,
    written in place into out (T, B, H); h0 the state before the first step (None: zeros)."""
    T = a.shape[0]
    order = range(T - 1, -1, -1) if reverse else range(T)
    a_, b_, o_ = a.unbind(0), b.unbind(0), out.unbind(0)  # views made once, not T times per step
    prev = h0
    for t in order:
        if prev is None:
            o_[t].copy_(b_[t])
        else:
            torch.addcmul(b_[t], a_[t], prev, out=o_[t])
        prev = o_[t]
    return out


def _chunked(a: Tensor, b: Tensor, h0: Optional[Tensor], reverse: bool, out: Tensor, chunk: int) -> Tensor:
    """The recurrence by chunks of C = `chunk` steps, into out (T, B, H).

    With n = T // C chunks viewed as (n, C, N): (1) every chunk runs its own recurrence from a
    zero state, all n chunks in each of C ops (only the chunks' last states are kept, (n, N)),
    and its transition product (one reduction); (2) the carry h_in[c+1] = P[c] h_in[c] + last[c] crosses the chunks,
    n ops; (3) every chunk runs again from its true start h_in[c], writing out, C ops. The steps
    left over (T mod C) run as the loop. 6 passes over (T, N) from memory instead of the loop's 3,
    in 2C + n ops instead of T."""
    T, C = a.shape[0], chunk
    n = T // C
    if n < 2:
        return _loop(a, b, h0, reverse, out, chunk)
    r = T - n * C
    # forward: the chunks cover [0, nC), the tail [nC, T) follows; reverse: the chunks cover
    # [r, T) (where a reverse pass starts), the head [0, r) follows
    main = slice(r, T) if reverse else slice(0, n * C)
    rest = slice(0, r) if reverse else slice(n * C, T)
    shape = (n, C) + a.shape[1:]
    A, Bv, O = a[main].reshape(shape), b[main].reshape(shape), out[main].view(shape)
    steps = range(C - 1, -1, -1) if reverse else range(C)
    first = C - 1 if reverse else 0
    # (1) local states from zero (two (n, N) buffers in turn: no allocation a step), and the
    # chunk's transition product P = prod of a over the chunk, one reduction
    local, spare = Bv[:, first].clone(), torch.empty_like(Bv[:, first])
    for j in steps:
        if j != first:
            torch.addcmul(Bv[:, j], A[:, j], local, out=spare)
            local, spare = spare, local
    prod = A.prod(dim=1)
    # (2) carry across the chunks, in the pass's direction: start[c] is chunk c's incoming state
    start = torch.empty_like(local)
    order = range(n - 1, -1, -1) if reverse else range(n)
    prev = h0
    for c in order:
        if prev is None:
            start[c].zero_()
            prev = local[c]
        else:
            start[c].copy_(prev)
            prev = torch.addcmul(local[c], prod[c], prev)
    # (3) every chunk from its true start
    prev = start
    for j in steps:
        torch.addcmul(Bv[:, j], A[:, j], prev, out=O[:, j])
        prev = O[:, j]
    if r:  # the leftover steps continue from the main block's end
        edge = out[main][0] if reverse else out[main][-1]
        _loop(a[rest], b[rest], edge, reverse, out[rest], chunk)
    return out


KERNELS: Dict[str, Kernel] = {"loop": _loop, "chunked": _chunked}  # cpp: the op itself, forward and backward


def kernel_of(path: str) -> str:
    """The kernel that runs for `path` here: `cpp` falls back to `chunked` (and says so once, on
    stderr) where the C++ op cannot be built."""
    kernel = KERNEL_OF_PATH[path]
    if kernel == "cpp":
        reason = cpp_linrec.cpp_kernel()
        if reason is not None:
            if not cpp_linrec.BUILD_STATE.get("warned"):
                print(f"bench.cells.recurrence: model.path=cpp runs the chunked kernel: {reason}", file=sys.stderr)
                cpp_linrec.BUILD_STATE["warned"] = True
            return "chunked"
    return kernel


_COMPILED: Dict[Callable, Callable] = {}
_COMPILED_THREADS: Dict[str, int] = {}


def compiled(fn: Callable) -> Callable:
    """`torch.compile(fn)`, made once per function on first use (inductor generates C++ for the
    CPU, so it needs the compiler `cpp` needs); symbolic shapes, so a new T does not recompile.
    Inductor fixes the thread count in the code it generates and no guard checks it (pytorch
    issue 167463), so when torch's thread count changes in a process (a rounds run measuring one
    and two threads) every compiled function is compiled again."""
    threads = torch.get_num_threads()
    if _COMPILED_THREADS.get("n", threads) != threads:
        torch._dynamo.reset()
        _COMPILED.clear()
    _COMPILED_THREADS["n"] = threads
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn]


def forget_compiled() -> None:
    """Drop every compiled function, so that the next call compiles afresh. A compiled function
    called under a TorchDispatchMode (FlopCounterMode, ByteCounter) runs eagerly from then on in
    this process, even once the mode has exited (torch 2.13: a profiled step then shows
    aten::sigmoid instead of CompiledFunction, and minGRU's T=1024 step took 2x as long), so a
    measure that counts FLOPs or bytes calls this before it times (bench/measures/throughput.py)."""
    torch._dynamo.reset()
    _COMPILED.clear()


def recurrence_bytes(kernel: str, T: int, N: int, itemsize: int) -> Tuple[int, int]:
    """(forward, backward) bytes the kernel's ops read and write for (T, N) coefficients (PASSES)."""
    fwd, bwd = PASSES[kernel]
    return fwd * T * N * itemsize, bwd * T * N * itemsize


def _conj(x: Tensor) -> Tensor:
    return x.conj().resolve_conj() if x.is_complex() else x


class LinearRecurrence(torch.autograd.Function):
    """h = recurrence(a, b, h0) by one kernel, forward and backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Optional[Tensor], kernel: str, chunk: int) -> Tensor:
        a, b = a.contiguous(), b.contiguous()
        if kernel == "cpp":
            h = torch.ops.rnn_bench.linrec(a, b, h0, False)
        else:
            h = KERNELS[kernel](a, b, None if h0 is None else h0.contiguous(), False, torch.empty_like(b), chunk)
        ctx.save_for_backward(a, h, h0)
        ctx.kernel, ctx.chunk = kernel, chunk
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, dh: Tensor):
        a, h, h0 = ctx.saved_tensors
        dh = dh.contiguous()
        if ctx.kernel == "cpp":
            g, grad_a = torch.ops.rnn_bench.linrec_backward(a, h, dh, h0)
        else:
            # g_t = dh_t + a*_{t+1} g_{t+1}: the kernel in reverse over t < T-1, from g_{T-1} = dh_{T-1}
            g = torch.empty_like(dh)
            g[-1] = dh[-1]
            if a.shape[0] > 1:
                KERNELS[ctx.kernel](_conj(a[1:]), dh[:-1], g[-1], True, g[:-1], ctx.chunk)
            grad_a = None
            if ctx.needs_input_grad[0]:
                grad_a = torch.empty_like(g)
                torch.mul(g[1:], _conj(h[:-1]), out=grad_a[1:])
                if h0 is None:
                    grad_a[0].zero_()
                else:
                    torch.mul(g[0], _conj(h0), out=grad_a[0])
        grad_h0 = None if h0 is None or not ctx.needs_input_grad[2] else _conj(a[0]) * g[0]
        return grad_a, g, grad_h0, None, None


def recurrence(a: Tensor, b: Tensor, h0: Optional[Tensor] = None, path: str = "fused_loop",
               chunk: Optional[int] = None) -> Tensor:
    """h (T, B, H), h_t = a_t h_{t-1} + b_t with h_{-1} = h0 (None: zeros), by the kernel of
    `path` (fused_loop, chunked, cpp); differentiable in a, b and h0."""
    if path not in KERNEL_OF_PATH:
        raise ValueError(f"path={path!r}: the linear-space kernels are {', '.join(KERNEL_OF_PATH)}")
    if a.shape != b.shape:
        a = a.expand_as(b)  # e.g. the LRU's time-invariant lambda (H,)
    chunk = DEFAULT_CHUNK if chunk is None else chunk
    if chunk < 1:
        raise ValueError(f"chunk={chunk}: must be a positive int")
    return LinearRecurrence.apply(a, b, h0, kernel_of(path), chunk)
