"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network"): h_t = relu(W x_t + u * h_{t-1} + b)
(or tanh: `model.nonlinearity`),
a recurrent weight per unit (a vector u, not a matrix); the worked example of
docs/architecture.md, "How to add a cell"."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells.registry import CellSpec, register
from bench.cells.stack import run_stack, suffixes


class IndRNN(nn.Module):
    """torch.nn.RNN's call contract: input (T, B, I), h0 (L*D, B, H) -> output, h_n."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 nonlinearity: str = "relu") -> None:
        super().__init__()
        self.nonlinearity, self.act = nonlinearity, torch.relu if nonlinearity == "relu" else torch.tanh
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, D = bidirectional, 2 if bidirectional else 1
        for layer in range(num_layers):
            for sfx in suffixes(layer, D):
                fan_in = input_size if layer == 0 else D * hidden_size
                self.register_parameter(f"weight_ih{sfx}", nn.Parameter(torch.empty(hidden_size, fan_in)))
                self.register_parameter(f"bias_ih{sfx}", nn.Parameter(torch.zeros(hidden_size)))
                self.register_parameter(f"u{sfx}", nn.Parameter(torch.empty(hidden_size)))
        for name, p in self.named_parameters():
            if name.startswith("weight_ih"):
                nn.init.uniform_(p, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))
            elif name.startswith("u"):
                nn.init.uniform_(p, 0.0, 1.0)  # |u| <= 1: the paper's bound for relu at init

    def forward(self, x: Tensor, h0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        D = 2 if self.bidirectional else 1

        def one(xs: Tensor, sfx: str, k: int) -> Tensor:
            proj = xs @ getattr(self, f"weight_ih{sfx}").T + getattr(self, f"bias_ih{sfx}")
            u = getattr(self, f"u{sfx}")
            h = xs.new_zeros(xs.shape[1], self.hidden_size) if h0 is None else h0[k]
            out = []
            for t in range(xs.shape[0]):
                h = self.act(proj[t] + u * h)
                out.append(h)
            return torch.stack(out)

        y, h_n = run_stack(x, self.num_layers, D, one)
        return y, torch.stack(h_n)


def _step(layer: nn.Module):
    w, b, u = layer.weight_ih_l0, layer.bias_ih_l0, layer.u_l0
    return lambda x, s: (layer.act(x @ w.T + b + u * s[0]),)


def _build(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="relu"):
    return IndRNN(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                  nonlinearity=nonlinearity)


def _params(input_size, hidden_size, num_layers=1, bidirectional=False) -> int:
    D, H = (2 if bidirectional else 1), hidden_size
    return sum(D * H * ((input_size if k == 0 else D * H) + 2) for k in range(num_layers))  # W, b, u


register(CellSpec("indrnn", "plain", IndRNN, _build, gates=1, state_size=1, step=_step,
                  recurrent_matrix=False, inits=frozenset({"default"}), nonlinearities=("tanh", "relu"),
                  param_count=_params, saved_floats=4.5, description="IndRNN (Li et al. 2018): a recurrent weight per unit, relu"))
