"""The state-tracking tasks, with their registry entries: running parity, parity with one final
label, modular arithmetic without brackets and the word problem of S3 (Deletang et al. 2023;
Grazzi et al. 2025; Merrill et al. 2024). Generated from a seed; must not be changed, only
appended to: stored records depend on these exact sequences.
"""
from __future__ import annotations

import itertools
import math
from typing import Tuple

import torch
from torch import Tensor

from bench.tasks.registry import (
    IGNORE,
    TaskDef,
    TaskSpec,
    accuracy_solved,
    cross_entropy,
    draw_lengths,
    fixed,
    pad_mask,
    register_task,
)

# Running parity (`parity`): a string of random bits, and at every step the parity of the bits so
# far (Deletang et al. 2023, "Neural Networks and the Chomsky Hierarchy"; the state-tracking task
# on which diagonal recurrences with positive eigenvalues fail, Grazzi et al. 2024). Trained at
# length L (every prefix is supervised, so lengths 1..L), tested at PARITY_TEST_FACTORS x L.
PARITY_TEST_FACTORS = (2, 5, 10)


def parity_spec(seq_len: int) -> TaskSpec:
    # Memoryless: each step's parity is a fair coin given the current bit alone: log 2 per step.
    return TaskSpec(input_size=2, output_size=2, baseline_loss=math.log(2))


def parity_batch(seq_len: int, batch: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """x (T, B, 2) one-hot bits; y (T, B) the running parity, class indices 0/1."""
    bits = torch.randint(0, 2, (seq_len, batch), generator=gen)
    return torch.nn.functional.one_hot(bits, 2).float(), torch.cumsum(bits, dim=0) % 2


# --- state tracking (Grazzi et al. 2025; Deletang et al. 2023; Merrill et al. 2024) -----------
# Training sequences have their own lengths, drawn uniformly from [min_len, seq_len]
# (`measure.min_len`; the published protocol: 3 to 40); a batch is padded to seq_len with zero
# vectors after each sequence's end. A final-label task (parity) is read at each sequence's own
# last step (`lengths - 1`): a causal model never sees the padding before its readout; a tagging
# task (a label at every step) carries IGNORE on the padding. After training, each is judged at
# the final step of sequences of every length in STATE_TEST_LENGTHS (one length per batch).
STATE_TEST_LENGTHS = (20, 40, 48, 64, 96, 128, 192, 256)


def parity_final_batch(seq_len: int, batch: int, gen: torch.Generator, min_len: int
                       ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T, B, 2) one-hot bits (zeros after each end); y (B,) the parity of the sequence's
    bits; lengths (B,)."""
    lengths = draw_lengths(seq_len, batch, gen, min_len)
    bits = torch.randint(0, 2, (seq_len, batch), generator=gen)
    inside = pad_mask(lengths, seq_len)
    x = torch.nn.functional.one_hot(bits, 2).float() * inside.unsqueeze(-1)
    return x, (bits * inside).sum(0) % 2, lengths


# Modular arithmetic without brackets (Deletang et al. 2023, `modular_arithmetic`, simple form):
# numbers 0..4 and operators +, -, * alternating, starting and ending with a number, evaluated mod
# 5 with the usual precedence (* before + and -), as their code does. Tokens 0..4 are the numbers,
# 5..7 the operators. Labelled at every number (the value of the expression so far; operators and
# padding carry IGNORE), the tagging form in which Merrill et al. (2024) pose state tracking: on
# this CPU's budget no cell learnt the one-final-label form in pilot runs (docs/results.md).
# A sequence of length L ends on its last number: an even L's trailing operator is left out, so
# `lengths` is each sequence's own last labelled step + 1.
MOD = 5
MOD_OPS = ("+", "-", "*")


def modular_arithmetic_batch(seq_len: int, batch: int, gen: torch.Generator, min_len: int
                             ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T, B, 8) one-hot tokens (zeros after each end); y (T, B) the value so far mod 5 at every
    number, IGNORE elsewhere; lengths (B,)."""
    lengths = draw_lengths(seq_len, batch, gen, min_len)
    numbers = torch.randint(0, MOD, (seq_len, batch), generator=gen)
    ops = torch.randint(0, len(MOD_OPS), (seq_len, batch), generator=gen)
    tokens = torch.where(torch.arange(seq_len).unsqueeze(1) % 2 == 0, numbers, MOD + ops)
    own = lengths - (lengths % 2 == 0).long()
    inside = pad_mask(own, seq_len)
    y = torch.full((seq_len, batch), IGNORE, dtype=torch.long)
    # the value so far as a running sum of products, vectorised over the batch
    total, product, sign = torch.zeros(batch, dtype=torch.long), numbers[0].clone(), torch.ones(batch, dtype=torch.long)
    y[0] = product
    for t in range(1, seq_len - 1, 2):
        op, value = ops[t], numbers[t + 1]
        times, plus_minus = op == 2, op != 2
        total = torch.where(plus_minus, torch.remainder(total + sign * product, MOD), total)
        sign = torch.where(plus_minus, 1 - 2 * (op == 1).long(), sign)
        product = torch.where(times, torch.remainder(product * value, MOD), value)
        y[t + 1] = torch.remainder(total + sign * product, MOD)
    y = torch.where(inside, y, IGNORE)
    x = torch.nn.functional.one_hot(tokens, MOD + len(MOD_OPS)).float() * inside.unsqueeze(-1)
    return x, y, own


# The word problem of the symmetric group S3 (Merrill et al. 2024, "The Illusion of State in
# State-Space Models"): a sequence of permutations of 3 objects, labelled at every step by the
# product so far g_1 g_2 ... g_t (their tagging form). S3 is the smallest non-abelian group:
# tracking it needs a transition that is not diagonal (diagonal transitions commute). Elements
# are numbered in itertools.permutations order; the product applies g_1 first.
S3 = tuple(itertools.permutations(range(3)))


def _compose_table(elements: Tuple[Tuple[int, ...], ...]) -> Tensor:
    """table[a, b] = index of (b after a): apply a, then b."""
    index = {p: i for i, p in enumerate(elements)}
    return torch.tensor([[index[tuple(b[a[k]] for k in range(len(a)))] for b in elements] for a in elements])


S3_TABLE = _compose_table(S3)


def word_s3_batch(seq_len: int, batch: int, gen: torch.Generator, min_len: int
                  ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T, B, 6) one-hot elements (zeros after each end); y (T, B) the product so far (IGNORE
    after each end); lengths (B,)."""
    lengths = draw_lengths(seq_len, batch, gen, min_len)
    g = torch.randint(0, len(S3), (seq_len, batch), generator=gen)
    y = torch.empty_like(g)
    state = g[0]
    y[0] = state
    for t in range(1, seq_len):
        state = S3_TABLE[state, g[t]]
        y[t] = state
    inside = pad_mask(lengths, seq_len)
    return (torch.nn.functional.one_hot(g, len(S3)).float() * inside.unsqueeze(-1),
            torch.where(inside, y, IGNORE), lengths)


def state_spec(input_size: int, classes: int) -> TaskSpec:
    # Memoryless: the label of a final-label state-tracking task is uniform given the last token
    # (parity, S3) or nearly so (mod 5): ln(classes) nats.
    return TaskSpec(input_size=input_size, output_size=classes, baseline_loss=math.log(classes))




def _state(make):
    return lambda T, n, g, m: make(T, n, g, m.get("min_len") or T)


register_task(TaskDef("parity", lambda T, m: parity_spec(T), fixed(lambda T, n, g, m: parity_batch(T, n, g)),
                      readout="every", loss=cross_entropy, solved=accuracy_solved, chance=0.5,
                      generalise="factors", kind="state", description="running parity (a label at every step)"))
register_task(TaskDef("parity_final", lambda T, m: state_spec(2, 2), _state(parity_final_batch), readout="last",
                      loss=cross_entropy, solved=accuracy_solved, keys=("min_len",), chance=0.5,
                      generalise="lengths",
                      kind="state", description="parity, one label at the end (Deletang et al. 2023; Grazzi et al. 2025)"))
register_task(TaskDef("modular_arithmetic", lambda T, m: state_spec(MOD + len(MOD_OPS), MOD),
                      _state(modular_arithmetic_batch), readout="every", loss=cross_entropy,
                      solved=accuracy_solved, keys=("min_len",), chance=1 / MOD, generalise="lengths",
                      kind="state", description="modular arithmetic without brackets, mod 5 (Deletang et al. 2023), "
                                  "labelled at every number"))
register_task(TaskDef("word_s3", lambda T, m: state_spec(len(S3), len(S3)), _state(word_s3_batch),
                      readout="every", loss=cross_entropy, solved=accuracy_solved, keys=("min_len",),
                      chance=1 / len(S3), generalise="lengths",
                      kind="state", description="word problem of S3, labelled at every step (Merrill et al. 2024)"))
