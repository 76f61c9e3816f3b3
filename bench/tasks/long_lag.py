"""The long-lag tasks: the adding problem in the form of Le et al. (2015) / Arjovsky et al.
(2016) and in Hochreiter & Schmidhuber's (1997), and copy memory (Arjovsky et al. 2016), with
their registry entries. Generated from a seed (no downloads); must not be changed, only appended
to: stored records depend on these exact sequences.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from bench.tasks.registry import Batch, TaskDef, TaskSpec, cross_entropy, fixed, mse_solved, pad_mask, register_task

COPY_ALPHABET = 8  # symbols 1..8; 0 is blank, 9 the delimiter


def adding_spec(seq_len: int) -> TaskSpec:
    # Target = sum of two U(0,1) values: variance 2/12 = 0.167 is the constant predictor's MSE.
    return TaskSpec(input_size=2, output_size=1, baseline_loss=1 / 6)


def copy_spec(seq_len: int, symbols: int = 10) -> TaskSpec:
    # Memoryless: blank where the target is blank, uniform over the alphabet at recall.
    total = seq_len + 2 * symbols
    return TaskSpec(input_size=COPY_ALPHABET + 2, output_size=COPY_ALPHABET + 1,
                    baseline_loss=symbols * math.log(COPY_ALPHABET) / total)


def adding_batch(seq_len: int, batch: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """The adding problem as Le et al. (2015) and Arjovsky et al. (2016) pose it (`adding`):
    x (T, B, 2): value in [0, 1] and a marker, one marker in each half; y (B, 1): the sum."""
    values = torch.rand(seq_len, batch, generator=gen)
    half = seq_len // 2
    first = torch.randint(0, half, (batch,), generator=gen)
    second = torch.randint(half, seq_len, (batch,), generator=gen)
    markers = torch.zeros(seq_len, batch)
    cols = torch.arange(batch)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    y = (values[first, cols] + values[second, cols]).unsqueeze(-1)
    return torch.stack([values, markers], dim=-1), y


def copy_batch(seq_len: int, batch: int, gen: torch.Generator, symbols: int = 10
               ) -> Tuple[Tensor, Tensor]:
    """Copy memory: `symbols` random symbols, a gap of seq_len - 1 blanks, a delimiter, then
    `symbols` blanks during which the symbols must be recalled.
    x (T+2S, B, 10) one-hot; y (T+2S, B) class indices (0 = blank)."""
    seq = torch.randint(1, COPY_ALPHABET + 1, (symbols, batch), generator=gen)
    total = seq_len + 2 * symbols
    tokens = torch.zeros(total, batch, dtype=torch.long)
    tokens[:symbols] = seq
    tokens[seq_len + symbols - 1] = COPY_ALPHABET + 1  # delimiter
    target = torch.zeros(total, batch, dtype=torch.long)
    target[-symbols:] = seq
    x = torch.nn.functional.one_hot(tokens, COPY_ALPHABET + 2).float()
    return x, target


# Hochreiter & Schmidhuber (1997), experiment 4 (`adding_hs97`): a sequence is correct when its
# absolute error is under 0.04; the paper stops training when the average error is under 0.01
# and every one of the most recent sequences is correct, which is the `solved` rule here, on
# the held-out batch.
HS97_TOLERANCE = 0.04


def adding_hs97_spec(seq_len: int) -> TaskSpec:
    # Target 0.5 + (X1 + X2) / 4 with X uniform on [-1, 1]: variance 2 * (1/3) / 16 = 1/24.
    return TaskSpec(input_size=2, output_size=1, baseline_loss=1 / 24)


def adding_hs97_batch(seq_len: int, batch: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """x (T, B, 2): value uniform in [-1, 1] and a marker; y (B, 1) = 0.5 + (X1 + X2) / 4.

    The first marked value X1 is among the first 10 steps, the second X2 among the first
    T/2 - 1 steps, at a different position; the first and last steps carry marker -1 unless
    marked; a marked first step has X1 = 0 (the paper's rules). The paper draws lengths between
    T and T + T/10; here every sequence has length T, so a point has one lag.
    """
    if seq_len < 22:
        raise ValueError(f"data.seq_len={seq_len}: adding_hs97 needs seq_len >= 22 "
                         "(first marker in the first 10 steps, second in the first T/2 - 1)")
    values = torch.rand(seq_len, batch, generator=gen) * 2 - 1
    first = torch.randint(0, 10, (batch,), generator=gen)
    # second: uniform over the first T/2 - 1 positions other than `first`
    second = torch.randint(0, seq_len // 2 - 2, (batch,), generator=gen)
    second = second + (second >= first).long()
    cols = torch.arange(batch)
    values[0, cols[first == 0]] = 0.0
    markers = torch.zeros(seq_len, batch)
    markers[0] = -1.0
    markers[-1] = -1.0
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    y = (0.5 + (values[first, cols] + values[second, cols]) / 4).unsqueeze(-1)
    return torch.stack([values, markers], dim=-1), y


# Hochreiter & Schmidhuber (1997) with the paper's lengths (`adding_hs97` with
# `measure.length_spread`, e.g. 0.1): every sequence has its own length, uniform on
# [T, T + spread * T]; the markers are placed as in `adding_hs97_batch` (first among the first
# 10 steps, second among the first T/2 - 1, T the minimal length), the last step of each sequence
# carries marker -1; the batch is padded to the longest length and read at each own last step.
def adding_hs97_spread_batch(seq_len: int, batch: int, gen: torch.Generator, spread: float
                             ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T', B, 2), T' = floor((1 + spread) T); y (B, 1) = 0.5 + (X1 + X2) / 4; lengths (B,)."""
    longest = int(math.floor((1 + spread) * seq_len))
    lengths = torch.randint(seq_len, longest + 1, (batch,), generator=gen)
    values = torch.rand(longest, batch, generator=gen) * 2 - 1
    first = torch.randint(0, 10, (batch,), generator=gen)
    second = torch.randint(0, seq_len // 2 - 2, (batch,), generator=gen)
    second = second + (second >= first).long()
    cols = torch.arange(batch)
    values[0, cols[first == 0]] = 0.0
    markers = torch.zeros(longest, batch)
    markers[0] = -1.0
    markers[lengths - 1, cols] = -1.0
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    inside = pad_mask(lengths, longest)
    y = (0.5 + (values[first, cols] + values[second, cols]) / 4).unsqueeze(-1)
    return torch.stack([values * inside, markers * inside], dim=-1), y, lengths




def hs97_solved(pred: Tensor, y: Tensor, loss: float, m) -> Tuple[bool, float]:
    """Their rule: MSE under `measure.solve_mse` and every held-out sequence within 0.04."""
    acc = ((pred - y).abs() < HS97_TOLERANCE).double().mean().item()  # fraction correct
    return loss < m["solve_mse"] and acc == 1.0, acc


def recall_solved(pred: Tensor, y: Tensor, loss: float, m) -> Tuple[bool, float]:
    """Copying: 99% of the recalled symbols (the last `copy_symbols` steps) right."""
    k = m["copy_symbols"]
    acc = (pred[-k:].argmax(-1) == y[-k:]).double().mean().item()
    return acc >= 0.99, acc


def _hs97(T: int, n: int, g: torch.Generator, m) -> Batch:
    spread = m.get("length_spread", 0.0) or 0.0
    if spread == 0:
        return (*adding_hs97_batch(T, n, g), None)
    return adding_hs97_spread_batch(T, n, g, spread)


register_task(TaskDef("adding", lambda T, m: adding_spec(T), fixed(lambda T, n, g, m: adding_batch(T, n, g)),
                      readout="last", loss=torch.nn.functional.mse_loss, solved=mse_solved, keys=("solve_mse",),
                      seq_len_rule=lambda T, m: None if T >= 2 else "the adding problem needs seq_len >= 2",
                      description="adding problem, Le et al. (2015) / Arjovsky et al. (2016) form"))
register_task(TaskDef("adding_hs97", lambda T, m: adding_hs97_spec(T), _hs97, readout="last",
                      loss=torch.nn.functional.mse_loss, solved=hs97_solved, keys=("solve_mse", "length_spread"),
                      seq_len_rule=lambda T, m: None if T >= 22 else (
                          "adding_hs97 needs seq_len >= 22 (first marker in the first 10 steps, second "
                          "in the first T/2 - 1)"),
                      description="adding problem, Hochreiter & Schmidhuber (1997), experiment 4"))
register_task(TaskDef("copy", lambda T, m: copy_spec(T, m["copy_symbols"]),
                      fixed(lambda T, n, g, m: copy_batch(T, n, g, m["copy_symbols"])), readout="every",
                      loss=cross_entropy, solved=recall_solved, keys=("copy_symbols",), chance=1 / COPY_ALPHABET,
                      description="copy memory (Arjovsky et al. 2016)"))
