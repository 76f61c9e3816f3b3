"""The C++ linear-recurrence op behind `model.path=cpp` and `compiled` (bench/cells/recurrence.py).

`torch.ops.rnn_bench.linrec(a, b, h0, reverse)` runs h_t = a_t h_{t-1} + b_t forward, and
`linrec_backward(a, h, dh, h0)` its backward (g and grad a), each one loop over t vectorised over
B x H, for float32, float64 and their complex types. `cpp_kernel()` builds it on first use with
`torch.utils.cpp_extension.load_inline` (cached on disk under build/, keyed by the source's hash)
and says in one line why not where it cannot (no compiler, a failed build); the caller then runs
the chunked kernel. docs/architecture.md, "Layout".
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch

BUILD_DIR = Path(__file__).resolve().parent.parent / "build" / "torch_extensions"

CPP_SOURCE = r"""
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>
#include <c10/util/complex.h>

namespace {

template <typename T> inline T conj_(T x) { return x; }
template <typename T> inline c10::complex<T> conj_(c10::complex<T> x) { return std::conj(x); }

// h_t = a_t * h_{t-1} + b_t over t, (T, N) contiguous; reverse: t from T-1 down, h_T = h0.
// Each thread takes a block of the N columns and runs every t over it: the inner loop is
// contiguous and vectorises; the state is rounded to scalar_t each step, as aten's ops round.
at::Tensor linrec(const at::Tensor& a_in, const at::Tensor& b_in, const c10::optional<at::Tensor>& h0_in,
                  bool reverse) {
  TORCH_CHECK(a_in.sizes() == b_in.sizes() && a_in.dim() >= 1, "linrec: a and b must have one shape (T, ...)");
  TORCH_CHECK(a_in.scalar_type() == b_in.scalar_type(), "linrec: a and b must have one dtype");
  auto a = a_in.contiguous(), b = b_in.contiguous();
  auto h = at::empty_like(b);
  const int64_t T = a.size(0), N = T ? a.numel() / T : 0;
  at::Tensor h0;
  if (h0_in.has_value() && h0_in->defined()) h0 = h0_in->contiguous().to(a.scalar_type());
  if (T == 0 || N == 0) return h;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES_AND1(at::kBFloat16, a.scalar_type(), "linrec", [&] {
    const scalar_t* A = a.data_ptr<scalar_t>();
    const scalar_t* B = b.data_ptr<scalar_t>();
    const scalar_t* H0 = h0.defined() ? h0.data_ptr<scalar_t>() : nullptr;
    scalar_t* O = h.data_ptr<scalar_t>();
    using opmath_t = at::opmath_type<scalar_t>;
    at::parallel_for(0, N, 2048, [&](int64_t lo, int64_t hi) {
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = reverse ? T - 1 - s : s;
        const scalar_t* at_ = A + t * N; const scalar_t* bt = B + t * N; scalar_t* ot = O + t * N;
        const scalar_t* prev = s ? O + (reverse ? t + 1 : t - 1) * N : H0;
        if (prev) {
          for (int64_t i = lo; i < hi; ++i)
            ot[i] = static_cast<scalar_t>(static_cast<opmath_t>(at_[i]) * static_cast<opmath_t>(prev[i])
                                          + static_cast<opmath_t>(bt[i]));
        } else {
          for (int64_t i = lo; i < hi; ++i) ot[i] = bt[i];
        }
      }
    });
  });
  return h;
}

// The backward of h = linrec(a, b, h0) in one reverse pass: g_t = dh_t + conj(a_{t+1}) g_{t+1},
// grad_a_t = g_t conj(h_{t-1}) (h_{-1} = h0, or 0). Returns (g = grad b, grad a).
std::tuple<at::Tensor, at::Tensor> linrec_backward(const at::Tensor& a_in, const at::Tensor& h_in,
                                                   const at::Tensor& dh_in, const c10::optional<at::Tensor>& h0_in) {
  auto a = a_in.contiguous(), h = h_in.contiguous(), dh = dh_in.contiguous().to(a.scalar_type());
  auto g = at::empty_like(h), ga = at::empty_like(h);
  const int64_t T = a.size(0), N = T ? a.numel() / T : 0;
  at::Tensor h0;
  if (h0_in.has_value() && h0_in->defined()) h0 = h0_in->contiguous().to(a.scalar_type());
  if (T == 0 || N == 0) return {g, ga};
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES_AND1(at::kBFloat16, a.scalar_type(), "linrec_backward", [&] {
    const scalar_t* A = a.data_ptr<scalar_t>();
    const scalar_t* Hs = h.data_ptr<scalar_t>();
    const scalar_t* D = dh.data_ptr<scalar_t>();
    const scalar_t* H0 = h0.defined() ? h0.data_ptr<scalar_t>() : nullptr;
    scalar_t* G = g.data_ptr<scalar_t>();
    scalar_t* GA = ga.data_ptr<scalar_t>();
    using opmath_t = at::opmath_type<scalar_t>;
    at::parallel_for(0, N, 2048, [&](int64_t lo, int64_t hi) {
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* dt = D + t * N; scalar_t* gt = G + t * N; scalar_t* gat = GA + t * N;
        const scalar_t* hp = t ? Hs + (t - 1) * N : H0;
        if (t == T - 1) {
          for (int64_t i = lo; i < hi; ++i) gt[i] = dt[i];
        } else {
          const scalar_t* an = A + (t + 1) * N; const scalar_t* gn = G + (t + 1) * N;
          for (int64_t i = lo; i < hi; ++i)
            gt[i] = static_cast<scalar_t>(conj_(static_cast<opmath_t>(an[i])) * static_cast<opmath_t>(gn[i])
                                          + static_cast<opmath_t>(dt[i]));
        }
        if (hp) {
          for (int64_t i = lo; i < hi; ++i)
            gat[i] = static_cast<scalar_t>(static_cast<opmath_t>(gt[i]) * conj_(static_cast<opmath_t>(hp[i])));
        } else {
          for (int64_t i = lo; i < hi; ++i) gat[i] = scalar_t(0);
        }
      }
    });
  });
  return {g, ga};
}

}  // namespace

TORCH_LIBRARY(rnn_bench, m) {
  m.def("linrec(Tensor a, Tensor b, Tensor? h0, bool reverse) -> Tensor");
  m.def("linrec_backward(Tensor a, Tensor h, Tensor dh, Tensor? h0) -> (Tensor, Tensor)");
}
TORCH_LIBRARY_IMPL(rnn_bench, CPU, m) {
  m.impl("linrec", &linrec);
  m.impl("linrec_backward", &linrec_backward);
}
"""

BUILD_STATE: Dict[str, object] = {}  # "ok": True once built and loaded, or "error": the reason it is not


def cpp_kernel() -> Optional[str]:
    """Build (once per process, cached on disk under BUILD_DIR) and load the C++ op; None when
    it is loaded, else the one-line reason it cannot be (no compiler, a failed build)."""
    if "ok" in BUILD_STATE or "error" in BUILD_STATE:
        return BUILD_STATE.get("error")
    if hasattr(torch.ops, "rnn_bench") and hasattr(torch.ops.rnn_bench, "linrec"):
        BUILD_STATE["ok"] = True
        return None
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        BUILD_STATE["error"] = f"no C++ compiler ({compiler!r} not on PATH)"
        return BUILD_STATE["error"]
    try:
        from torch.utils.cpp_extension import load_inline
        digest = hashlib.sha256(CPP_SOURCE.encode()).hexdigest()[:10]
        build = BUILD_DIR / f"rnn_bench_linrec_{digest}"
        build.mkdir(parents=True, exist_ok=True)
        load_inline(f"rnn_bench_linrec_{digest}", cpp_sources=[CPP_SOURCE], build_directory=str(build),
                    extra_cflags=["-O3"], is_python_module=False, verbose=False)
        BUILD_STATE["ok"] = True
        return None
    except Exception as exc:
        BUILD_STATE["error"] = f"build failed: {type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
        return BUILD_STATE["error"]
