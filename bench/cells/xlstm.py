"""sLSTM (Beck et al. 2024, xLSTM) in plain PyTorch, with its registry entry: a nonlinear
recurrence with exponential gating that trains step by step, the modern cell that keeps LSTM's
expressive recurrence (the diagonal ones are bench/cells/diagonal.py)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from bench.cells.classic import ReferenceLSTM
from bench.cells.registry import CellSpec, State, StepFn, register, weights
from bench.cells.stack import run_stack


def slstm_cell(pre: Tensor, c: Tensor, n: Tensor, m: Tensor, sigmoid_forget: bool = False
               ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One sLSTM step (Beck et al. 2024, eqs. 8-17) from its pre-activations (B, 4H) in the order
    input, forget, cell input z, output; returns (h, c, n, m, the stabilised forget gate).

    Exponential input and forget gates, i = exp(i~), f = exp(f~), held in range by the stabiliser
    m_t = max(f~ + m_{t-1}, i~): i' = exp(i~ - m_t), f' = exp(f~ + m_{t-1} - m_t), both <= 1. The
    normaliser n_t = f' n_{t-1} + i' divides the cell, so h = o * c / n is what the paper's
    unstabilised form gives: the stabiliser cancels in c / n.

    `sigmoid_forget`: the forget gate of the official xLSTM code, f = sigmoid(f~), taken in log
    space (log f = logsigmoid(f~)) through the same stabiliser; the input gate stays exponential."""
    i_pre, f_pre, z_pre, o_pre = pre.chunk(4, dim=-1)
    if sigmoid_forget:
        f_pre = F.logsigmoid(f_pre)
    m_new = torch.maximum(f_pre + m, i_pre)
    i = torch.exp(i_pre - m_new)
    f = torch.exp(f_pre + m - m_new)
    c = f * c + i * torch.tanh(z_pre)
    n = f * n + i
    h = torch.sigmoid(o_pre) * c / n
    return h, c, n, m_new, f


FORGET_GATES = ("exponential", "sigmoid")  # `model.forget_gate` for slstm (null: exponential)


def powerlaw_forget_bias(hidden_size: int, block: int = 0, blocks: int = 1) -> Tensor:
    """The official xLSTM forget-gate bias (`bias_init="powerlaw_blockdependent"`, one head):
    -(-5 + 12 (k / (H - 1))^(0.3 + 1.3 block / (blocks - 1))) for unit k, from +5 down to -7:
    units with time scales from very long to very short at init."""
    exponent = 0.3 + (1.3 * block / (blocks - 1) if blocks > 1 else 0.0)
    k = torch.arange(hidden_size, dtype=torch.float64) / max(hidden_size - 1, 1)
    return -(-5 + 12 * k ** exponent)


class SLSTM(ReferenceLSTM):
    """sLSTM (Beck et al. 2024, xLSTM): the LSTM with exponential gating, a normaliser state and a
    stabiliser state, sequential only (the recurrence through W_hh is nonlinear, so there is no
    scan). torch.nn.LSTM's parameter names and gate order (i, f, z, o), one head (the paper's
    block-diagonal W_hh with one block), PyTorch's initialisation: the reference LSTM's
    parameters (bench/cells/classic.py) under other equations. The state starts at zero (h, c, n, m), as
    in the paper's code.

    `forget_gate="sigmoid"` is the official code's parameterisation (NX-AI/xlstm,
    blocks/slstm: log f = logsigmoid(f~)) with its initialisation: the powerlaw forget-gate bias
    (`powerlaw_forget_bias`, block = layer), the other gates' biases and the recurrent weights zero
    (`recurrent_weight_init="zeros"`). The official block's layer norm, convolution and
    up-projection are not built: this is the recurrent cell alone."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, forget_gate: str = "exponential") -> None:
        if forget_gate not in FORGET_GATES:
            raise ValueError(f"SLSTM: forget_gate={forget_gate!r}: allowed {FORGET_GATES}")
        self.forget_gate = forget_gate
        super().__init__(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_gate != "sigmoid":
            return
        H = self.hidden_size
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith(("weight_hh", "bias_hh")):
                    p.zero_()
                elif name.startswith("bias_ih"):
                    layer = int(name.split("_l")[1].split("_")[0])
                    p.zero_()
                    p[H:2 * H] = powerlaw_forget_bias(H, layer, self.num_layers).to(p.dtype)

    def run(self, x: Tensor, suffix: str = "_l0") -> Tuple[Tensor, Tensor]:
        """The loop over x (T, B, I): (h for every step (T, B, H), stabilised forget gates (T, B, H))."""
        p = lambda n: getattr(self, n + suffix)
        proj = (x @ p("weight_ih").T + p("bias_ih")).unbind(0)   # unbind: see bench/cells/diagonal.py, sequential_scan
        h = c = n = m = x.new_zeros(x.shape[1], self.hidden_size)
        hs, fs = [], []
        for proj_t in proj:
            h, c, n, m, f = slstm_cell(proj_t + h @ p("weight_hh").T + p("bias_hh"), c, n, m,
                                       self.forget_gate == "sigmoid")
            hs.append(h)
            fs.append(f)
        return torch.stack(hs), torch.stack(fs)

    def keep(self, x: Tensor) -> Tensor:
        """The stabilised forget gate along the trajectory of x: what multiplies c_{t-1}."""
        return self.run(x)[1]

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"SLSTM: input must be (T, B, {self.input_size}), got {tuple(input.shape)}")
        if hx is not None:
            raise ValueError("SLSTM: an initial state is not supported; pass hx=None")
        output, h_n = run_stack(input, self.num_layers, self.num_directions,
                                lambda x, suffix, index: self.run(x, suffix)[0])
        return output, torch.stack(h_n)


# --- registry entry ---------------------------------------------------------------------------

def _slstm_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = weights(layer)

    sigmoid = layer.forget_gate == "sigmoid"

    def step(x: Tensor, s: State) -> State:
        return slstm_cell(x @ w_ih.T + b_ih + s[0] @ w_hh.T + b_hh, *s[1:], sigmoid)[:4]
    return step


def _slstm(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh",
           forget_gate="exponential"):
    return SLSTM(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                 forget_gate=forget_gate)


register(CellSpec("slstm", "exponential", SLSTM, _slstm, gates=4, state_size=4,
                  step=_slstm_step, memory_gate=1, keep=lambda layer, x: layer.keep(x),
                  forget_gates=FORGET_GATES,
                  saved_floats=21, description="sLSTM (Beck et al. 2024): exponential gating, normaliser and stabiliser, loop"))
