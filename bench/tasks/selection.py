"""Selective copying (Gu & Dao 2023), with its registry entry. Generated from a seed; must not be
changed, only appended to: stored records depend on these exact sequences.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from bench.tasks.long_lag import COPY_ALPHABET, recall_solved
from bench.tasks.registry import TaskDef, TaskSpec, cross_entropy, fixed, register_task


# Selective copying (Gu & Dao 2023, Mamba, section 3.1; the minGRU paper's table 2), scaled to a
# CPU: `symbols` tokens from the alphabet 1..8 at random, ordered positions among seq_len - 1
# blanks (the spacing varies, so a fixed delay line cannot solve it: the cell must select by
# content), a delimiter at step seq_len - 1, then `symbols` blank steps during which the tokens
# must be recalled in order. Same alphabet, input coding and judgement as `copy`.
def selective_copy_spec(seq_len: int, symbols: int = 4) -> TaskSpec:
    total = seq_len + symbols
    return TaskSpec(input_size=COPY_ALPHABET + 2, output_size=COPY_ALPHABET + 1,
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






register_task(TaskDef("selective_copy", lambda T, m: selective_copy_spec(T, m["copy_symbols"]),
                      fixed(lambda T, n, g, m: selective_copy_batch(T, n, g, m["copy_symbols"])),
                      readout="every", loss=cross_entropy, solved=recall_solved, keys=("copy_symbols",),
                      chance=1 / COPY_ALPHABET,
                      seq_len_rule=lambda T, m: None if T > m["copy_symbols"] else (
                          f"selective_copy needs seq_len > measure.copy_symbols={m['copy_symbols']}"),
                      kind="selection", description="selective copying (Gu & Dao 2023)"))
