"""Long-lag tasks generated from a seed (no downloads).

Must not be changed, only appended to: stored records depend on these exact sequences.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor

COPY_ALPHABET = 8  # symbols 1..8; 0 is blank, 9 the delimiter


@dataclass(frozen=True)
class TaskSpec:
    input_size: int
    output_size: int
    total_len: int          # sequence length the model sees
    baseline_loss: float    # loss of the best memoryless predictor


def adding_spec(seq_len: int) -> TaskSpec:
    # Target = sum of two U(0,1) values: variance 2/12 = 0.167 is the constant predictor's MSE.
    return TaskSpec(input_size=2, output_size=1, total_len=seq_len, baseline_loss=1 / 6)


def copy_spec(seq_len: int, symbols: int = 10) -> TaskSpec:
    # Memoryless: blank where the target is blank, uniform over the alphabet at recall.
    total = seq_len + 2 * symbols
    return TaskSpec(input_size=COPY_ALPHABET + 2, output_size=COPY_ALPHABET + 1, total_len=total,
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
    return TaskSpec(input_size=2, output_size=1, total_len=seq_len, baseline_loss=1 / 24)


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


# Running parity (`parity`): a string of random bits, and at every step the parity of the bits so
# far (Deletang et al. 2023, "Neural Networks and the Chomsky Hierarchy"; the state-tracking task
# on which diagonal recurrences with positive eigenvalues fail, Grazzi et al. 2024). Trained at
# length L (every prefix is supervised, so lengths 1..L), tested at PARITY_TEST_FACTORS x L.
PARITY_TEST_FACTORS = (2, 5, 10)


def parity_spec(seq_len: int) -> TaskSpec:
    # Memoryless: each step's parity is a fair coin given the current bit alone: log 2 per step.
    return TaskSpec(input_size=2, output_size=2, total_len=seq_len, baseline_loss=math.log(2))


def parity_batch(seq_len: int, batch: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """x (T, B, 2) one-hot bits; y (T, B) the running parity, class indices 0/1."""
    bits = torch.randint(0, 2, (seq_len, batch), generator=gen)
    return torch.nn.functional.one_hot(bits, 2).float(), torch.cumsum(bits, dim=0) % 2


# Selective copying (Gu & Dao 2023, Mamba, section 3.1; the minGRU paper's table 2), scaled to a
# CPU: `symbols` tokens from the alphabet 1..8 at random, ordered positions among seq_len - 1
# blanks (the spacing varies, so a fixed delay line cannot solve it: the cell must select by
# content), a delimiter at step seq_len - 1, then `symbols` blank steps during which the tokens
# must be recalled in order. Same alphabet, input coding and judgement as `copy`.
def selective_copy_spec(seq_len: int, symbols: int = 4) -> TaskSpec:
    total = seq_len + symbols
    return TaskSpec(input_size=COPY_ALPHABET + 2, output_size=COPY_ALPHABET + 1, total_len=total,
                    baseline_loss=symbols * math.log(COPY_ALPHABET) / total)


def selective_copy_batch(seq_len: int, batch: int, gen: torch.Generator, symbols: int = 4
                         ) -> Tuple[Tensor, Tensor]:
    """x (T+S, B, 10) one-hot; y (T+S, B) class indices (0 = blank), recall in the last S steps."""
    if seq_len - 1 < symbols:
        raise ValueError(f"data.seq_len={seq_len}: selective_copy needs seq_len > measure.copy_symbols={symbols}")
    seq = torch.randint(1, COPY_ALPHABET + 1, (symbols, batch), generator=gen)
    # S distinct positions among the first seq_len - 1, in increasing order, per sequence
    positions = torch.rand(seq_len - 1, batch, generator=gen).argsort(dim=0)[:symbols].sort(dim=0).values
    total = seq_len + symbols
    tokens = torch.zeros(total, batch, dtype=torch.long)
    tokens.scatter_(0, positions, seq)
    tokens[seq_len - 1] = COPY_ALPHABET + 1  # delimiter
    target = torch.zeros(total, batch, dtype=torch.long)
    target[-symbols:] = seq
    return torch.nn.functional.one_hot(tokens, COPY_ALPHABET + 2).float(), target


TASK_SPECS = {"adding": adding_spec, "adding_hs97": adding_hs97_spec, "copy": copy_spec,
              "parity": parity_spec, "selective_copy": selective_copy_spec}
PER_STEP_TASKS = ("copy", "parity", "selective_copy")  # a prediction at every step
