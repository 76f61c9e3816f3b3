"""`gradients`: per-position gradient norms ||dL/dx_t||, in one backward pass.

Input x (T, B, I), seeded, requires_grad. Loss L = sum_b <w_b, r_b>, r the top layer's readout
at the end of each direction's pass (forward at t = T-1, backward at t = 0), w a fixed seeded
projection. Per position t the per-sample norms n_b(t) = ||dL/dx_{t,b}||_2 are stored
(`log10_grad_norm_samples`, log10 of each) with their summary: `log10_grad_norm` = mean_b log10
n_b(t), `grad_norm` = 10**that (the geometric mean: the typical sample, what the fits use),
`grad_norm_batch_mean` = mean_b n_b(t) (dominated by the slowest-decaying samples; labelled, not
fitted). An exact zero is underflow: counted in `underflow_samples`, left out of the log mean,
never log(0). For num_layers > 1 the same loss is also
differentiated with respect to every layer's input (rows with `layer` = k), read from a
layer-by-layer copy of the model with the same weights; `layer` = 0 is the fused module's x.grad.
Never `retain_grad()` on a fused module's output: that holds only the direct gradient.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

from bench.cells.registry import spec, spec_of
from bench.cells.stack import layer_stack
from bench.config.errors import ConfigError
from bench.config.schema import GradientsConfig
from bench.measures.memory import ITEMSIZE, directions, step_bytes, weight_bytes
from bench.measures.point import Point, seeded_normal
from bench.measures.registry import MeasureSpec, register_measure
from bench.measures.theory import theory_columns

VERSION = 2  # 2: per-sample norms and the geometric mean; slowest-unit gate theory

def readout(output: Tensor, hidden_size: int, bidirectional: bool) -> Tensor:
    """(T, B, D*H) -> (B, D*H): forward direction at t = T-1, backward direction at t = 0."""
    forward = output[-1, :, :hidden_size]
    if not bidirectional:
        return forward
    return torch.cat([forward, output[0, :, hidden_size:]], dim=-1)


def distance(T: int, bidirectional: bool) -> List[int]:
    """Steps from each position to the nearest readout."""
    return [min(T - 1 - t, t) if bidirectional else T - 1 - t for t in range(T)]


def projection(batch_size: int, width: int, seed: int, dtype: torch.dtype, device: str) -> Tensor:
    """The fixed readout projection w (B, D*H); seeded apart from the input."""
    return seeded_normal((batch_size, width), seed + 7919, dtype, device) / math.sqrt(width)


def profile_rows(model: nn.Module, x: Tensor, seed: int, condition: str, theory: bool = True,
                 loss: Optional[Callable[[Tensor], Tensor]] = None) -> List[Dict]:
    """Gradient-profile rows of `model` on input x (T, B, I): one backward pass (plus one on a
    layer-by-layer copy when num_layers > 1), then, if asked, the theory columns.

    `loss` maps the top layer's output (T, B, D*H) to the scalar differentiated; by default the
    fixed random projection of the readout (`loss_kind=random_projection`). A trained model's
    own task loss through its head is passed here (`loss_kind=task_loss`)."""
    T, B, _ = x.shape
    H, bidir, L = model.hidden_size, model.bidirectional, model.num_layers
    w = projection(B, H * (2 if bidir else 1), seed, x.dtype, x.device.type)
    loss_kind = "random_projection" if loss is None else "task_loss"
    if loss is None:
        def loss(out: Tensor) -> Tensor:
            return (readout(out, H, bidir) * w).sum()
    x = x.detach().requires_grad_(True)
    output, _ = model(x)
    loss(output).backward()
    per_layer = {0: x.grad}
    stack = layer_stack(model) if L > 1 else [model]
    if L > 1:  # each layer's input, read from a layer-by-layer copy with the same weights
        h, inputs = x.detach(), []
        for k, layer in enumerate(stack):
            if k > 0:
                inputs.append(h)                               # layer k's input: (T, B, D*H)
            h, _ = layer(h)
        grads = torch.autograd.grad(loss(h), inputs)
        per_layer.update({k + 1: g for k, g in enumerate(grads)})
    predicted = theory_columns(spec_of(stack[0]), stack[0], x.detach()) if theory else {}
    dist = distance(T, bidir)
    rows = []
    for layer, grad in per_layer.items():
        norms = safe_norm(grad).double().cpu()                       # (T, B) per-sample norms
        for t in range(T):
            rows.append({"measure": "gradients", "condition": condition, "loss_kind": loss_kind,
                         "layer": layer, "t": t,
                         "distance": dist[t], **sample_stats(norms[t]), **predicted})
    return mark_overflow(rows)


def sample_stats(n: Tensor) -> Dict:
    """Columns of one position from its per-sample norms n (B,), float64."""
    zero = n == 0
    logs = torch.log10(n[~zero])
    if logs.numel():
        mean_log = logs.mean().item()
        sd = logs.std().item() if logs.numel() > 1 else 0.0
        geo = 10 ** mean_log if math.isfinite(mean_log) else mean_log
    else:  # every sample underflowed
        mean_log, sd, geo = -math.inf, math.nan, 0.0
    return {"grad_norm": geo, "log10_grad_norm": mean_log, "log10_grad_norm_sd": sd,
            "grad_norm_batch_mean": n.mean().item(), "underflow_samples": int(zero.sum()),
            "underflow": bool(zero.all()),
            "log10_grad_norm_samples": [math.log10(v) if v > 0 else -math.inf for v in n.tolist()]}


def safe_norm(g: Tensor) -> Tensor:
    """||g||_2 over the last dim without overflow in the squares: (T, B, I) -> (T, B).
    Finite gradients up to the dtype's max keep a finite norm; only a non-finite one is inf/nan."""
    scale = g.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (g / safe).norm(dim=-1) * scale.squeeze(-1)


def mark_overflow(rows: List[Dict]) -> List[Dict]:
    """A non-finite gradient is a measurement: status=overflow, naming the nearest such step."""
    bad = [r for r in rows if not math.isfinite(r["grad_norm"])]
    if bad:
        first = min(bad, key=lambda r: (r["layer"], r["distance"]))
        error = (f"gradient not finite from distance {first['distance']} (t={first['t']}, "
                 f"layer {first['layer']}, condition {first['condition']})")
        for r in rows:
            r["status"], r["error"] = "overflow", error
    return rows


def measure(point: Point) -> List[Dict]:
    model = point.build_model()
    x = seeded_normal((point.seq_len, point.batch_size, point.input_size), point.seed,
                      point.dtype, point.device)
    return profile_rows(model, x, point.seed, condition="init", theory=point.cfg.measure.theory)


def check(cfg) -> None:
    m = cfg.measure
    if not (0 <= m.fit_start < m.fit_end <= 1):
        raise ConfigError("measure.fit_start, measure.fit_end: need 0 <= fit_start < fit_end <= 1")


def memory(cfg, dtype: str, device: str) -> int:
    """Bytes (bench/measures/memory.py): the weights and their gradients, one backward over the
    input, the input's gradient (T, B, I) and the theory's state trajectory (T, B, state)."""
    e, m, T, B = ITEMSIZE[dtype], cfg.model, cfg.data.seq_len, cfg.data.batch_size
    states = spec(m.cell).state_size * m.hidden_size * m.num_layers * directions(m)
    return (weight_bytes(m, m.input_size, e, copies=2) + step_bytes(m, T, B, m.input_size, e)
            + e * T * B * (m.input_size + states))


# float64 by default, so that tiny gradients do not underflow (DESIGN, "gradients")
register_measure(MeasureSpec("gradients", measure, VERSION, GradientsConfig, default_dtype="float64",
                             finite=("grad_norm",), timed=False, check=check, memory=memory))
