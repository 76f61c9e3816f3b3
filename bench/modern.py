"""Recurrent cells that train by parallel scan: minGRU and minLSTM (Feng et al. 2024, "Were RNNs
All We Needed?"), in plain PyTorch, registered in bench/registry.py.

Both drop the hidden state from their gates, so the recurrence is diagonal and linear in h:

    h_t = a_t * h_{t-1} + b_t,     a_t, b_t in (0, 1] x (0, inf), functions of x_t only.

minGRU: z = sigmoid(k), a = 1 - z, b = z * g(h~). minLSTM: f' = f / (f + i), i' = i / (f + i),
a = f', b = i' * g(h~), with f = sigmoid(k_f), i = sigmoid(k_i). g(x) = x + 1/2 for x >= 0,
sigmoid(x) below: positive, so that b has a logarithm (the paper's log-space form).

Two paths compute the same h from the same log-space coefficients (log a, log b):
- `scan=True`: Heinsen's (2023) parallel scan, log h_t = a*_t + logcumsumexp_t(log b - a*),
  a* = cumsum(log a): O(log T) depth, the whole sequence in a few tensor ops;
- `scan=False`: the sequential loop h = a h + b, one step at a time.
tests/test_modern.py holds them equal to float64 rounding, outputs and gradients.

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


def log_g(x: Tensor) -> Tensor:
    """log g(x), g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0): continuous and positive."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def parallel_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for all t at once, in log space (Heinsen 2023); (T, B, H)."""
    a_star = torch.cumsum(log_a, dim=0)
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0))
    return h if h0 is None else h + torch.exp(a_star) * h0


def sequential_scan(log_a: Tensor, log_b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """The same recurrence one step at a time."""
    a, b = log_a.exp(), log_b.exp()
    h = torch.zeros_like(b[0]) if h0 is None else h0
    out: List[Tensor] = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


class DiagonalRNN(nn.Module):
    """Shared body of the diagonal cells: input projections of G blocks, then the scan."""

    GATES = 0  # blocks of the input projection

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, scan: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional, self.scan = num_layers, bidirectional, scan
        self.num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}",
                                        nn.Parameter(torch.empty(self.GATES * hidden_size, layer_input)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(self.GATES * hidden_size)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> List[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # as torch.nn.GRU
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        """(log a, log b) from the input projection (..., G*H)."""
        raise NotImplementedError

    def keep(self, x: Tensor, layer: int = 0, suffix: str = "_l0") -> Tensor:
        """a_t, the factor h_{t-1} is multiplied by (the memory gate), for input x (T, B, I)."""
        proj = x @ getattr(self, f"weight_ih{suffix}").T + getattr(self, f"bias_ih{suffix}")
        return self.coefficients(proj)[0].exp()

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (T, B, {self.input_size}), "
                             f"got {tuple(input.shape)}")
        run = parallel_scan if self.scan else sequential_scan
        layer_input, h_n = input, []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                x = layer_input if direction == 0 else layer_input.flip(0)
                proj = x @ getattr(self, f"weight_ih{suffix}").T + getattr(self, f"bias_ih{suffix}")
                log_a, log_b = self.coefficients(proj)
                h0 = None if hx is None else hx[layer * self.num_directions + direction]
                h = run(log_a, log_b, h0)
                h_n.append(h[-1])
                outputs.append(h if direction == 0 else h.flip(0))
            layer_input = torch.cat(outputs, dim=-1)
        return layer_input, torch.stack(h_n)


class MinGRU(DiagonalRNN):
    """minGRU: h_t = (1 - z_t) h_{t-1} + z_t g(h~_t), z_t = sigmoid(W_z x_t + b_z)."""

    GATES = 2  # z, h~

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        k, h_tilde = proj.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(h_tilde)   # log(1 - z), log z + log g


class MinLSTM(DiagonalRNN):
    """minLSTM: h_t = f'_t h_{t-1} + i'_t g(h~_t), f' = f / (f + i), i' = i / (f + i)."""

    GATES = 3  # f, i, h~

    def coefficients(self, proj: Tensor) -> Tuple[Tensor, Tensor]:
        k_f, k_i, h_tilde = proj.chunk(3, dim=-1)
        diff = F.softplus(-k_f) - F.softplus(-k_i)                 # log i - log f
        return -F.softplus(diff), -F.softplus(-diff) + log_g(h_tilde)  # log f', log i' + log g
