"""`long_range`: train a cell on a long-lag or state-tracking task; a row per evaluation.

Recipe (config `measure.*`): the optimizer (`adam`, or the papers' `rmsprop` and `sgd`) at `lr`,
gradient-norm clipping (`clip`), batch `data.batch_size`, hidden `model.hidden_size`, at most
`steps` steps (stopping when solved), evaluated every `eval_every` steps on a held-out test
batch and a validation batch, each from its own seed (SEED_OFFSETS). The task is the registry's
entry (bench/tasks/, TASKS): its generator, loss, readout and solved rule. The same point
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
sequences of its own seed (bench/measures/generalisation.py).
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells.registry import spec_of
from bench.cells.stack import layer_stack
from bench.config.errors import ConfigError
from bench.config.schema import LongRangeConfig
from bench.measures.generalisation import length_generalisation, state_generalisation
from bench.measures.gradients import profile_rows, readout
from bench.measures.memory import ITEMSIZE, step_bytes, weight_bytes
from bench.measures.point import Point
from bench.measures.registry import MeasureSpec, positive, register_measure
from bench.tasks.registry import TASKS
from bench.tasks.state import PARITY_TEST_FACTORS, STATE_TEST_LENGTHS

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


def make_optimizer(m, params) -> torch.optim.Optimizer:
    """`measure.optimizer`: adam (the default recipe); rmsprop with decay 0.9 (Arjovsky et al.
    2016's protocol); sgd, plain (Le et al. 2015's)."""
    name = m.get("optimizer", "adam") or "adam"
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=m.lr, alpha=0.9)
    if name == "sgd":
        return torch.optim.SGD(params, lr=m.lr)
    return torch.optim.Adam(params, lr=m.lr)


class Run:
    """One training run of a point: the model, its held-out batches and the rows it produces."""

    def __init__(self, point: Point) -> None:
        self.point, self.m = point, point.cfg.measure
        self.task = TASKS[self.m.task]
        self.spec = self.task.spec(point.seq_len, self.m)
        self.core = point.build_model(input_size=self.spec.input_size)
        torch.manual_seed(point.seed)
        self.model = TaskModel(self.core, self.spec.output_size,
                               per_step=self.task.readout == "every").to(point.device, point.dtype)
        seed = point.seed
        self.test = self.draw(self.m.test_size, torch.Generator().manual_seed(SEED_OFFSETS["test"] + seed))
        self.val = self.draw(self.m.test_size, torch.Generator().manual_seed(SEED_OFFSETS["val"] + seed))
        self.cols = {"input_size": self.spec.input_size}
        self.rows: List[Dict] = []
        self.elapsed, self.train_loss, self.norms, self.diverged = 0.0, float("nan"), [], None

    def to(self, t: Optional[Tensor]) -> Optional[Tensor]:
        p = self.point
        return t if t is None else t.to(p.device, p.dtype if t.is_floating_point() else t.dtype)

    def draw(self, n: int, gen: torch.Generator) -> tuple:
        return tuple(map(self.to, self.task.batch(self.point.seq_len, n, gen, self.m)))

    def add(self, rows: List[Dict]) -> None:
        self.rows += [{**r, **self.cols} for r in rows]

    def profile(self, condition: str, task_loss: bool = False) -> None:
        """The gradient profile on the first PROFILE_BATCH held-out sequences."""
        x, y, lengths = self.test
        fn = None
        if task_loss:
            targets = y[..., :PROFILE_BATCH] if self.task.readout == "every" else y[:PROFILE_BATCH]
            fn = (self.model, self.task.loss, targets, None if lengths is None else lengths[:PROFILE_BATCH])
        self.add(profile(self.core, x[:, :PROFILE_BATCH], self.point.seed, condition, self.m.flush_denormal, fn))

    @torch.no_grad()
    def evaluate(self, step: int) -> bool:
        """One evaluation row (test and validation batches, the dynamics since the last one);
        returns whether the task counts as solved."""
        (x, y, lengths), (vx, vy, vlen) = self.test, self.val
        pred = self.model(x, lengths)
        test_loss = self.task.loss(pred, y).item()
        solved, acc = self.task.solved(pred, y, test_loss, self.m)
        self.add([{"measure": "long_range", "task": self.m.task, "step": step,
                   "train_loss": self.train_loss, "test_loss": test_loss, "test_acc": acc,
                   "val_loss": self.task.loss(self.model(vx, vlen), vy).item(), "solved": bool(solved),
                   "elapsed_s": self.elapsed, "baseline_loss": self.spec.baseline_loss,
                   **dynamics(self.norms, self.m.clip), **gate_saturation(self.core, x),
                   "diverged": self.diverged is not None, "diverged_step": self.diverged}])
        self.norms.clear()
        return bool(solved)

    def train(self) -> None:
        """Steps until solved (`stop_when_solved`), the budget, or a loss that is not finite."""
        m, opt = self.m, make_optimizer(self.m, self.model.parameters())
        gen = torch.Generator().manual_seed(SEED_OFFSETS["train"] + self.point.seed)
        for step in range(m.steps + 1):
            if step % m.eval_every == 0 or step == m.steps:
                if (self.evaluate(step) and m.stop_when_solved) or step == m.steps:
                    return
            t0 = time.perf_counter()
            x, y, lengths = self.draw(self.point.batch_size, gen)
            loss = self.task.loss(self.model(x, lengths), y)
            if not torch.isfinite(loss):  # diverged: the step and its loss are the record
                self.train_loss, self.diverged = loss.item(), step
                self.elapsed += time.perf_counter() - t0
                self.evaluate(step)
                return
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self.norms.append(nn.utils.clip_grad_norm_(self.model.parameters(), m.clip).item())  # before clipping
            opt.step()
            self.train_loss = loss.item()
            self.elapsed += time.perf_counter() - t0


def measure(point: Point) -> List[Dict]:
    run = Run(point)
    run.profile("init")
    run.train()
    if run.diverged is not None:  # a diverged model has no trained profile or generalisation to read
        return run.rows
    if run.task.generalise == "factors":
        run.add(length_generalisation(run.model, point, run.to, SEED_OFFSETS["parity_lengths"] + point.seed))
    elif run.task.generalise == "lengths":
        run.add(state_generalisation(run.model, run.task, point, run.to, SEED_OFFSETS["state_lengths"] + point.seed))
    run.profile("trained")
    run.profile("trained", task_loss=True)
    return run.rows


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


def check(cfg) -> None:
    from bench.config.validate import check_task  # the task rules read the task registry
    m = cfg.measure
    for key in ("steps", "eval_every", "test_size", "copy_symbols"):
        if m[key] < 1:
            raise ConfigError(f"measure.{key}={m[key]}: must be a positive int")
    positive(cfg, "lr", "clip", "solve_mse")
    check_task(cfg)


def memory(cfg, dtype: str, device: str) -> int:
    """Bytes (bench/measures/memory.py): the weights, then the largest of a training step (at the
    longest training length), an evaluation of `test_size` sequences without gradients (at up to
    PARITY_TEST_FACTORS x L, or STATE_TEST_LENGTHS) and the float64 gradient profile."""
    e, m, task = ITEMSIZE[dtype], cfg.model, TASKS[cfg.measure.task]
    T, n, inputs = cfg.data.seq_len, cfg.measure.test_size, task.inputs
    longest = math.ceil(T * (1 + cfg.measure.get("length_spread", 0.0)))
    test_len = {"factors": max(PARITY_TEST_FACTORS) * T, "lengths": max(STATE_TEST_LENGTHS)}.get(task.generalise, 0)
    return weight_bytes(m, inputs, e) + max(
        step_bytes(m, longest, cfg.data.batch_size, inputs, e),
        step_bytes(m, max(longest, test_len), n, inputs, e) // 2,  # no backward: about half
        weight_bytes(m, inputs, 8, copies=2) + step_bytes(m, T, PROFILE_BATCH, inputs, 8))


register_measure(MeasureSpec("long_range", measure, VERSION, LongRangeConfig, default_dtype="float32",
                             finite=(), timed=False, check=check, memory=memory))  # a diverged run is a result
