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
    """x (T, B, 2): value in [0, 1] and a marker, one marker in each half; y (B, 1): the sum."""
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
