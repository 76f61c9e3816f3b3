"""Verdicts: each claim of the scorecard, what it states, the rule that decides it in words, and the
judge (analysis/report/rules.py) that computes it from the evidence the sections reduce.
Tests (tests/test_verdicts.py) flip every verdict by flipping its evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List

import pandas as pd

from analysis.report.rules import (
    Verdict,
    judge_below_one,
    judge_bidir,
    judge_findings,
    judge_gates,
    judge_init,
    judge_reach,
    judge_slower,
    judge_solved,
    judge_subnormal,
)


@dataclass(frozen=True)
class Claim:
    """key; statement: what the row claims, worded to claim no more than the rule decides;
    tutorial: the classic tutorial's sentence it tests, where it has one; rule: the rule in words;
    study: the reference study that measures it (results/reference/<study>); preset: what measures
    it in a store of one's own; judge(evidence) -> Verdict; by_construction: a fact the code
    guarantees (labelled so, never presented as a finding)."""
    key: str
    statement: str
    rule: str
    study: str
    preset: str
    judge: Callable[[object], Verdict]
    tutorial: str = ""
    by_construction: bool = False


# --- the claims, in scorecard order ----------------------------------------------------------

CLAIMS: List[Claim] = [
    Claim("gates", "`ref_lstm`, written from the gate equations, reproduces `torch.nn.LSTM`'s gradients",
          "every gradient profile measured for both agrees to a relative 1e-9 (a consistency check "
          "of the equations, not a finding about LSTMs)", "classic", "gradients", judge_gates,
          tutorial="The gates and cell state follow the textbook formulas", by_construction=True),
    Claim("reach", "At PyTorch's default init, an LSTM's gradient reaches further back than a plain RNN's",
          "per sequence length, the LSTM's decay-per-step interval (95%, bootstrap over seeds and "
          "samples) lies wholly slower than the tanh RNN's", "classic", "gradients", judge_reach,
          tutorial="LSTM alleviates vanishing gradients"),
    Claim("init", "The LSTM's reach is not only PyTorch's default init: at its best init the RNN still "
          "reaches less far than the LSTM at its best", "the best-init LSTM's decay interval lies wholly "
          "slower than the best-init RNN's (best: the slowest decay over the inits measured)", "classic",
          "gradients_init", judge_init),
    Claim("long_lag", "On the adding problem, within the same step budget, an LSTM solves lags that a "
          "plain RNN does not (PyTorch's default init, equal hidden size; protocol A)", "per lag, holds where the "
          "LSTM's solved fraction over 10 reported seeds (95% Wilson) lies wholly above the RNN's, each at "
          "its learning rate chosen on tuning seeds; against it where the RNN's interval lies wholly above "
          "1/2 (it solves the lag in most seeds) or the LSTM's wholly below; undecided otherwise. A run not "
          "solved within the budget is not solved, which says nothing of longer training", "fair", "long_range_fair", judge_solved,
          tutorial="LSTM learns long-range dependencies that a plain RNN cannot"),
    Claim("fair", "...and against a well-initialised RNN of equal parameter count (protocol B)",
          "as for protocol A, with each cell's init and learning rate chosen on tuning seeds", "fair",
          "long_range_fair", judge_solved),
    Claim("slower", "An LSTM training step takes longer than a plain RNN's on this CPU",
          "per size and backend, the LSTM/RNN step-time ratio's interval over interleaved rounds lies "
          "wholly above 1", "classic", "throughput_quick", judge_slower,
          tutorial="LSTM trains slower than a plain RNN"),
    Claim("bidir", "A bidirectional LSTM step takes twice a unidirectional one (its parameters are "
          "2x by construction)", "per size and backend, the bidirectional/unidirectional step-time "
          "ratio's interval lies wholly inside [1.8, 2.2]", "classic", "throughput_quick", judge_bidir,
          tutorial="Bi-LSTM doubles parameters and compute"),
    Claim("scan", "The diagonal cells' parallel scan outruns a fused LSTM at the longest sequence "
          "measured (this CPU)", "per cell, the scan's step time over the fused LSTM's, interval over "
          "interleaved rounds wholly below 1 at the longest seq_len", "crossover", "throughput_crossover",
          judge_below_one),
    Claim("fastest", "A diagonal cell's fastest path outruns a fused LSTM at the longest sequence "
          "measured (this CPU)", "per cell, at the longest seq_len, each path's step time over the fused "
          "LSTM's with its interval over interleaved rounds made simultaneous over the cell's k paths "
          "(Bonferroni: the best path is chosen on the rounds it is judged on); holds where some path's "
          "interval lies wholly below 1", "crossover", "throughput_crossover", judge_below_one),
    Claim("signed", "minGRU and minLSTM (transitions in [0, 1]) do not learn parity at the training "
          "lengths within the budget, where minGRU with its transition stretched to (-1, 1) learns it at "
          "those lengths (only the range differs; how far beyond them it holds: the state horizon)",
          "parity with one final label, trained until solved on lengths 1 to 40 (lr chosen per cell on "
          "tuning seeds): the signed minGRU's solved fraction over 10 reported seeds (Wilson) lies "
          "wholly above minGRU's and minLSTM's", "modern",
          "state_tracking", judge_findings),
    Claim("state", "On the S3 word problem, more seeds of each nonlinear recurrence (RNN, LSTM, GRU) "
          "than of the signed minGRU track the state to length 256 (trained on lengths up to 40)",
          "word problem of S3: per cell, the reported seeds whose "
          "scaled accuracy is >= 0.9 at every test length up to 256 (Wilson), nonlinear cells' interval "
          "wholly above the signed cell's", "modern", "state_tracking", judge_findings),
    Claim("selects", "With one layer and a linear readout, recurrences whose transition depends on their "
          "state (RNN, LSTM, GRU) solve selective copying where the time-invariant LRU, which provably "
          "cannot, does not: they select by content (the diagonal cells provably cannot in one layer either)",
          "selective copying, 4 tokens of 8 among the first 31 steps, a delimiter, 4 recall steps; one layer "
          "of 64, lr chosen per cell on tuning seeds: per cell, its solved fraction over 10 reported seeds "
          "(Wilson) lies wholly above the LRU's; against where it lies wholly below 1/2 or the LRU's wholly "
          "above 1/2", "selection", "selection", judge_findings),
    Claim("subnormal", "On this CPU, subnormal floats slow a training step by more than 10% until "
          "flushed", "per configuration, the kept/flushed step-time ratio's interval lies wholly above "
          "1.10", "cpu_cost", "cpu_cost", judge_subnormal,
          tutorial="(a CPU's cost of vanishing gradients)"),
]
CLAIM_KEYS = [c.key for c in CLAIMS]
BY_KEY = {c.key: c for c in CLAIMS}


def judge_all(evidence: Dict[str, object]) -> Dict[str, Verdict]:
    """Every claim's verdict from the evidence the sections gathered (missing: not measured)."""
    return {c.key: c.judge(evidence[c.key]) if c.key in evidence else Verdict("not measured", "-", "-")
            for c in CLAIMS}


@dataclass
class Scorecard:
    verdicts: Dict[str, Verdict] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        rows = []
        for c in CLAIMS:
            v = self.verdicts.get(c.key, Verdict("not measured", "-", "-"))
            rows.append({"claim": c.key, "statement": c.statement, "verdict": v.verdict, "figure": v.figure,
                         "scope": v.scope, "rule": c.rule, "study": c.study, "preset": c.preset,
                         "by_construction": c.by_construction})
        return pd.DataFrame(rows)
