"""`long_range`: train each cell on a long-lag task with a fixed recipe; a row per evaluation.

Recipe (config `measure.*`): Adam (lr), gradient-norm clipping (clip), batch `data.batch_size`,
hidden `model.hidden_size`, at most `steps` steps, evaluated every `eval_every` steps on a
held-out batch drawn from its own seed. The same point stores the model's gradient profile
(`measure=gradients` rows) on task inputs at `condition=init` and `condition=trained`, under
the fixed random projection of the readout (`loss_kind=random_projection`, comparable with the
`gradients` measure) and, trained, under the task's own loss through the trained head
(`loss_kind=task_loss`: the gradient the task actually sends back).

Every evaluation also scores a validation batch (its own seed, never the test batch):
`val_loss` is what a learning-rate or initialisation choice is made on (analysis/sections/
long_range.py), so the test figures stay unbiased. Training dynamics since the previous
evaluation are stored with it, to tell vanishing from exploding gradients: the median and the
largest gradient norm before clipping (`grad_norm_preclip`, `grad_norm_preclip_max`), the fraction
of steps clipped (`clipped_fraction`), and on the test batch the fraction of memory gates (LSTM
forget, GRU update; layer 0, forward direction) above 0.99 and below 0.01 (`gate_open_fraction`,
`gate_shut_fraction`).

Tasks: `adding` is the adding problem in the form of Le et al. (2015) / Arjovsky et al. (2016);
`adding_hs97` is Hochreiter & Schmidhuber's (1997) original, judged by their rule; `copy` is
copy memory (Arjovsky et al. 2016); `selective_copy` is Mamba's selective copying (the recall
judged as `copy`); `parity` is running parity, solved when 99% of the held-out batch's per-step
predictions are right, and after training tested at PARITY_TEST_FACTORS times the training
length (rows `measure=length_generalisation`: final-step accuracy and per-step accuracy beyond
the training length, each over `test_size` fresh sequences of its own seed).
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Dict, List, Optional, Tuple

import statistics

import torch
from torch import Tensor, nn

from bench.cells import layer_stack
from bench.measures.gradients import profile_rows, readout
from bench.measures.point import Point
from bench.registry import spec_of
from bench.tasks import (HS97_TOLERANCE, PARITY_TEST_FACTORS, PER_STEP_TASKS, adding_batch,
                         adding_hs97_batch, adding_hs97_spec, adding_spec, copy_batch, copy_spec,
                         parity_batch, parity_spec, selective_copy_batch, selective_copy_spec)

VERSION = 3  # 3: validation batch, training dynamics; 2: adding_hs97, task-loss profiles
PROFILE_BATCH = 32  # sequences of the held-out batch used for the gradient profiles


class TaskModel(nn.Module):
    """Recurrent core + linear head: on the readout (adding) or on every step (copy)."""

    def __init__(self, core: nn.Module, out: int, per_step: bool) -> None:
        super().__init__()
        width = core.hidden_size * (2 if core.bidirectional else 1)
        self.core, self.head, self.per_step = core, nn.Linear(width, out), per_step

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.core(x)
        if self.per_step:
            return self.head(out)                                     # (T, B, C)
        return self.head(readout(out, self.core.hidden_size, self.core.bidirectional))  # (B, 1)


def _task(point: Point):
    """(spec, batch(n, gen) -> (x, y), loss(pred, y), solved(pred, y, loss) -> (bool, acc))."""
    m, T = point.cfg.measure, point.seq_len
    if m.task == "adding":
        return (adding_spec(T), lambda n, g: adding_batch(T, n, g), nn.functional.mse_loss,
                lambda pred, y, loss: (loss < m.solve_mse, float("nan")))
    if m.task == "adding_hs97":
        def hs97_solved(pred: Tensor, y: Tensor, loss: float) -> Tuple[bool, float]:
            acc = ((pred - y).abs() < HS97_TOLERANCE).double().mean().item()  # fraction correct
            return loss < m.solve_mse and acc == 1.0, acc
        return (adding_hs97_spec(T), lambda n, g: adding_hs97_batch(T, n, g),
                nn.functional.mse_loss, hs97_solved)
    if m.task == "parity":
        def every_step(pred: Tensor, y: Tensor, loss: float) -> Tuple[bool, float]:
            acc = (pred.argmax(-1) == y).double().mean().item()
            return acc >= 0.99, acc
        return parity_spec(T), lambda n, g: parity_batch(T, n, g), cross_entropy, every_step
    spec, make = ((selective_copy_spec, selective_copy_batch) if m.task == "selective_copy"
                  else (copy_spec, copy_batch))

    def solved(pred: Tensor, y: Tensor, loss: float) -> Tuple[bool, float]:
        acc = (pred[-m.copy_symbols:].argmax(-1) == y[-m.copy_symbols:]).double().mean().item()
        return acc >= 0.99, acc
    return spec(T, m.copy_symbols), lambda n, g: make(T, n, g, m.copy_symbols), cross_entropy, solved


def cross_entropy(pred: Tensor, y: Tensor) -> Tensor:
    """Per-step tasks: the mean over every step and sequence."""
    return nn.functional.cross_entropy(pred.flatten(0, 1), y.flatten())


@torch.no_grad()
def length_generalisation(model: nn.Module, point: Point, to: Callable) -> List[Dict]:
    """parity: accuracy at PARITY_TEST_FACTORS x the training length L, on `test_size` fresh
    sequences per length (seeded apart from the training, validation and test batches).
    `test_acc`: the final step (one judgement per sequence: the Wilson interval's n);
    `test_acc_beyond`: every step after L (the steps no training sequence reached)."""
    L, n, rows = point.seq_len, point.cfg.measure.test_size, []
    for factor in PARITY_TEST_FACTORS:
        x, y = map(to, parity_batch(factor * L, n, torch.Generator().manual_seed(30_000 + 97 * factor + point.seed)))
        right = model(x).argmax(-1) == y                                   # (kL, n)
        rows.append({"measure": "length_generalisation", "task": "parity", "test_len": factor * L,
                     "test_factor": factor, "test_acc": right[-1].double().mean().item(),
                     "test_acc_beyond": right[L:].double().mean().item(), "test_sequences": n,
                     "baseline_acc": 0.5})
    return rows


def measure(point: Point) -> List[Dict]:
    m = point.cfg.measure
    spec, batch, loss_fn, solved_fn = _task(point)
    core = point.build_model(input_size=spec.input_size)
    torch.manual_seed(point.seed)
    model = TaskModel(core, spec.output_size, per_step=m.task in PER_STEP_TASKS).to(point.device, point.dtype)
    to = lambda t: t.to(point.device, point.dtype if t.is_floating_point() else t.dtype)  # noqa: E731
    test_x, test_y = map(to, batch(m.test_size, torch.Generator().manual_seed(10_000 + point.seed)))
    val_x, val_y = map(to, batch(m.test_size, torch.Generator().manual_seed(20_000 + point.seed)))
    train_gen = torch.Generator().manual_seed(point.seed)
    task_cols = {"input_size": spec.input_size}
    profile_x = test_x[:, :PROFILE_BATCH]
    rows = [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "init", m.flush_denormal)]
    opt = torch.optim.Adam(model.parameters(), lr=m.lr)
    elapsed, train_loss, norms = 0.0, float("nan"), []
    for step in range(m.steps + 1):
        if step % m.eval_every == 0 or step == m.steps:
            with torch.no_grad():
                pred = model(test_x)
                test_loss = loss_fn(pred, test_y).item()
                solved, acc = solved_fn(pred, test_y, test_loss)
                val_loss = loss_fn(model(val_x), val_y).item()
            rows.append({"measure": "long_range", "task": m.task, "step": step,
                         "train_loss": train_loss, "test_loss": test_loss, "test_acc": acc,
                         "val_loss": val_loss, "solved": bool(solved), "elapsed_s": elapsed,
                         "baseline_loss": spec.baseline_loss, **dynamics(norms, m.clip),
                         **gate_saturation(core, test_x), **task_cols})
            norms = []
            if (solved and m.stop_when_solved) or step == m.steps:
                break
        t0 = time.perf_counter()
        x, y = map(to, batch(point.batch_size, train_gen))
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(nn.utils.clip_grad_norm_(model.parameters(), m.clip).item())  # before clipping
        opt.step()
        train_loss = loss.item()
        elapsed += time.perf_counter() - t0
    if m.task == "parity":
        rows += [{**r, **task_cols} for r in length_generalisation(model, point, to)]
    rows += [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "trained", m.flush_denormal)]
    task_loss = (model, loss_fn, test_y[..., :PROFILE_BATCH] if m.task in PER_STEP_TASKS else test_y[:PROFILE_BATCH])
    rows += [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "trained", m.flush_denormal,
                                                 task_loss)]
    return rows


def dynamics(norms: List[float], clip: float) -> Dict:
    """Gradient norms before clipping over the steps since the last evaluation."""
    if not norms:
        return {"grad_norm_preclip": float("nan"), "grad_norm_preclip_max": float("nan"),
                "clipped_fraction": float("nan")}
    return {"grad_norm_preclip": statistics.median(norms), "grad_norm_preclip_max": max(norms),
            "clipped_fraction": sum(n > clip for n in norms) / len(norms)}


@torch.no_grad()
def gate_saturation(core: nn.Module, x: Tensor) -> Dict:
    """Fractions of memory gates above 0.99 (holding) and below 0.01 (erasing), layer 0's
    forward direction, on x; NaN for a cell without one (the registry says which)."""
    layer = layer_stack(core)[0] if core.num_layers > 1 else core
    out, _ = layer(x)
    H = core.hidden_size
    h_prev = torch.cat([torch.zeros_like(out[:1, :, :H]), out[:-1, :, :H]])
    gate = spec_of(layer).memory_gate_values(layer, x, h_prev)
    if gate is None:
        return {"gate_open_fraction": float("nan"), "gate_shut_fraction": float("nan")}
    return {"gate_open_fraction": (gate > 0.99).double().mean().item(),
            "gate_shut_fraction": (gate < 0.01).double().mean().item()}


def profile(core: nn.Module, x: Tensor, seed: int, condition: str, flushing: bool,
            task_loss: Optional[Tuple[nn.Module, Callable, Tensor]] = None) -> List[Dict]:
    """Gradient profile of a copy of `core` in float64 with subnormals kept, so that the tiny
    gradients of long lags neither underflow in float32 nor get flushed to zero. With
    `task_loss` = (task model, loss function, targets), the loss differentiated is the task's
    own, through a float64 copy of the trained head; otherwise the random projection."""
    torch.set_flush_denormal(False)
    try:
        core64, loss = copy.deepcopy(core).double(), None
        if task_loss is not None:
            model, loss_fn, y = task_loss
            head = copy.deepcopy(model.head).double()
            y = y.double() if y.is_floating_point() else y

            def loss(out: Tensor) -> Tensor:
                if model.per_step:
                    return loss_fn(head(out), y)
                return loss_fn(head(readout(out, core.hidden_size, core.bidirectional)), y)
        rows = profile_rows(core64, x.double(), seed, condition, theory=loss is None, loss=loss)
    finally:
        torch.set_flush_denormal(flushing)
    return [{**r, "profile_dtype": "float64"} for r in rows]
