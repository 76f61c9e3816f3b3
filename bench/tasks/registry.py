"""The task registry: one entry per `measure.task`, everything the long_range measure needs of a
task (docs/architecture.md, "How to add a task"): its sizes and memoryless baseline, its seeded
generator, where it is read, its loss and solved rule, the measure keys it reads, its sequence-
length rule and how it is tested beyond the training length. The generators live in long_lag.py,
state.py and selection.py, each task registered next to its generator.

Generators are seeded and must not be changed, only appended to: stored records depend on these
exact sequences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

IGNORE = -100  # a position without a label (torch's cross-entropy ignore_index)
# The measure keys that belong to some tasks only: a point of a task that does not read one is
# hashed without it (bench/run/records.py), and setting one away from its default is refused.
TASK_KEYS = ("solve_mse", "copy_symbols", "min_len", "length_spread")
Batch = Tuple[Tensor, Tensor, Optional[Tensor]]  # x (T, B, I), y, per-sequence lengths (B,) or None


@dataclass(frozen=True)
class TaskSpec:
    input_size: int
    output_size: int
    baseline_loss: float    # loss of the best memoryless predictor


def cross_entropy(pred: Tensor, y: Tensor) -> Tensor:
    """Per-step tasks: the mean over every labelled step and sequence; final-label tasks: over
    sequences. Positions labelled IGNORE are left out."""
    if pred.dim() == 3:
        return nn.functional.cross_entropy(pred.flatten(0, 1), y.flatten(), ignore_index=IGNORE)
    return nn.functional.cross_entropy(pred, y, ignore_index=IGNORE)


def accuracy(pred: Tensor, y: Tensor) -> float:
    """Fraction of labelled positions (or sequences) whose argmax is the label."""
    labelled = y != IGNORE
    return (pred.argmax(-1) == y)[labelled].double().mean().item()


@dataclass(frozen=True)
class TaskDef:
    """name; spec(seq_len, measure cfg) -> TaskSpec; batch(seq_len, n, generator, measure cfg) ->
    Batch; readout: `last` (one label read at the end of each sequence, at its own last step where
    lengths vary) or `every` (a label at every step); loss(pred, y) -> scalar; solved(pred, y,
    loss, measure cfg) -> (solved, accuracy; NaN for a regression); keys: the TASK_KEYS it reads;
    chance: the accuracy of guessing (None for a regression); generalise: how it is tested beyond
    the training length (`factors`: running labels at PARITY_TEST_FACTORS x L; `lengths`: the final
    step at STATE_TEST_LENGTHS), or None; seq_len_rule(seq_len, measure cfg) -> what is wrong with
    that length for the task, or None; kind: `long_lag`, `state` or `selection`."""
    name: str
    spec: Callable[[int, Any], TaskSpec]
    batch: Callable[[int, int, torch.Generator, Any], Batch]
    readout: str
    loss: Callable[[Tensor, Tensor], Tensor]
    solved: Callable[[Tensor, Tensor, float, Any], Tuple[bool, float]]
    keys: Tuple[str, ...] = ()
    chance: Optional[float] = None
    generalise: Optional[str] = None
    seq_len_rule: Callable[[int, Any], Optional[str]] = lambda T, m: None
    kind: str = "long_lag"  # which study it belongs to: long_lag, state or selection (the report's sections)
    description: str = ""

    @property
    def inputs(self) -> int:
        """The input width the task feeds the model (its one-hot or value channels)."""
        return self.spec(2, {"copy_symbols": 1}).input_size


TASKS: Dict[str, TaskDef] = {}


def register_task(task: TaskDef) -> TaskDef:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def draw_lengths(seq_len: int, batch: int, gen: torch.Generator, min_len: int) -> Tensor:
    """Per-sequence lengths (B,), uniform on [min_len, seq_len]."""
    return torch.randint(min_len, seq_len + 1, (batch,), generator=gen)


def pad_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """(T, B) True where t < length: the sequence's own steps."""
    return torch.arange(seq_len).unsqueeze(1) < lengths.unsqueeze(0)


def fixed(make: Callable) -> Callable[[int, int, torch.Generator, Any], Batch]:
    """A generator of one length for every sequence (lengths None) in the registry's signature."""
    return lambda T, n, g, m: (*make(T, n, g, m), None)


def mse_solved(pred: Tensor, y: Tensor, loss: float, m) -> Tuple[bool, float]:
    """A regression is solved when the held-out MSE is under `measure.solve_mse`."""
    return loss < m["solve_mse"], float("nan")


def accuracy_solved(pred: Tensor, y: Tensor, loss: float, m) -> Tuple[bool, float]:
    """Solved at 99% of the held-out labels right."""
    acc = accuracy(pred, y)
    return acc >= 0.99, acc
