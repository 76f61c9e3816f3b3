"""The linear-recurrence kernels (bench/cells/recurrence.py) on raw coefficients: each equals the plain
recurrence to float64 rounding, forward and backward (gradcheck), for a in (0, 1), signed a in
(-1, 1) and complex |a| < 1, with and without an initial state, at lengths that are and are not
multiples of the chunk; each stays accurate in float32 over long sequences; `cpp` falls back to
`chunked` with one line where the C++ op cannot be built."""
import pytest
import torch

from bench.cells import cpp_linrec
from bench.cells import recurrence as rec
from bench.cells.recurrence import KERNEL_OF_PATH, kernel_of, recurrence

KERNEL_PATHS = [p for p in KERNEL_OF_PATH if p != "compiled"]  # compiled runs cpp's kernel


def plain(a, b, h0=None):
    """h_t = a_t h_{t-1} + b_t, written out."""
    h, out = (torch.zeros_like(b[0]) if h0 is None else h0), []
    for a_t, b_t in zip(a, b):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out)


def coefficients(kind, T, gen, dtype=torch.float64):
    shape = (T, 3, 4)
    if kind == "complex":
        r = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.999
        phase = torch.rand(shape, generator=gen, dtype=torch.float64) * 6.283
        a = torch.polar(r, phase)
        b = torch.complex(torch.randn(shape, generator=gen, dtype=torch.float64),
                          torch.randn(shape, generator=gen, dtype=torch.float64))
        return a, b
    a = torch.rand(shape, generator=gen, dtype=torch.float64)
    return (2 * a - 1 if kind == "signed" else a).to(dtype), torch.randn(shape, generator=gen, dtype=dtype)


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("kind", ["unit", "signed", "complex"])
@pytest.mark.parametrize("T,chunk", [(1, 4), (5, 4), (8, 4), (70, 16), (130, 64), (257, 16), (33, 1)])
@pytest.mark.parametrize("h0", [False, True])
def test_kernel_equals_the_recurrence_forward_and_backward(path, kind, T, chunk, h0):
    gen = torch.Generator().manual_seed(T)
    a, b = coefficients(kind, T, gen)
    start = torch.randn(3, 4, generator=gen, dtype=torch.float64).to(a.dtype) if h0 else None
    inputs = [t.clone().requires_grad_(True) for t in (a, b) + ((start,) if h0 else ())]
    w = torch.randn(b.shape, generator=gen, dtype=torch.float64).to(b.dtype)
    grads = []
    for fn in (plain, lambda *t: recurrence(*t, path=path, chunk=chunk)):
        h = fn(*inputs[:2], inputs[2] if h0 else None)
        (h * w).real.sum().backward()
        grads.append((h.detach(), [t.grad.clone() for t in inputs]))
        for t in inputs:
            t.grad = None
    (h_ref, g_ref), (h_k, g_k) = grads
    assert torch.allclose(h_k, h_ref, rtol=1e-12, atol=1e-12 * h_ref.abs().max().item())
    for g, r in zip(g_k, g_ref):
        assert torch.allclose(g, r, rtol=1e-11, atol=1e-12 * r.abs().max().item())


@pytest.mark.parametrize("path", KERNEL_PATHS)
def test_kernel_gradients_pass_gradcheck(path):
    gen = torch.Generator().manual_seed(0)
    for kind in ("signed", "complex"):
        a, b = coefficients(kind, 11, gen)
        h0 = torch.randn(3, 4, generator=gen, dtype=torch.float64).to(a.dtype)
        args = [t.requires_grad_(True) for t in (a, b, h0)]
        assert torch.autograd.gradcheck(lambda *t: recurrence(*t, path=path, chunk=4), args)


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("kind", ["long_memory", "short_memory", "signed"])
def test_float32_stays_accurate_over_long_sequences(path, kind):
    """T = 4096 in float32 against float64: a near 1 (memory of ~1000 steps, where h grows large),
    a near 0 (products underflow to 0, which a divide-by-the-product closed form would turn into
    inf/nan) and signed a. No kernel takes a logarithm or divides, so each keeps float32's rounding
    of the loop: within 1e-4 of the largest |h|, forward and backward."""
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(4096, 4, 8, generator=gen, dtype=torch.float64)
    a = {"long_memory": 1 - 1e-3 * u, "short_memory": 1e-3 * u, "signed": 2 * u - 1}[kind]
    b = torch.rand(a.shape, generator=gen, dtype=torch.float64)
    a64, b64 = a.requires_grad_(True), b.requires_grad_(True)
    w = torch.randn(a.shape, generator=gen, dtype=torch.float64)
    h64 = plain(a64, b64)
    (h64 * w).sum().backward()
    a32, b32 = a.detach().float().requires_grad_(True), b.detach().float().requires_grad_(True)
    h32 = recurrence(a32, b32, path=path, chunk=64)
    (h32 * w.float()).sum().backward()
    assert torch.isfinite(h32).all() and torch.isfinite(a32.grad).all()
    assert (h32.double() - h64).abs().max() < 1e-4 * h64.abs().max()
    for g32, g64 in ((a32.grad, a64.grad), (b32.grad, b64.grad)):
        assert (g32.double() - g64).abs().max() < 1e-4 * g64.abs().max()


def test_cpp_falls_back_to_chunked_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cpp_linrec, "BUILD_STATE", {"error": "no C++ compiler ('c++' not on PATH)"})
    assert kernel_of("cpp") == "chunked" and kernel_of("cpp") == "chunked"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.path=cpp runs the chunked kernel: no C++ compiler" in err
    a, b = torch.rand(20, 2, 3, dtype=torch.float64), torch.randn(20, 2, 3, dtype=torch.float64)
    assert torch.allclose(recurrence(a, b, path="cpp"), plain(a, b), rtol=1e-12)


def test_the_loop_kernel_is_one_op_a_step():
    """fused_loop: one aten op a step forward (addcmul) and one backward, not an autograd graph."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))
    a = torch.rand(50, 2, 3, requires_grad=True)
    b = torch.randn(50, 2, 3, requires_grad=True)
    with Ops() as fwd:
        h = recurrence(a, b, path="fused_loop")
    with Ops() as bwd:
        h.sum().backward()
    assert sum(n.startswith("addcmul") for n in fwd.names) == 49
    assert sum(n.startswith("addcmul") for n in bwd.names) == 49


@pytest.mark.parametrize("kernel", list(rec.PASSES))
def test_the_passes_formula_is_what_the_byte_counter_counts(kernel):
    """bench/cells/recurrence.py PASSES, held to ByteCounter on the kernel alone (T >> C >> 1: within 3%)."""
    from bench.measures.observe import ByteCounter
    T, N = 4096, 64
    a, b = torch.rand(T, N, requires_grad=True), torch.randn(T, N, requires_grad=True)
    dh = torch.randn(T, N)
    path = {"loop": "fused_loop", "chunked": "chunked", "cpp": "cpp"}[kernel]
    if kernel == "cpp" and cpp_linrec.cpp_kernel() is not None:
        pytest.skip(f"the C++ op cannot be built here: {cpp_linrec.cpp_kernel()}")
    with ByteCounter() as fwd:
        h = recurrence(a, b, path=path, chunk=64)
    with ByteCounter() as bwd:
        h.backward(dh)
    want = rec.recurrence_bytes(kernel, T, N, 4)
    assert fwd.total == pytest.approx(want[0], rel=0.03) and bwd.total == pytest.approx(want[1], rel=0.03)


def test_a_new_thread_count_compiles_again():
    """Inductor fixes the thread count in the code it generates and no guard checks it: the
    compiled path must compile again when a process changes torch's thread count."""
    import bench.cells.recurrence as rec
    fn = lambda x: x * 2
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = rec.compiled(fn)
        assert rec.compiled(fn) is one
        torch.set_num_threads(2)
        two = rec.compiled(fn)
        assert two is not one and rec.compiled(fn) is two
    finally:
        torch.set_num_threads(before)
