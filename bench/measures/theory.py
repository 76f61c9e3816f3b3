"""What the weights predict for the per-step gradient decay (log10) of a layer's forward pass.

- `gate_decay_per_step` (gated cells): the textbook argument along the diagonal path. LSTM
  family: the forget gate (c_t = f_t c_{t-1} + ...); gru: the update gate z (h_t = (1-z) n +
  z h_{t-1}). The top exponent of a product of diagonal matrices is the largest over units of
  the time-mean log10 gate: the slowest unit sets the decay (`slowest_gate` is its time-mean
  gate), not the mean over units. For a diagonal recurrence this is the asymptotic rate: far
  from the readout the slowest unit dominates; over a finite window the gradient is a mixture of
  every unit's decay and falls faster than the slowest unit alone (tests/test_modern.py checks the
  rate on the far half of a long sequence). For LSTM and GRU it also leaves out the hidden path.
- `rnn_heuristic_decay_per_step` (plain cells): log10(spectral radius(W_hh) x mean phi'), with
  phi' the nonlinearity's derivative (tanh' = 1 - h^2; relu' = 1 where h > 0), a heuristic
  (the product of a radius and a mean derivative is not the exponent of the Jacobian product).
- `jacobian_decay_per_step`: the top Lyapunov exponent of the backward product of the full
  recurrent Jacobians d(state_t)/d(state_{t-1}) along the trajectory (state = h, or (h, c)),
  estimated by normalised vector-Jacobian products. Backprop multiplies the same Jacobians, so
  this is a consistency check of the measured decay, not an independent prediction.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor, nn

from bench.cells.registry import CellSpec

State = Tuple[Tensor, ...]


def trajectory(step: Callable, x: Tensor, n_state: int, hidden: int) -> list:
    """States (h,) or (h, c) before each step: [state_{-1}, state_0, ..., state_{T-2}]."""
    state = tuple(x.new_zeros(x.shape[1], hidden) for _ in range(n_state))
    states = []
    for t in range(x.shape[0]):
        states.append(state)
        state = step(x[t], state)
    return states


def lyapunov(step: Callable, x: Tensor, states: list) -> float:
    """Mean log10 growth per step of v <- v J_t, backward from t = T-1 (transient dropped)."""
    v = tuple(torch.ones_like(s) / math.sqrt(sum(t.shape[-1] for t in states[0])) for s in states[0])
    logs = []
    for t in range(x.shape[0] - 1, 0, -1):
        prev = tuple(s.detach().requires_grad_(True) for s in states[t])
        with torch.enable_grad():
            v = torch.autograd.grad(step(x[t], prev), prev, grad_outputs=v)
        n = torch.sqrt(sum((g ** 2).sum(-1, keepdim=True) for g in v)).clamp_min(1e-300)
        logs.append(torch.log10(n).mean().item())
        v = tuple(g / n for g in v)
    skip = len(logs) // 10
    return sum(logs[skip:]) / max(1, len(logs) - skip)


@torch.no_grad()
def theory_columns(spec: CellSpec, layer0: nn.Module, x: Tensor) -> Dict[str, float]:
    """The theory columns of `layer0` (single layer, forward direction) on input x (T, B, I);
    which apply is the registry's call: the memory gate where the cell has one, the radius
    heuristic where it has none (docs/architecture.md, "Measured, not modelled")."""
    H = layer0.hidden_size
    step = spec.step(layer0)
    states = trajectory(step, x, spec.state_size, H)
    h_prev = torch.stack([s[0] for s in states])                 # (T, B, H)
    cols = {"jacobian_decay_per_step": lyapunov(step, x, states), "gate_decay_per_step": math.nan,
            "rnn_heuristic_decay_per_step": math.nan, "mean_gate": math.nan,
            "slowest_gate": math.nan, "spectral_radius": math.nan, "mean_tanh_deriv": math.nan}
    gate = spec.memory_gate_values(layer0, x, h_prev)            # (T, B, H) or None
    if gate is not None:  # LSTM family: forget gate; GRU: update gate
        per_unit = torch.log10(gate).mean(dim=(0, 1))                     # time-mean, per unit
        slowest = int(per_unit.argmax())
        cols.update(gate_decay_per_step=per_unit.max().item(), mean_gate=gate.mean().item(),
                    slowest_gate=gate[..., slowest].mean().item())
    elif spec.family == "plain" and spec.recurrent_matrix:  # (IndRNN: no W_hh, no spectrum)
        h = torch.stack([s[0] for s in states[1:]] + [step(x[-1], states[-1])[0]])
        relu = getattr(layer0, "nonlinearity", "tanh") == "relu"
        deriv = ((h > 0).double().mean() if relu else (1 - h ** 2).mean()).item()
        w_hh = layer0.weight_hh_l0.double()
        # A diverged model (weights inf or NaN after training) has no spectrum; LAPACK would abort
        # the process on such a matrix rather than raise.
        rho = torch.linalg.eigvals(w_hh).abs().max().item() if torch.isfinite(w_hh).all() else math.nan
        heuristic = math.log10(rho * deriv) if rho * deriv > 0 else (-math.inf if rho * deriv == 0 else math.nan)
        cols.update(spectral_radius=rho, mean_tanh_deriv=deriv, rnn_heuristic_decay_per_step=heuristic)
    return cols
