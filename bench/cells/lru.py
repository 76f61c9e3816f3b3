"""The Linear Recurrent Unit (Orvieto et al. 2023): a complex, diagonal, time-invariant recurrence
between two pointwise maps, with its registry entry. It shares the diagonal cells' scans and
kernels (bench/cells/diagonal.py, bench/cells/recurrence.py); tests/test_modern.py holds every
path equal to the loop to float64 rounding, outputs and gradients.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from bench.cells.diagonal import _diagonal, parallel_scan, resolve_path, sequential_scan
from bench.cells.recurrence import LEGACY_PATHS, PATHS, recurrence
from bench.cells.registry import CellSpec, State, StepFn, register
from bench.cells.stack import run_stack, suffixes


class LRU(nn.Module):
    """The Linear Recurrent Unit (Orvieto et al. 2023), one block per layer and direction:

        u_t = gelu(W_ih x_t + b_ih)                       (the pointwise MLP before the recurrence)
        h_t = lambda * h_{t-1} + gamma * (B u_t)          (complex, diagonal, time-invariant)
        y_t = Re(C h_t) + D u_t                           (the layer's output, real, H wide)

    lambda = exp(-exp(nu) + i exp(theta)): the stable exponential parameterisation, |lambda| < 1 for
    every nu. Ring initialisation: |lambda| uniform on the ring r_min <= |lambda| <= r_max (by
    area), phase uniform on [0, max_phase]; gamma = sqrt(1 - |lambda|^2) (log-parameterised) keeps
    the state's scale at init. Defaults are the paper's long-range settings (r_min 0.9, r_max 0.999,
    max_phase pi/10). The state has H complex units; B and C are complex (real and imaginary
    parameters), so every matmul is real and FlopCounterMode sees it (LRU.flops).

    Where the paper's block puts the MLP after the recurrence, here it sits before it, so that one
    layer is nonlinear in its input (a stack of blocks is the same sequence of operations); a
    linear recurrence with a linear readout alone could not form the products the long-lag tasks
    need. The paths of the recurrence are those of the other diagonal cells: `scan=True` Heinsen's
    log-space scan on complex logs, `scan=False` the loop, and the kernels of bench/cells/recurrence.py
    on the complex (a, b) = (lambda, gamma B u) (tests/test_modern.py holds them equal).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, scan: bool = True, r_min: float = 0.9,
                 r_max: float = 0.999, max_phase: float = math.pi / 10, path: Optional[str] = None,
                 chunk: Optional[int] = None) -> None:
        super().__init__()
        if not 0 <= r_min < r_max < 1:
            raise ValueError(f"LRU: ring radii must satisfy 0 <= r_min < r_max < 1, got {r_min}, {r_max}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.path, self.chunk = resolve_path(scan, path), chunk
        self.scan = self.path == "scan"
        if self.path == "compiled":
            raise ValueError("LRU: path=compiled is not supported (its coefficients are complex); use cpp")
        self.num_directions = 2 if bidirectional else 1
        self.ring = (r_min, r_max, max_phase)
        H = hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else H * self.num_directions
            for suffix in suffixes(layer, self.num_directions):
                shapes = {"weight_ih": (H, layer_input), "bias_ih": (H,), "nu": (H,), "theta": (H,),
                          "gamma": (H,), "weight_b_re": (H, H), "weight_b_im": (H, H),
                          "weight_c_re": (H, H), "weight_c_im": (H, H), "weight_d": (H, H)}
                for name, shape in shapes.items():
                    self.register_parameter(name + suffix, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r_min, r_max, max_phase = self.ring
        H = self.hidden_size
        for name, p in self.named_parameters():
            kind = name.rsplit("_l", 1)[0]
            with torch.no_grad():
                if kind in ("weight_ih", "bias_ih"):
                    bound = 1.0 / math.sqrt(getattr(self, "weight_ih" + name[name.rindex("_l"):]).shape[1])
                    nn.init.uniform_(p, -bound, bound)
                elif kind == "nu":    # |lambda|^2 uniform on [r_min^2, r_max^2]: uniform by area
                    u = torch.rand(H) * (r_max ** 2 - r_min ** 2) + r_min ** 2
                    p.copy_(torch.log(-0.5 * torch.log(u)))
                elif kind == "theta":
                    p.copy_(torch.log(max_phase * torch.rand(H).clamp_min(1e-4)))
                elif kind in ("weight_b_re", "weight_b_im"):
                    nn.init.normal_(p, std=1.0 / math.sqrt(2 * H))
                elif kind in ("weight_c_re", "weight_c_im", "weight_d"):
                    nn.init.normal_(p, std=1.0 / math.sqrt(H))
        for name, p in self.named_parameters():   # gamma after nu, whatever the order
            if name.startswith("gamma"):
                with torch.no_grad():
                    lam_abs = torch.exp(-torch.exp(getattr(self, name.replace("gamma", "nu"))))
                    p.copy_(0.5 * torch.log1p(-lam_abs ** 2))

    def log_lambda(self, suffix: str = "_l0") -> Tensor:
        """log lambda = -exp(nu) + i exp(theta), (H,) complex."""
        return torch.complex(-torch.exp(getattr(self, f"nu{suffix}")), torch.exp(getattr(self, f"theta{suffix}")))

    def drive(self, x: Tensor, suffix: str = "_l0") -> Tuple[Tensor, Tensor]:
        """(u, gamma * B u) for input x (..., I): the real MLP output and the complex drive."""
        p = lambda n: getattr(self, n + suffix)
        u = F.gelu(x @ p("weight_ih").T + p("bias_ih"))
        scale = torch.exp(p("gamma"))
        return u, torch.complex(u @ p("weight_b_re").T * scale, u @ p("weight_b_im").T * scale)

    def recur(self, log_lam: Tensor, b: Tensor) -> Tensor:
        """h (T, B, H) complex from log lambda (H,) and the drive b (T, B, H), by `path`."""
        if self.path not in LEGACY_PATHS:
            return recurrence(torch.exp(log_lam), b, None, self.path, self.chunk)
        run = parallel_scan if self.scan else sequential_scan
        return run(log_lam.expand_as(b), torch.log(b))

    def readout(self, h: Tensor, u: Tensor, suffix: str = "_l0") -> Tensor:
        p = lambda n: getattr(self, n + suffix)
        return h.real @ p("weight_c_re").T - h.imag @ p("weight_c_im").T + u @ p("weight_d").T

    def keep(self, x: Tensor, suffix: str = "_l0") -> Tensor:
        """|lambda| broadcast to (T, B, H): the singular values of the diagonal Jacobian."""
        return torch.exp(-torch.exp(getattr(self, f"nu{suffix}"))).expand(*x.shape[:2], self.hidden_size)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        if input.dim() != 3 or input.shape[-1] != self.input_size:
            raise ValueError(f"LRU: input must be (T, B, {self.input_size}), got {tuple(input.shape)}")
        if hx is not None:
            raise ValueError("LRU: an initial state is not supported (the state is complex); pass hx=None")
        def one(x: Tensor, suffix: str, index: int) -> Tensor:
            u, b = self.drive(x, suffix)
            return self.readout(self.recur(self.log_lambda(suffix), b), u, suffix)

        output, h_n = run_stack(input, self.num_layers, self.num_directions, one)
        return output, torch.stack(h_n)

    @staticmethod
    def params(input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False) -> int:
        """Per layer and direction: W_ih and b_ih (H*(in + 1)), nu, theta, gamma (3H), B, C (2 x 2H^2),
        D (H^2)."""
        D, H = (2 if bidirectional else 1), hidden_size
        return sum(D * (H * ((input_size if k == 0 else D * H) + 4) + 5 * H * H) for k in range(num_layers))

    @staticmethod
    def flops(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, seq_len: int,
              batch_size: int) -> Tuple[int, int]:
        """(forward, backward) matmul FLOPs: per token, layer and direction 2*H*in_k (W_ih) and
        5 x 2*H*H (B re/im, C re/im, D) forward; backward the weight gradients (as many) and the
        input gradients of the five H x H matmuls, plus W_ih's except at layer 0."""
        D, H, TB = (2 if bidirectional else 1), hidden_size, seq_len * batch_size
        fwd = bwd = 0
        for k in range(num_layers):
            in_k = input_size if k == 0 else D * H
            layer_fwd = (2 * H * in_k + 10 * H * H) * TB
            fwd += D * layer_fwd
            bwd += D * (layer_fwd + 10 * H * H * TB + (2 * H * in_k * TB if k > 0 else 0))
        return fwd, bwd


def _lru_step(layer: nn.Module) -> StepFn:
    """State (Re h, Im h): the complex state as two real tensors, so the Jacobian tools apply."""
    log_lam = layer.log_lambda()

    def step(x: Tensor, s: State) -> State:
        _, b = layer.drive(x)
        h = torch.exp(log_lam) * torch.complex(s[0], s[1]) + b
        return h.real, h.imag
    return step


register(CellSpec("lru", "diagonal", LRU, _diagonal(LRU), gates=1, state_size=2, step=_lru_step,
                  keep=lambda layer, x: layer.keep(x), scan=True, recurrent_matrix=False,
                  paths=tuple(p for p in PATHS if p != "compiled"),  # complex: nothing for inductor to fuse
                  inits=frozenset({"default"}), param_count=LRU.params, flop_count=LRU.flops,
                  saved_floats=28, description="LRU (Orvieto et al. 2023): complex diagonal, ring init, parallel scan or loop"))
