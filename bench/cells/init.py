"""Initialisation schemes (`model.init`, `model.gain`, `model.forget_bias`), applied after the
module's own (PyTorch's default) initialisation, to every layer and direction.

- `default`: PyTorch's, U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
- `orthogonal`: each gate block of W_hh a random orthogonal matrix (Saxe et al. 2014; Arjovsky
  et al. 2016 for its role in RNNs); biases zero; input weights PyTorch's.
- `identity`: each gate block of W_hh the identity, biases zero (Le et al. 2015: with
  `model.nonlinearity=relu` on `rnn` this is the IRNN); input weights PyTorch's.
- `xavier`: Glorot-uniform gate blocks of W_ih and W_hh (Glorot & Bengio 2010); biases zero.
- `chrono` (gated cells): PyTorch's weights; the memory gate's bias b ~ log(U(1, T_max - 1)) and,
  for the LSTM family, the input gate's bias -b (Tallec & Ollivier 2018), so that the gate holds
  memory over time scales up to T_max (`model.chrono_tmax`, by default the sequence length).
- `gain` multiplies W_hh after the scheme: the recurrent matrix's scale (spectral radius for an
  orthogonal or identity W_hh).
- `forget_bias` is added to the memory gate's bias_ih (the LSTM family's forget-bias ladder).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

if TYPE_CHECKING:
    from bench.cells.registry import CellSpec


def apply_init(model: nn.Module, spec: "CellSpec", init: str = "default", gain: float = 1.0,
               forget_bias: Optional[float] = None, chrono_tmax: Optional[int] = None) -> nn.Module:
    H = model.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            kind = name.split("_l")[0]  # weight_ih, weight_hh, bias_ih, bias_hh
            blocks = p.split(H, dim=0)  # the G gate blocks (views into p)
            if kind == "weight_hh":
                for blk in blocks:
                    if init == "orthogonal":
                        nn.init.orthogonal_(blk)
                    elif init == "identity":
                        blk.copy_(torch.eye(H, dtype=p.dtype))
                    elif init == "xavier":
                        nn.init.xavier_uniform_(blk)
                p.mul_(gain)
            elif kind == "weight_ih" and init == "xavier":
                for blk in blocks:
                    nn.init.xavier_uniform_(blk)
            elif kind.startswith("bias"):
                if init in ("orthogonal", "identity", "xavier"):
                    p.zero_()
                elif init == "chrono":
                    chrono(p, spec, H, kind, chrono_tmax)
            if kind == "bias_ih" and forget_bias is not None:
                p[spec.memory_gate * H:(spec.memory_gate + 1) * H] += forget_bias
    return model


def chrono(bias: torch.Tensor, spec: "CellSpec", H: int, kind: str, t_max: Optional[int]) -> None:
    """Chrono biases (Tallec & Ollivier 2018) on one bias vector; bias_hh's slices are zeroed so
    that the effective bias b_ih + b_hh is exactly the chrono value."""
    if t_max is None or t_max < 2:
        raise ValueError(f"model.chrono_tmax={t_max}: chrono needs T_max >= 2")
    memory = slice(spec.memory_gate * H, (spec.memory_gate + 1) * H)
    if kind == "bias_hh":
        bias[memory] = 0.0
        if spec.family == "lstm":
            bias[:H] = 0.0
        return
    b = torch.log(torch.empty(H, dtype=bias.dtype).uniform_(1.0, max(t_max - 1.0, 1.0 + 1e-6)))
    bias[memory] = b
    if spec.family == "lstm":
        bias[:H] = -b  # the input gate: PyTorch's order is input, forget, candidate, output

