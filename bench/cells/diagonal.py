"""The diagonal recurrent cells, in plain PyTorch, with their registry entries: minGRU and
minLSTM (Feng et al. 2024, "Were RNNs All We Needed?") and the signed-transition minGRU (the
state-tracking control), which train by parallel scan; the scans they share with the LRU
(bench/cells/lru.py). sLSTM, which keeps a nonlinear recurrence, is bench/cells/xlstm.py.

Both drop the hidden state from their gates, so the recurrence is diagonal and linear in h:

    h_t = a_t * h_{t-1} + b_t,     a_t, b_t in (0, 1] x (0, inf), functions of x_t only.

minGRU: z = sigmoid(k), a = 1 - z, b = z * g(h~). minLSTM: f' = f / (f + i), i' = i / (f + i),
a = f', b = i' * g(h~), with f = sigmoid(k_f), i = sigmoid(k_i). g(x) = x + 1/2 for x >= 0,
sigmoid(x) below: positive, so that b has a logarithm (the paper's log-space form).

Two paths compute the same h from the same log-space coefficients (log a, log b):
- `scan=True` (`path=scan`): Heinsen's (2023) parallel scan, log h_t = a*_t + logcumsumexp_t(log b - a*),
  a* = cumsum(log a): O(log T) depth, the whole sequence in a few tensor ops;
- `scan=False` (`path=loop`): the sequential loop h = a h + b, one step at a time, under autograd.
The other `model.path` values (`fused_loop`, `chunked`, `cpp`, `compiled`: the same with the
coefficients compiled by torch.compile) take the coefficients in linear space
(`linear_coefficients`) to the kernels of bench/cells/recurrence.py, for every diagonal cell, the
LRU's complex recurrence included (all but `compiled`); `compiled` projects each gate block apart.
tests/test_modern.py holds every path equal to the loop to float64 rounding, outputs and gradients.

The module keeps torch.nn.LSTM's call contract and parameter naming (weight_ih_l{k}[_reverse],
bias_ih_l{k}[_reverse]; there is no weight_hh: nothing multiplies h but the diagonal a_t), so
stacking, bidirectional passes, layer_stack and the init schemes work as for the classic cells.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from bench.cells.recurrence import LEGACY_PATHS, PATHS, compiled, recurrence
from bench.cells.registry import CellSpec, State, StepFn, register
from bench.cells.stack import run_stack, suffixes


def resolve_path(scan: bool, path: Optional[str]) -> str:
    """The path a cell runs: `path` where given, else the one `scan` names."""
    return path if path is not None else ("scan" if scan else "loop")


def log_g(x: Tensor) -> Tensor:
    """log g(x), g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0): continuous and positive."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def g(x: Tensor) -> Tensor:
    """g(x) itself, in linear space (the paths that need no logarithm): relu(x) + sigmoid(-relu(-x))
    is x + 1/2 above 0 and sigmoid(x) below. No torch.where (nor clamp, whose backward is one):
    on this suite's CPU its kernel measured ~8x slower than sigmoid over a (4096, 16, 64) tensor."""
    return F.relu(x) + torch.sigmoid(-F.relu(-x))


def parallel_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for all t at once, in log space (Heinsen 2023); (T, B, H)."""
    a_star = torch.cumsum(log_a, dim=0)
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    return h if h0 is None else h + torch.exp(a_star) * h0


def sequential_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """The same recurrence one step at a time."""
    # unbind, not a[t]: indexing would make backward build a (T, B, H) zero tensor per step,
    # O(T^2) work that the loop would be charged for (as in bench/cells/classic.py's ReferenceLSTM)
    a, b = log_a.exp().unbind(0), log_b.exp().unbind(0)
    h = torch.zeros_like(b[0]) if h0 is None else h0
    out: List[Tensor] = []
    for a_t, b_t in zip(a, b):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out)


class DiagonalRNN(nn.Module):
    """Shared body of the diagonal cells: input projections of G blocks, then the scan."""

    GATES = 0  # blocks of the input projection

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, scan: bool = True, path: Optional[str] = None,
                 chunk: Optional[int] = None) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.path, self.chunk = resolve_path(scan, path), chunk
        self.scan = self.path == "scan"
        self.num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}",
                                        nn.Parameter(torch.empty(self.GATES * hidden_size, layer_input)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(self.GATES * hidden_size)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> List[str]:
        return suffixes(layer, self.num_directions)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # as torch.nn.GRU
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        """(log a, log b) from the input projection (..., G*H)."""
        raise NotImplementedError

    def transition(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        """(a, b) in linear space, h_t = a_t h_{t-1} + b_t: what the loop and the single step use."""
        log_a, log_b = self.coefficients(proj)
        return log_a.exp(), log_b.exp()

    def linear_coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        """(a, b) in linear space without a logarithm where that is exact (the kernel paths)."""
        return self.gate_coefficients(*proj.chunk(self.GATES, dim=-1))

    def gate_coefficients(self, *blocks: Tensor) -> Tuple[Tensor, Tensor]:
        """linear_coefficients from the projection's G blocks (..., H) each."""
        return self.transition(torch.cat(blocks, dim=-1))

    def keep(self, x: Tensor, layer: int = 0, suffix: str = "_l0") -> Tensor:
        """|a_t|, the magnitude of the factor h_{t-1} is multiplied by (the memory gate), for input
        x (T, B, I)."""
        proj = x @ getattr(self, f"weight_ih{suffix}").T + getattr(self, f"bias_ih{suffix}")
        return self.transition(proj)[0].abs()

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (T, B, {self.input_size}), "
                             f"got {tuple(input.shape)}")
        legacy = self.path in LEGACY_PATHS

        def one(x: Tensor, suffix: str, index: int) -> Tensor:
            w, bias = getattr(self, f"weight_ih{suffix}"), getattr(self, f"bias_ih{suffix}")
            # the kernel paths add the bias inside the GEMM (addmm: one pass over the (T, B, G*H)
            # projection fewer); loop and scan stay the ops their stored points were measured with
            h0 = None if hx is None else hx[index]
            if self.path == "compiled":
                # one projection per gate block, so that the compiled coefficients' backward writes
                # each block's gradient whole: from one (T, B, G*H) projection inductor wrote them
                # through a masked concatenation, ~3x slower at T=4096 (tests/benchmarks/test_paths.py,
                # test_where_the_fastest_path_spends_its_step)
                blocks = [F.linear(x, wg, bg) for wg, bg in zip(w.chunk(self.GATES), bias.chunk(self.GATES))]
                a, b = compiled(type(self).gate_coefficients)(self, *blocks)
                return recurrence(a, b, h0, self.path, self.chunk)
            proj = x @ w.T + bias if legacy else F.linear(x, w, bias)
            return self.recur(proj, h0)

        output, h_n = run_stack(input, self.num_layers, self.num_directions, one)
        return output, torch.stack(h_n)


    def recur(self, proj: Tensor, h0: Optional[Tensor]) -> Tensor:
        """h for every step (T, B, H) from the input projection, by the path `path` selects."""
        if self.path not in LEGACY_PATHS:
            coefficients = type(self).linear_coefficients
            a, b = (compiled(coefficients) if self.path == "compiled" else coefficients)(self, proj)
            return recurrence(a, b, h0, self.path, self.chunk)
        log_a, log_b = self.coefficients(proj)
        return (parallel_scan if self.scan else sequential_scan)(log_a, log_b, h0)


class MinGRU(DiagonalRNN):
    """minGRU: h_t = (1 - z_t) h_{t-1} + z_t g(h~_t), z_t = sigmoid(W_z x_t + b_z)."""

    GATES = 2  # z, h~

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        k, h_tilde = proj.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(h_tilde)   # log(1 - z), log z + log g

    def gate_coefficients(self, k: Tensor, h_tilde: Tensor) -> Tuple[Tensor, Tensor]:
        return torch.sigmoid(-k), torch.sigmoid(k) * g(h_tilde)   # 1 - z without cancellation


class MinLSTM(DiagonalRNN):
    """minLSTM: h_t = f'_t h_{t-1} + i'_t g(h~_t), f' = f / (f + i), i' = i / (f + i)."""

    GATES = 3  # f, i, h~

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = proj.chunk(3, dim=-1)
        diff = F.softplus(-k_f) - F.softplus(-k_i)                 # log i - log f
        return -F.softplus(diff), -F.softplus(-diff) + log_g(h_tilde)  # log f', log i' + log g

    def gate_coefficients(self, k_f: Tensor, k_i: Tensor, h_tilde: Tensor) -> Tuple[Tensor, Tensor]:
        # f' = f / (f + i) = sigmoid(log f - log i), the difference taken from softplus: finite
        # where f and i both underflow (f / (f + i) would be 0 / 0 there)
        diff = F.softplus(-k_f) - F.softplus(-k_i)                 # log i - log f
        return torch.sigmoid(-diff), torch.sigmoid(diff) * g(h_tilde)


class SignedMinGRU(MinGRU):
    """minGRU with a signed transition: a_t = 1 - 2 z_t in (-1, 1), b_t = z_t g(h~_t).

    The control of the state-tracking study (Grazzi et al. 2025, "Unlocking State-Tracking in
    Linear RNNs Through Negative Eigenvalues"): identical to minGRU but for the transition's
    range; z_t = 0 keeps h, z_t = 1 flips its sign and adds g(h~). A transition in [0, 1] cannot
    track parity at every length with finite precision; one in [-1, 1] can.

    The loop runs in linear space (exact). The scan carries the signs in complex logarithms,
    log a = log|a| + i pi [a < 0], through the same log-space scan as the LRU's, and keeps the
    real part (the imaginary part is rounding); tests/test_modern.py holds the two paths equal.
    """

    def transition(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        k, h_tilde = proj.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return 1 - 2 * z, z * torch.exp(log_g(h_tilde))

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        a, b = self.transition(proj)
        log_a = torch.complex(torch.log(a.abs()), math.pi * (a < 0).to(a.dtype))
        return log_a, torch.log(b)

    def gate_coefficients(self, k: Tensor, h_tilde: Tensor) -> Tuple[Tensor, Tensor]:
        return torch.tanh(-0.5 * k), torch.sigmoid(k) * g(h_tilde)   # 1 - 2 sigmoid(k) = tanh(-k/2)

    def recur(self, proj: Tensor, h0: Optional[Tensor]) -> Tensor:
        if self.path not in LEGACY_PATHS:  # the kernels take the signed a as it is
            return DiagonalRNN.recur(self, proj, h0)
        if self.scan:
            log_a, log_b = self.coefficients(proj)
            h = parallel_scan(log_a, log_b.to(log_a.dtype), None if h0 is None else h0.to(log_a.dtype))
            return h.real
        a, b = self.transition(proj)
        out: List[Tensor] = []
        h = torch.zeros_like(b[0]) if h0 is None else h0
        for a_t, b_t in zip(a.unbind(0), b.unbind(0)):  # unbind: see sequential_scan
            h = a_t * h + b_t
            out.append(h)
        return torch.stack(out)


# --- registry entries -------------------------------------------------------------------------

def _diagonal_step(layer: nn.Module) -> StepFn:
    w, b = layer.weight_ih_l0, layer.bias_ih_l0

    def step(x: Tensor, s: State) -> State:
        a, b_t = layer.transition(x @ w.T + b)
        return (a * s[0] + b_t,)
    return step


def _diagonal(cls):
    def build(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh", scan=True,
              path=None, chunk=None):
        return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, scan=scan,
                   path=path, chunk=chunk)
    return build


DIAGONAL_INITS = frozenset({"default", "xavier"})
register(CellSpec("mingru", "diagonal", MinGRU, _diagonal(MinGRU), gates=2, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=True, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  saved_floats=19, description="minGRU (Feng et al. 2024): diagonal, parallel scan or loop"))
register(CellSpec("minlstm", "diagonal", MinLSTM, _diagonal(MinLSTM), gates=3, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=True, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  saved_floats=20, description="minLSTM (Feng et al. 2024): diagonal, parallel scan or loop"))

register(CellSpec("mingru_signed", "diagonal", SignedMinGRU, _diagonal(SignedMinGRU), gates=2, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=False, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  saved_floats=29, description="minGRU with a signed transition a_t = 1 - 2 z_t in (-1, 1): the "
                              "state-tracking control (Grazzi et al. 2025); loop or complex-log scan"))
