"""Cell implementations the registry (bench/registry.py) builds on: the gate-level reference
LSTM, the layer-by-layer split of a stacked module, the FLOP count of a G-gate cell.

Every model has the `torch.nn.LSTM` call contract, sequence first:
    input (T, B, I), state -> output (T, B, D*H), state      (D = 2 if bidirectional else 1)
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

State = Tuple[Tensor, Tensor]


def lstm_cell(x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """One LSTM step from the textbook equations; returns (h, c, forget gate).

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
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, input: Tensor, hx: Optional[State] = None) -> Tuple[Tensor, State]:
        output, state, _ = self.forward_with_gates(input, hx)
        return output, state

    def forward_with_gates(self, input: Tensor, hx: Optional[State] = None
                           ) -> Tuple[Tensor, State, Dict[Tuple[int, int], Tensor]]:
        """As forward, plus the forget gates {(layer, direction): (T, B, H)}."""
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1)
            hx = None if hx is None else (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"ReferenceLSTM: input must be (T, B, {self.input_size}) or "
                             f"(T, {self.input_size}), got {tuple(input.shape)}")
        T, B, _ = input.shape
        n_states = self.num_layers * self.num_directions
        if hx is None:
            zeros = input.new_zeros(n_states, B, self.hidden_size)
            hx = (zeros, zeros)
        h0, c0 = hx
        h_n, c_n, forget = [], [], {}
        layer_input = input
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
                b_ih, b_hh = getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")
                # (T, B, 4H) in one matmul for all t; unbind (not x_proj[t]) so that backward
                # assembles the gradient once instead of a (T, B, 4H) zero tensor per step.
                x_proj = (layer_input @ w_ih.T + b_ih).unbind(0)
                idx = layer * self.num_directions + direction
                h, c = h0[idx], c0[idx]
                hs: List[Optional[Tensor]] = [None] * T
                fs: List[Optional[Tensor]] = [None] * T
                steps = range(T) if direction == 0 else range(T - 1, -1, -1)
                for t in steps:
                    h, c, f = lstm_cell(x_proj[t], h, c, w_hh, b_hh)
                    hs[t], fs[t] = h, f
                outputs.append(torch.stack(hs))             # (T, B, H)
                forget[(layer, direction)] = torch.stack(fs)
                h_n.append(h)
                c_n.append(c)
            layer_input = torch.cat(outputs, dim=-1)         # (T, B, D*H)
        output, state = layer_input, (torch.stack(h_n), torch.stack(c_n))
        if unbatched:
            output, state = output.squeeze(1), (state[0].squeeze(1), state[1].squeeze(1))
        return output, state, forget


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


def layer_stack(model: nn.Module) -> List[nn.Module]:
    """The model split into single-layer modules with the same weights (copies).

    Running them in sequence computes exactly what the fused multi-layer module computes, and
    exposes each layer's input so that per-layer gradients can be read in one backward pass.
    """
    layers = []
    D = 2 if model.bidirectional else 1
    extra = {"nonlinearity": model.nonlinearity} if isinstance(model, nn.RNN) else {}
    if hasattr(model, "scan"):  # the diagonal cells keep their path (bench/modern.py)
        extra["scan"] = model.scan
    if hasattr(model, "path"):
        extra.update(path=model.path, chunk=model.chunk)
    if hasattr(model, "forget_gate"):  # sLSTM keeps its forget-gate form (bench/xlstm.py)
        extra["forget_gate"] = model.forget_gate
    for layer in range(model.num_layers):
        in_size = model.input_size if layer == 0 else model.hidden_size * D
        single = type(model)(in_size, model.hidden_size, num_layers=1, bidirectional=model.bidirectional, **extra)
        suffixes = (f"_l{layer}", f"_l{layer}_reverse")
        single.load_state_dict({name.replace(f"_l{layer}", "_l0"): p.detach().clone()
                                for name, p in model.named_parameters() if name.endswith(suffixes)})
        layers.append(single.to(next(model.parameters())))
    return layers


def step_flops(gates: int, input_size: int, hidden_size: int, num_layers: int,
               bidirectional: bool, seq_len: int, batch_size: int, recurrent: bool = True) -> Tuple[int, int]:
    """(forward, backward) matmul FLOPs of one training pass, as FlopCounterMode counts them
    on aten's native loop (tests/test_throughput.py holds it there within 1%); for the fused
    kernels (oneDNN, cuDNN) that hide their matmuls from the counter.

    Per layer k and direction, G gate blocks, in_k = I (k = 0) or D*H:
      forward  2*G*H*(in_k + H) * T * B                      (input and recurrent matmuls)
      backward weight gradients, as many FLOPs as the forward; the input gradient
               2*G*H*in_k * T * B except at layer 0 (x does not require grad); the recurrent
               gradient 2*G*H*H * (T-1) * B (the initial state does not require grad).
    Gate nonlinearities and the optimiser step are left out, as the counter leaves them out.
    `recurrent=False` (the diagonal cells): no W_hh, so no recurrent matmuls or gradients.
    """
    D, G, H, T, B = (2 if bidirectional else 1), gates, hidden_size, seq_len, batch_size
    fwd = bwd = 0
    for k in range(num_layers):
        in_k = input_size if k == 0 else D * H
        rec = H if recurrent else 0
        layer_fwd = 2 * G * H * (in_k + rec) * T * B
        fwd += D * layer_fwd
        bwd += D * (layer_fwd + (2 * G * H * in_k * T * B if k > 0 else 0) + 2 * G * H * rec * (T - 1) * B)
    return fwd, bwd
