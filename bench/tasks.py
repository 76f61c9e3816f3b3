"""Long-lag tasks generated from a seed (no downloads).

Must not be changed, only appended to: stored records depend on these exact sequences.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

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




# --- state tracking (Grazzi et al. 2025; Deletang et al. 2023; Merrill et al. 2024) -----------
# Training sequences have their own lengths, drawn uniformly from [min_len, seq_len]
# (`measure.min_len`; the published protocol: 3 to 40); a batch is padded to seq_len with zero
# vectors after each sequence's end. A final-label task (parity) is read at each sequence's own
# last step (`lengths - 1`): a causal model never sees the padding before its readout; a tagging
# task (a label at every step) carries IGNORE on the padding. After training, each is judged at
# the final step of sequences of every length in STATE_TEST_LENGTHS (one length per batch).
STATE_TEST_LENGTHS = (20, 40, 48, 64, 96, 128, 192, 256)


def _lengths(seq_len: int, batch: int, gen: torch.Generator, min_len: int) -> Tensor:
    """Per-sequence lengths (B,), uniform on [min_len, seq_len]."""
    return torch.randint(min_len, seq_len + 1, (batch,), generator=gen)


def _pad_mask(lengths: Tensor, seq_len: int) -> Tensor:
    """(T, B) True where t < length: the sequence's own steps."""
    return torch.arange(seq_len).unsqueeze(1) < lengths.unsqueeze(0)


def parity_final_batch(seq_len: int, batch: int, gen: torch.Generator, min_len: int
                       ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T, B, 2) one-hot bits (zeros after each end); y (B,) the parity of the sequence's
    bits; lengths (B,)."""
    lengths = _lengths(seq_len, batch, gen, min_len)
    bits = torch.randint(0, 2, (seq_len, batch), generator=gen)
    inside = _pad_mask(lengths, seq_len)
    x = torch.nn.functional.one_hot(bits, 2).float() * inside.unsqueeze(-1)
    return x, (bits * inside).sum(0) % 2, lengths


# Modular arithmetic without brackets (Deletang et al. 2023, `modular_arithmetic`, simple form):
# numbers 0..4 and operators +, -, * alternating, starting and ending with a number, evaluated mod
# 5 with the usual precedence (* before + and -), as their code does. Tokens 0..4 are the numbers,
# 5..7 the operators. Labelled at every number (the value of the expression so far; operators and
# padding carry IGNORE), the tagging form in which Merrill et al. (2024) pose state tracking: on
# this CPU's budget no cell learnt the one-final-label form (bench/tasks.py's TASKS description).
# A sequence of length L ends on its last number: an even L's trailing operator is left out, so
# `lengths` is each sequence's own last labelled step + 1.
MOD = 5
MOD_OPS = ("+", "-", "*")
IGNORE = -100  # a position without a label (torch's cross-entropy ignore_index)


def modular_arithmetic_batch(seq_len: int, batch: int, gen: torch.Generator, min_len: int
                             ) -> Tuple[Tensor, Tensor, Tensor]:
    """x (T, B, 8) one-hot tokens (zeros after each end); y (T, B) the value so far mod 5 at every
    number, IGNORE elsewhere; lengths (B,)."""
    lengths = _lengths(seq_len, batch, gen, min_len)
    numbers = torch.randint(0, MOD, (seq_len, batch), generator=gen)
    ops = torch.randint(0, len(MOD_OPS), (seq_len, batch), generator=gen)
    tokens = torch.where(torch.arange(seq_len).unsqueeze(1) % 2 == 0, numbers, MOD + ops)
    own = lengths - (lengths % 2 == 0).long()
    inside = _pad_mask(own, seq_len)
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
    lengths = _lengths(seq_len, batch, gen, min_len)
    g = torch.randint(0, len(S3), (seq_len, batch), generator=gen)
    y = torch.empty_like(g)
    state = g[0]
    y[0] = state
    for t in range(1, seq_len):
        state = S3_TABLE[state, g[t]]
        y[t] = state
    inside = _pad_mask(lengths, seq_len)
    return (torch.nn.functional.one_hot(g, len(S3)).float() * inside.unsqueeze(-1),
            torch.where(inside, y, IGNORE), lengths)


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
    inside = _pad_mask(lengths, longest)
    y = (0.5 + (values[first, cols] + values[second, cols]) / 4).unsqueeze(-1)
    return torch.stack([values * inside, markers * inside], dim=-1), y, lengths


def state_spec(input_size: int, classes: int) -> TaskSpec:
    # Memoryless: the label of a final-label state-tracking task is uniform given the last token
    # (parity, S3) or nearly so (mod 5): ln(classes) nats.
    return TaskSpec(input_size=input_size, output_size=classes, total_len=0, baseline_loss=math.log(classes))


# --- the task registry ---------------------------------------------------------------------
# One entry per `measure.task` (append only, as the generators): what the long_range measure
# needs of a task. `keys` are the measure keys the task reads (the others of TASK_KEYS are left
# out of its points' hash, bench/records.py); `readout`: `last` (one label read at the end of
# each sequence, at its own last step where lengths vary), `every` (a label at every step);
# `loss`: `mse` or `cross_entropy`; `judge`: how `solved` is decided (long_range.solved);
# `chance`: the accuracy of guessing (None for a regression); `generalise`: how it is tested
# beyond the training length (`factors`: PARITY_TEST_FACTORS x L, running labels; `lengths`:
# STATE_TEST_LENGTHS, final label), or None.
TASK_KEYS = ("solve_mse", "copy_symbols", "min_len", "length_spread")


@dataclass(frozen=True)
class TaskDef:
    name: str
    spec: Callable[[int, Any], TaskSpec]                 # (seq_len, measure cfg) -> sizes, baseline
    batch: Callable[[int, int, torch.Generator, Any], Tuple[Tensor, Tensor, Optional[Tensor]]]
    readout: str
    loss: str
    judge: str
    keys: Tuple[str, ...] = ()
    chance: Optional[float] = None
    generalise: Optional[str] = None
    # (seq_len, measure cfg) -> what is wrong with this length for the task, or None
    seq_len_rule: Callable[[int, Any], Optional[str]] = lambda T, m: None
    description: str = ""

    @property
    def inputs(self) -> int:
        """The input width the task feeds the model (its one-hot or value channels)."""
        return self.spec(2, {"copy_symbols": 1}).input_size


def _fixed(make):
    """A generator of one length for every sequence: lengths None."""
    return lambda T, n, g, m: (*make(T, n, g, m), None)


def _hs97(T: int, n: int, g: torch.Generator, m) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    spread = m.get("length_spread", 0.0) or 0.0
    if spread == 0:
        return (*adding_hs97_batch(T, n, g), None)
    return adding_hs97_spread_batch(T, n, g, spread)


def _state(make):
    return lambda T, n, g, m: make(T, n, g, m.get("min_len") or T)


TASKS: Dict[str, TaskDef] = {}


def register_task(task: TaskDef) -> TaskDef:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


register_task(TaskDef("adding", lambda T, m: adding_spec(T), _fixed(lambda T, n, g, m: adding_batch(T, n, g)),
                      readout="last", loss="mse", judge="mse", keys=("solve_mse",), seq_len_rule=lambda T, m: None if T >= 2 else "the adding problem needs seq_len >= 2",
                      description="adding problem, Le et al. (2015) / Arjovsky et al. (2016) form"))
register_task(TaskDef("adding_hs97", lambda T, m: adding_hs97_spec(T), _hs97, readout="last", loss="mse",
                      judge="hs97", keys=("solve_mse", "length_spread"), seq_len_rule=lambda T, m: None if T >= 22 else (
                          "adding_hs97 needs seq_len >= 22 (first marker in the first 10 steps, second "
                          "in the first T/2 - 1)"),
                      description="adding problem, Hochreiter & Schmidhuber (1997), experiment 4"))
register_task(TaskDef("copy", lambda T, m: copy_spec(T, m["copy_symbols"]),
                      _fixed(lambda T, n, g, m: copy_batch(T, n, g, m["copy_symbols"])), readout="every",
                      loss="cross_entropy", judge="recall", keys=("copy_symbols",), chance=1 / COPY_ALPHABET,
                      description="copy memory (Arjovsky et al. 2016)"))
register_task(TaskDef("parity", lambda T, m: parity_spec(T), _fixed(lambda T, n, g, m: parity_batch(T, n, g)),
                      readout="every", loss="cross_entropy", judge="every_step", chance=0.5,
                      generalise="factors", description="running parity (a label at every step)"))
register_task(TaskDef("selective_copy", lambda T, m: selective_copy_spec(T, m["copy_symbols"]),
                      _fixed(lambda T, n, g, m: selective_copy_batch(T, n, g, m["copy_symbols"])),
                      readout="every", loss="cross_entropy", judge="recall", keys=("copy_symbols",),
                      chance=1 / COPY_ALPHABET, seq_len_rule=lambda T, m: None if T > m["copy_symbols"] else (
                          f"selective_copy needs seq_len > measure.copy_symbols={m['copy_symbols']}"),
                      description="selective copying (Gu & Dao 2023)"))
register_task(TaskDef("parity_final", lambda T, m: state_spec(2, 2), _state(parity_final_batch), readout="last",
                      loss="cross_entropy", judge="final", keys=("min_len",), chance=0.5, generalise="lengths",
                      description="parity, one label at the end (Deletang et al. 2023; Grazzi et al. 2025)"))
register_task(TaskDef("modular_arithmetic", lambda T, m: state_spec(MOD + len(MOD_OPS), MOD),
                      _state(modular_arithmetic_batch), readout="every", loss="cross_entropy", judge="every_step",
                      keys=("min_len",), chance=1 / MOD, generalise="lengths",
                      description="modular arithmetic without brackets, mod 5 (Deletang et al. 2023), "
                                  "labelled at every number"))
register_task(TaskDef("word_s3", lambda T, m: state_spec(len(S3), len(S3)), _state(word_s3_batch),
                      readout="every", loss="cross_entropy", judge="every_step", keys=("min_len",), chance=1 / len(S3),
                      generalise="lengths", description="word problem of S3, labelled at every step (Merrill et al. 2024)"))

# Derived view, for the modules that ask by name.
PER_STEP_TASKS = tuple(name for name, t in TASKS.items() if t.readout == "every")  # a prediction at every step
