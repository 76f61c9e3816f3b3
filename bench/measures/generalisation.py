"""Generalisation beyond the training length: the `length_generalisation` rows a trained
`long_range` model adds (bench/measures/long_range.py), each length on fresh sequences of its own seed.

- running parity: accuracy at PARITY_TEST_FACTORS x the training length L;
- the final-label state-tracking tasks: final-step accuracy at STATE_TEST_LENGTHS, with
  `scaled_acc` (chance 0, perfect 1).
"""
from __future__ import annotations

from typing import Callable, Dict, List

import torch
from torch import nn

from bench.measures.point import Point
from bench.tasks.registry import TaskDef
from bench.tasks.state import PARITY_TEST_FACTORS, STATE_TEST_LENGTHS, parity_batch


@torch.no_grad()
def length_generalisation(model: nn.Module, point: Point, to: Callable, seed: int) -> List[Dict]:
    """parity: accuracy at PARITY_TEST_FACTORS x the training length L, on `test_size` fresh
    sequences per length, length k's drawn from `seed` + 97 k (seed: the caller's, apart from
    its training, validation and test batches).
    `test_acc`: the final step (one judgement per sequence: the Wilson interval's n);
    `test_acc_beyond`: every step after L (the steps no training sequence reached)."""
    L, n, rows = point.seq_len, point.cfg.measure.test_size, []
    for factor in PARITY_TEST_FACTORS:
        gen = torch.Generator().manual_seed(seed + 97 * factor)
        x, y = map(to, parity_batch(factor * L, n, gen))
        right = model(x).argmax(-1) == y                                   # (kL, n)
        rows.append({"measure": "length_generalisation", "task": "parity", "test_len": factor * L,
                     "test_factor": factor, "test_acc": right[-1].double().mean().item(),
                     "test_acc_beyond": right[L:].double().mean().item(), "test_sequences": n,
                     "baseline_acc": 0.5})
    return rows


@torch.no_grad()
def state_generalisation(model: nn.Module, task: TaskDef, point: Point, to: Callable, seed: int) -> List[Dict]:
    """State-tracking tasks: final-step accuracy at each of STATE_TEST_LENGTHS (every sequence of
    that length; modular arithmetic's even lengths end on the number before),
    `test_size` fresh sequences per length, length n's drawn from `seed` + n; `scaled_acc` = (acc - chance) / (1 - chance), so that
    chance is 0 and perfect is 1 (Grazzi et al. 2025's scale)."""
    m, rows = point.cfg.measure, []
    fixed = {**{k: m.get(k) for k in ("copy_symbols", "solve_mse", "length_spread")}}
    for length in STATE_TEST_LENGTHS:
        gen = torch.Generator().manual_seed(seed + length)
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
