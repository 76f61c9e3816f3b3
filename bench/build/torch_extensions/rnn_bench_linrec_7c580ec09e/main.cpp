#include <torch/extension.h>

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
