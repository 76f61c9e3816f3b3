"""The classic cells and their registry entries: torch.nn's RNN, LSTM and GRU, the gate-level
reference LSTM (`ref_lstm`) and the 1997 LSTM without a forget gate (`lstm1997`).

Every model has the `torch.nn.LSTM` call contract, sequence first:
    input (T, B, I), state -> output (T, B, D*H), state      (D = 2 if bidirectional else 1)
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells.registry import CellSpec, State, StepFn, register, weights
from bench.cells.stack import run_stack, suffixes
from bench.config.schema import INITS


def lstm_cell(x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """One LSTM step from the textbook equations; returns (h, c, the forget gate).

    x_proj = W_ih x_t + b_ih, already computed for all t, (B, 4H); h, c: (B, H).
    PyTorch's gate order in the stacked weights is input, forget, candidate (g), output.
    """
    gates = x_proj + h @ w_hh.T + b_hh
    i_pre, f_pre, g_pre, o_pre = gates.chunk(4, dim=-1)
    i = torch.sigmoid(i_pre)   # input gate: how much of the candidate to write
    f = torch.sigmoid(f_pre)   # forget gate: how much of the old cell to keep
    g = torch.tanh(g_pre)      # candidate cell value
    o = torch.sigmoid(o_pre)   # output gate: how much of the cell to expose
    c = f * c + i * g          # cell update: the additive path gradients travel along
    h = o * torch.tanh(c)      # hidden state
    return h, c, f


class ReferenceLSTM(nn.Module):
    """An LSTM written from the gate equations, a drop-in for `torch.nn.LSTM`.

    Same constructor (input_size, hidden_size, num_layers=1, bidirectional=False), same
    parameter names and shapes (so `load_state_dict(nn.LSTM(...).state_dict())` works), same
    initialisation U(-1/sqrt(H), 1/sqrt(H)) and the same call:
        input (T, B, I) or (T, I), (h0, c0) each (L*D, B, H) -> output, (h_n, c_n)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.num_directions = 2 if bidirectional else 1
        H = hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else H * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(4 * H, layer_input)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(4 * H, H)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(4 * H)))
                self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(4 * H)))
        self.reset_parameters()

    def _suffixes(self, layer: int) -> List[str]:
        return suffixes(layer, self.num_directions)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input: Tensor, hx: Optional[State] = None) -> Tuple[Tensor, State]:
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1)
            hx = None if hx is None else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"ReferenceLSTM: input must be (T, B, {self.input_size}) or "
                             f"(T, {self.input_size}), got {tuple(input.shape)}")
        T, B, _ = input.shape
        if hx is None:
            zeros = input.new_zeros(self.num_layers * self.num_directions, B, self.hidden_size)
            hx = (zeros, zeros)
        c_n: List[Tensor] = []

        def one(x: Tensor, suffix: str, index: int) -> Tensor:
            w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
            b_ih, b_hh = getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")
            # (T, B, 4H) in one matmul for all t; unbind (not x_proj[t]) so that backward
            # assembles the gradient once instead of a (T, B, 4H) zero tensor per step.
            x_proj = (x @ w_ih.T + b_ih).unbind(0)
            h, c = hx[0][index], hx[1][index]
            hs: List[Tensor] = []
            for t in range(T):
                h, c, _ = lstm_cell(x_proj[t], h, c, w_hh, b_hh)
                hs.append(h)
            c_n.append(c)
            return torch.stack(hs)                                   # (T, B, H)

        output, h_n = run_stack(input, self.num_layers, self.num_directions, one)
        state = (torch.stack(h_n), torch.stack(c_n))
        if unbatched:
            output, state = output.squeeze(1), (state[0].squeeze(1), state[1].squeeze(1))
        return output, state


class LSTM1997(nn.LSTM):
    """The LSTM of Hochreiter & Schmidhuber (1997), without a forget gate: c_t = c_{t-1} + i_t g_t,
    the constant error carousel (the forget gate came with Gers et al. 2000).

    torch.nn.LSTM (so oneDNN and cuDNN run it) with its forget gate held open: the forget block
    of every W_ih, W_hh and b_hh is zero and of b_ih FORGET_OPEN, so f = sigmoid(30), which is 1
    in float32 and 1 - 9e-14 in float64; a hook masks their gradients to zero, so no optimiser
    moves them (Adam's and RMSprop's update of a zero gradient is zero). The other gates, the
    nonlinearities and the parameter names are PyTorch's (the paper's g and h were scaled
    sigmoids, and its gates belonged to blocks of cells)."""

    FORGET_OPEN = 30.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        H = self.hidden_size
        forget = slice(H, 2 * H)  # PyTorch's gate order: input, forget, candidate, output
        with torch.no_grad():
            for name, p in self.named_parameters():
                p[forget] = self.FORGET_OPEN if name.startswith("bias_ih") else 0.0
                p.register_hook(lambda g, s=forget: g.index_fill(0, torch.arange(s.start, s.stop, device=g.device), 0.0))


# --- registry entries -------------------------------------------------------------------------

def _rnn_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = weights(layer)
    act = torch.relu if getattr(layer, "nonlinearity", "tanh") == "relu" else torch.tanh
    return lambda x, s: (act(x @ w_ih.T + b_ih + s[0] @ w_hh.T + b_hh),)


def _gru_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = weights(layer)

    def step(x: Tensor, s: State) -> State:
        gi, gh = (x @ w_ih.T + b_ih).chunk(3, -1), (s[0] @ w_hh.T + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(gi[0] + gh[0]), torch.sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + r * gh[2])
        return ((1 - z) * n + z * s[0],)
    return step


def _lstm_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = weights(layer)

    def step(x: Tensor, s: State) -> State:
        h, c, _ = lstm_cell(x @ w_ih.T + b_ih, s[0], s[1], w_hh, b_hh)
        return h, c
    return step


def _rnn(input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
         nonlinearity: str = "tanh") -> nn.Module:
    return nn.RNN(input_size, hidden_size, num_layers=num_layers, nonlinearity=nonlinearity,
                  bidirectional=bidirectional)


def _no_nonlinearity(cls):
    def build(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh"):
        return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional)
    return build


GATED_INITS = frozenset(INITS)
register(CellSpec("rnn", "plain", nn.RNN, _rnn, gates=1, state_size=1, step=_rnn_step,
                  fused={"cuda": "cudnn"}, nonlinearities=("tanh", "relu"),
                  saved_floats=3.5, description="Elman RNN, torch.nn.RNN (tanh or relu)"))
register(CellSpec("lstm", "lstm", nn.LSTM, _no_nonlinearity(nn.LSTM), gates=4, state_size=2, step=_lstm_step,
                  fused={"cpu": "onednn", "cuda": "cudnn"}, memory_gate=1, inits=GATED_INITS,
                  saved_floats=26, description="torch.nn.LSTM (oneDNN on CPU in float32/bfloat16, cuDNN on GPU)"))
register(CellSpec("gru", "gru", nn.GRU, _no_nonlinearity(nn.GRU), gates=3, state_size=1, step=_gru_step,
                  fused={"cuda": "cudnn"}, memory_gate=1, inits=GATED_INITS,
                  saved_floats=12.5, description="torch.nn.GRU"))
register(CellSpec("ref_lstm", "lstm", ReferenceLSTM, _no_nonlinearity(ReferenceLSTM), gates=4, state_size=2,
                  step=_lstm_step, memory_gate=1, inits=GATED_INITS,
                  saved_floats=13.5, description="LSTM from the gate equations, a Python loop over aten ops"))
register(CellSpec("lstm1997", "cec", LSTM1997, _no_nonlinearity(LSTM1997), gates=4, state_size=2,
                  step=_lstm_step, fused={"cpu": "onednn", "cuda": "cudnn"}, memory_gate=1,
                  inits=frozenset({"default"}),
                  saved_floats=26, description="LSTM without a forget gate (Hochreiter & Schmidhuber 1997): "
                              "torch.nn.LSTM with f held at 1"))
