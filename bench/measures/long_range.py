"""`long_range`: train a cell on a long-lag or state-tracking task; a row per evaluation.

Recipe (config `measure.*`): the optimizer (`adam`, or the papers' `rmsprop` and `sgd`) at `lr`,
gradient-norm clipping (`clip`), batch `data.batch_size`, hidden `model.hidden_size`, at most
`steps` steps (stopping when solved), evaluated every `eval_every` steps on a held-out test
batch and a validation batch, each from its own seed (SEED_OFFSETS). The task is the registry's
entry (bench/tasks.py, TASKS): its generator, loss, readout and solved rule. The same point
stores the model's gradient profile (`measure=gradients` rows) on task inputs at `condition=init`
and `condition=trained`, under the fixed random projection of the readout
(`loss_kind=random_projection`, comparable with the `gradients` measure) and, trained, under the
task's own loss through the trained head (`loss_kind=task_loss`: the gradient the task sends back).

A recipe (init, lr) is chosen on tuning seeds and reported on others (analysis/select.py, nested
selection); `val_loss` is kept for that choice. Training dynamics since the previous evaluation
are stored with each evaluation: the median and the largest gradient norm before clipping
(`grad_norm_preclip`, `grad_norm_preclip_max`), the fraction of steps clipped
(`clipped_fraction`), and on the test batch the fraction of memory gates (LSTM forget, GRU update;
layer 0, forward direction) above 0.99 and below 0.01 (`gate_open_fraction`, `gate_shut_fraction`).

Divergence: a training loss that is not finite stops training at that step; the point's last row
carries `diverged=True` and `diverged_step` (the step whose loss was not finite, `train_loss`
its value), and a diverged model stores no trained profile or length test (there is no
trained model to read). It is a measurement (`status=ok`): this recipe diverges.

Generalisation beyond the training length (rows `measure=length_generalisation`): running
parity at PARITY_TEST_FACTORS x L (final-step and beyond-L per-step accuracy); the final-label
state-tracking tasks (trained on lengths drawn from [`min_len`, `seq_len`]) at
STATE_TEST_LENGTHS, with `scaled_acc` (chance 0, perfect 1); each over `test_size` fresh
sequences of its own seed.
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
from bench.tasks import (HS97_TOLERANCE, IGNORE, PARITY_TEST_FACTORS, STATE_TEST_LENGTHS, TASKS,
                         TaskDef, parity_batch)

VERSION = 4  # 4: divergence stops training and is recorded; 3: validation batch, training dynamics
PROFILE_BATCH = 32  # sequences of the held-out batch used for the gradient profiles
# Seeds of every batch a point draws, as offsets added to the point's `seed` (append only):
# training batches draw from `train`, the held-out batches from their own generators.
SEED_OFFSETS = {"train": 0, "test": 10_000, "val": 20_000,
                "parity_lengths": 30_000,   # + 97 x factor (running parity at PARITY_TEST_FACTORS x L)
                "state_lengths": 40_000}    # + the test length (final-label tasks, STATE_TEST_LENGTHS)


class TaskModel(nn.Module):
    """Recurrent core + linear head: on the readout (adding), on every step (copy), or at each
    sequence's own last step where lengths vary (`lengths`, (B,))."""

    def __init__(self, core: nn.Module, out: int, per_step: bool) -> None:
        super().__init__()
        width = core.hidden_size * (2 if core.bidirectional else 1)
        self.core, self.head, self.per_step = core, nn.Linear(width, out), per_step

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        out, _ = self.core(x)
        if self.per_step:
            return self.head(out)                                     # (T, B, C)
        if lengths is not None:                                      # causal cores only (validated)
            last = out[lengths.to(out.device) - 1, torch.arange(out.shape[1], device=out.device)]
            return self.head(last[:, :self.core.hidden_size])         # (B, C)
        return self.head(readout(out, self.core.hidden_size, self.core.bidirectional))  # (B, C)


def task_loss(task: TaskDef) -> Callable[[Tensor, Tensor], Tensor]:
    if task.loss == "mse":
        return nn.functional.mse_loss
    return cross_entropy


def cross_entropy(pred: Tensor, y: Tensor) -> Tensor:
    """Per-step tasks: the mean over every step and sequence; final-label tasks: over sequences."""
    if pred.dim() == 3:
        return nn.functional.cross_entropy(pred.flatten(0, 1), y.flatten())
    return nn.functional.cross_entropy(pred, y)


def judge(task: TaskDef, m, pred: Tensor, y: Tensor, loss: float) -> Tuple[bool, float]:
    """(solved, accuracy) on a held-out batch, by the task's rule (NaN accuracy for `mse`)."""
    if task.judge == "mse":
        return loss < m.solve_mse, float("nan")
    if task.judge == "hs97":  # Hochreiter & Schmidhuber: MSE under solve_mse and every sequence right
        acc = ((pred - y).abs() < HS97_TOLERANCE).double().mean().item()
        return loss < m.solve_mse and acc == 1.0, acc
    if task.judge == "recall":
        k = m.copy_symbols
        acc = (pred[-k:].argmax(-1) == y[-k:]).double().mean().item()
    else:  # every_step (positions without a label left out), final
        labelled = y != IGNORE
        acc = (pred.argmax(-1) == y)[labelled].double().mean().item()
    return acc >= 0.99, acc


def make_optimizer(m, params) -> torch.optim.Optimizer:
    """`measure.optimizer`: adam (the default recipe); rmsprop with decay 0.9 (Arjovsky et al.
    2016's protocol); sgd, plain (Le et al. 2015's)."""
    name = m.get("optimizer", "adam") or "adam"
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=m.lr, alpha=0.9)
    if name == "sgd":
        return torch.optim.SGD(params, lr=m.lr)
    return torch.optim.Adam(params, lr=m.lr)


@torch.no_grad()
def length_generalisation(model: nn.Module, point: Point, to: Callable) -> List[Dict]:
    """parity: accuracy at PARITY_TEST_FACTORS x the training length L, on `test_size` fresh
    sequences per length (seeded apart from the training, validation and test batches).
    `test_acc`: the final step (one judgement per sequence: the Wilson interval's n);
    `test_acc_beyond`: every step after L (the steps no training sequence reached)."""
    L, n, rows = point.seq_len, point.cfg.measure.test_size, []
    for factor in PARITY_TEST_FACTORS:
        gen = torch.Generator().manual_seed(SEED_OFFSETS["parity_lengths"] + 97 * factor + point.seed)
        x, y = map(to, parity_batch(factor * L, n, gen))
        right = model(x).argmax(-1) == y                                   # (kL, n)
        rows.append({"measure": "length_generalisation", "task": "parity", "test_len": factor * L,
                     "test_factor": factor, "test_acc": right[-1].double().mean().item(),
                     "test_acc_beyond": right[L:].double().mean().item(), "test_sequences": n,
                     "baseline_acc": 0.5})
    return rows


@torch.no_grad()
def state_generalisation(model: nn.Module, task: TaskDef, point: Point, to: Callable) -> List[Dict]:
    """State-tracking tasks: final-step accuracy at each of STATE_TEST_LENGTHS (every sequence of
    that length; modular arithmetic's even lengths end on the number before),
    `test_size` fresh sequences per length; `scaled_acc` = (acc - chance) / (1 - chance), so that
    chance is 0 and perfect is 1 (Grazzi et al. 2025's scale)."""
    m, rows = point.cfg.measure, []
    fixed = {**{k: m.get(k) for k in ("copy_symbols", "solve_mse", "length_spread")}}
    for length in STATE_TEST_LENGTHS:
        gen = torch.Generator().manual_seed(SEED_OFFSETS["state_lengths"] + length + point.seed)
        x, y, own = map(to, task.batch(length, m.test_size, gen, {**fixed, "min_len": length}))
        pred = model(x, own).argmax(-1)
        if task.readout == "every":  # the label at each sequence's own last step
            cols = torch.arange(pred.shape[1], device=pred.device)
            pred, y = pred[own - 1, cols], y[own - 1, cols]
        acc = (pred == y).double().mean().item()
        rows.append({"measure": "length_generalisation", "task": task.name, "test_len": length,
                     "test_acc": acc, "scaled_acc": (acc - task.chance) / (1 - task.chance),
                     "test_sequences": m.test_size, "baseline_acc": task.chance,
                     "beyond_training": length > point.seq_len})
    return rows


def measure(point: Point) -> List[Dict]:
    m = point.cfg.measure
    task = TASKS[m.task]
    spec = task.spec(point.seq_len, m)
    loss_fn = task_loss(task)
    core = point.build_model(input_size=spec.input_size)
    torch.manual_seed(point.seed)
    model = TaskModel(core, spec.output_size, per_step=task.readout == "every").to(point.device, point.dtype)
    to = lambda t: t if t is None else t.to(point.device, point.dtype if t.is_floating_point() else t.dtype)  # noqa: E731

    def draw(n: int, gen: torch.Generator):
        return tuple(map(to, task.batch(point.seq_len, n, gen, m)))

    test_x, test_y, test_len = draw(m.test_size, torch.Generator().manual_seed(SEED_OFFSETS["test"] + point.seed))
    val_x, val_y, val_len = draw(m.test_size, torch.Generator().manual_seed(SEED_OFFSETS["val"] + point.seed))
    train_gen = torch.Generator().manual_seed(SEED_OFFSETS["train"] + point.seed)
    task_cols = {"input_size": spec.input_size}
    profile_x = test_x[:, :PROFILE_BATCH]
    rows = [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "init", m.flush_denormal)]
    opt = make_optimizer(m, model.parameters())
    elapsed, train_loss, norms, diverged = 0.0, float("nan"), [], None

    def evaluate(step: int) -> bool:
        with torch.no_grad():
            pred = model(test_x, test_len)
            test_loss = loss_fn(pred, test_y).item()
            solved, acc = judge(task, m, pred, test_y, test_loss)
            val_loss = loss_fn(model(val_x, val_len), val_y).item()
        rows.append({"measure": "long_range", "task": m.task, "step": step,
                     "train_loss": train_loss, "test_loss": test_loss, "test_acc": acc,
                     "val_loss": val_loss, "solved": bool(solved), "elapsed_s": elapsed,
                     "baseline_loss": spec.baseline_loss, **dynamics(norms, m.clip),
                     **gate_saturation(core, test_x), **task_cols,
                     "diverged": diverged is not None, "diverged_step": diverged})
        norms.clear()
        return bool(solved)

    for step in range(m.steps + 1):
        if step % m.eval_every == 0 or step == m.steps:
            if (evaluate(step) and m.stop_when_solved) or step == m.steps:
                break
        t0 = time.perf_counter()
        x, y, lengths = draw(point.batch_size, train_gen)
        loss = loss_fn(model(x, lengths), y)
        if not torch.isfinite(loss):  # diverged: the step and its loss are the record
            train_loss, diverged = loss.item(), step
            elapsed += time.perf_counter() - t0
            evaluate(step)
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(nn.utils.clip_grad_norm_(model.parameters(), m.clip).item())  # before clipping
        opt.step()
        train_loss = loss.item()
        elapsed += time.perf_counter() - t0
    if diverged is not None:  # a diverged model has no trained profile or generalisation to read
        return rows
    if task.generalise == "factors":
        rows += [{**r, **task_cols} for r in length_generalisation(model, point, to)]
    elif task.generalise == "lengths":
        rows += [{**r, **task_cols} for r in state_generalisation(model, task, point, to)]
    rows += [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "trained", m.flush_denormal)]
    per_step = task.readout == "every"
    targets = test_y[..., :PROFILE_BATCH] if per_step else test_y[:PROFILE_BATCH]
    lengths = None if test_len is None else test_len[:PROFILE_BATCH]
    rows += [{**r, **task_cols} for r in profile(core, profile_x, point.seed, "trained", m.flush_denormal,
                                                 (model, loss_fn, targets, lengths))]
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
            task_loss: Optional[Tuple[nn.Module, Callable, Tensor, Optional[Tensor]]] = None) -> List[Dict]:
    """Gradient profile of a copy of `core` in float64 with subnormals kept, so that the tiny
    gradients of long lags neither underflow in float32 nor get flushed to zero. With
    `task_loss` = (task model, loss function, targets, lengths or None), the loss differentiated
    is the task's own, through a float64 copy of the trained head; otherwise the random projection."""
    torch.set_flush_denormal(False)
    try:
        core64, loss = copy.deepcopy(core).double(), None
        if task_loss is not None:
            model, loss_fn, y, lengths = task_loss
            head = copy.deepcopy(model.head).double()
            y = y.double() if y.is_floating_point() else y

            def loss(out: Tensor) -> Tensor:
                if model.per_step:
                    return loss_fn(head(out), y)
                if lengths is not None:
                    last = out[lengths - 1, torch.arange(out.shape[1], device=out.device)]
                    return loss_fn(head(last[:, :core.hidden_size]), y)
                return loss_fn(head(readout(out, core.hidden_size, core.bidirectional)), y)
        rows = profile_rows(core64, x.double(), seed, condition, theory=loss is None, loss=loss)
    finally:
        torch.set_flush_denormal(flushing)
    return [{**r, "profile_dtype": "float64"} for r in rows]
