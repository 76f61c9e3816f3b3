"""Verdicts: each claim judged by a stated rule from the evidence the sections reduce.

A claim's rule turns its evidence (a small frame, one row per configuration the store measured)
into findings: per configuration, whether the claim holds there (True), the evidence is against it
(False), or the interval cannot tell (None: it straddles the rule's threshold), with the figure
behind it and its interval. The verdict combines them: `supported` where it holds in every
configuration measured, `contradicted` where the evidence is against it in every one, `mixed`
otherwise (naming where it holds, where not, and where the evidence cannot tell), `not measured`
without evidence. An undecided configuration never counts for the claim, nor against it.
Tests (tests/test_verdicts.py) flip every verdict by flipping its evidence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import pandas as pd

from analysis.reduce.fits import succeeds_where_other_does_not

VERDICTS = ("supported", "contradicted", "mixed", "not measured")


@dataclass(frozen=True)
class Finding:
    scope: str            # the configuration in words
    holds: Optional[bool]  # True: holds; False: the evidence is against it; None: cannot tell
    figure: str           # the number behind it, with its interval
    why: str = ""         # where it does not hold: what the interval shows instead


@dataclass(frozen=True)
class Verdict:
    verdict: str
    figure: str           # the headline number with its interval (the first finding's, or the rule's pick)
    scope: str            # the configurations judged, or where it holds and where not
    findings: tuple = ()


def combine(findings: List[Finding], headline: Optional[Finding] = None) -> Verdict:
    """supported / contradicted / mixed from per-configuration findings."""
    if not findings:
        return Verdict("not measured", "-", "-")
    held = [f for f in findings if f.holds is True]
    against = [f for f in findings if f.holds is False]
    open_ = [f for f in findings if f.holds is None]
    head = headline or findings[-1]
    names = "; ".join(f.scope for f in findings)
    if len(held) == len(findings):
        verdict, scope = "supported", f"holds in every configuration measured ({names})"
    elif len(against) == len(findings):
        verdict, scope = "contradicted", f"holds in none of the configurations measured ({names})"
    else:
        verdict = "mixed"
        parts = [f"holds in {len(held)} of {len(findings)}" + (f": {'; '.join(f.scope for f in held)}" if held else "")]
        if against:
            parts.append(f"Does not hold in: {'; '.join(f.scope + (f' ({f.why})' if f.why else '') for f in against)}")
        if open_:
            parts.append(f"The evidence cannot tell in: {'; '.join(f.scope + (f' ({f.why})' if f.why else '') for f in open_)}")
        scope = ". ".join(parts)
    return Verdict(verdict, head.figure, scope, tuple(findings))


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


# --- the rules -------------------------------------------------------------------------------

def half_life_text(row) -> str:
    return row.get("half_life", "-") if isinstance(row, dict) else getattr(row, "half_life", "-")


def slower_decay(a, b) -> Optional[bool]:
    """Whether a's gradient decays more slowly than b's (decay per step is negative): a's interval
    wholly above b's -> True, wholly below -> False, overlapping -> None."""
    if a["decay_lo"] > b["decay_hi"]:
        return True
    if a["decay_hi"] < b["decay_lo"]:
        return False
    return None


def judge_gates(evidence: Dict) -> Verdict:
    """Consistency check: ref_lstm's gradient profiles equal nn.LSTM's to float64 rounding."""
    diff = evidence.get("max_rel_diff")
    if diff is None or (isinstance(diff, float) and math.isnan(diff)):
        return Verdict("not measured", "-", "-")
    ok = diff <= 1e-9
    return combine([Finding("every profile measured for both", ok,
                            f"max relative difference {diff:.1e} (rule: <= 1e-9)")])


def judge_pairs(frame: pd.DataFrame, a: str, b: str, label: str, hold: str = "slower") -> Verdict:
    """Per configuration (`scope` column): whether cell a's decay interval lies wholly slower than
    cell b's (frame rows: scope, cell, decay_lo, decay_hi, half_life)."""
    if frame is None or frame.empty:
        return Verdict("not measured", "-", "-")
    findings = []
    for scope, g in frame.groupby("scope", sort=False):
        ra, rb = g[g["cell_role"] == a], g[g["cell_role"] == b]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        cmp = slower_decay(ra, rb)
        figure = f"half-life {ra['name']} {ra['half_life']} vs {rb['name']} {rb['half_life']} steps"
        why = "" if cmp else ("the intervals overlap" if cmp is None else f"{rb['name']} reaches further")
        findings.append(Finding(scope, cmp, figure, why))
    return combine(findings)


def judge_reach(frame: pd.DataFrame) -> Verdict:
    return judge_pairs(frame, "lstm", "rnn", "reach")


def judge_init(frame: pd.DataFrame) -> Verdict:
    return judge_pairs(frame, "lstm", "rnn", "init")


def judge_solved(frame: pd.DataFrame) -> Verdict:
    """Per configuration: holds where the LSTM's solved fraction's Wilson interval lies wholly above
    the RNN's; against it where the RNN's interval lies wholly above 1/2 (it solves the lag in most
    seeds) or the LSTM's wholly below; undecided otherwise (frame rows: scope, cell_role, solved,
    seeds, lo, hi, name, budget_ok)."""
    if frame is None or frame.empty:
        return Verdict("not measured", "-", "-")
    findings, short = [], []
    for scope, g in frame.groupby("scope", sort=False):
        ra, rb = g[g["cell_role"] == "lstm"], g[g["cell_role"] == "rnn"]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        holds = succeeds_where_other_does_not(ra["lo"], ra["hi"], rb["lo"], rb["hi"])
        a, b = (f"{int(x['solved'])}/{int(x['seeds'])} [{x['lo']:.2f}, {x['hi']:.2f}]" for x in (ra, rb))
        figure = f"{scope}: solved {ra['name']} {a} vs {rb['name']} {b}"
        brief = f"lag {g['lag'].iloc[0] if 'lag' in g else scope}: lstm {a} vs rnn {b}"
        if not bool(g["budget_ok"].all()):
            figure += " (budget shorter than the rule asks)"
            brief += " (budget shorter than the rule asks)"
        went_on = [x for _, x in g.iterrows() if x.get("continued", "-") not in ("-", None)]
        if went_on:  # what the unsolved runs did when continued past the budget (not part of the rule)
            figure += f"; continued past the budget: {'; '.join(x['cell_role'] + ', ' + x['continued'] for x in went_on)}"
            brief += "; " + "; ".join(f"{x['cell_role']}, {x.get('continued_brief', x['continued'])}" for x in went_on)
        short.append(brief)
        why = ("" if holds else "the intervals overlap" if holds is None else
               "the RNN solves it in most seeds" if rb["lo"] > 0.5 else "the LSTM does not solve it in most seeds")
        findings.append(Finding(scope, holds, figure, why))
    budgets = sorted({int(b) for b in frame["budget"]}) if "budget" in frame else []
    within = f"within {', '.join(map(str, budgets))} steps: " if budgets else ""
    return combine(findings, Finding("every lag", None, within + ". ".join(short)) if findings else None)


def judge_ratio(frame: pd.DataFrame, low: float, high: float = math.inf) -> Verdict:
    """Per configuration: a ratio's interval wholly inside [low, high] (frame rows: scope, ratio,
    ratio_lo, ratio_hi, interval_covers, headline)."""
    if frame is None or frame.empty:
        return Verdict("not measured", "-", "-")
    findings, headline = [], None
    for r in frame.itertuples():
        holds = (True if r.ratio_lo > low and r.ratio_hi < high else
                 False if r.ratio_hi < low or r.ratio_lo > high else None)
        covers = "over interleaved rounds" if r.interval_covers == "rounds" else "one run's repetitions only"
        paths = getattr(r, "paths", 1)
        if paths > 1 and r.interval_covers == "rounds":  # the best of k, judged on the same rounds
            covers += f", simultaneous over its {paths} paths"
        where = f"{r.scope}: " if len(frame) > 1 else ""  # which configuration the figure is
        f = Finding(r.scope, holds, f"{where}{r.ratio:.2f}x [{r.ratio_lo:.2f}, {r.ratio_hi:.2f}] ({covers})",
                    "" if holds is not None else "the interval straddles the threshold")
        findings.append(f)
        if getattr(r, "headline", False):
            headline = f
    return combine(findings, headline)


def judge_slower(frame: pd.DataFrame) -> Verdict:
    return judge_ratio(frame, 1.0)


def judge_bidir(frame: pd.DataFrame) -> Verdict:
    return judge_ratio(frame, 1.8, 2.2)


def judge_below_one(frame: pd.DataFrame) -> Verdict:
    """The first side faster: the interval of its step time over the second's wholly below 1
    (shown as measured, first over second: 7x means the first side is 7x slower)."""
    return judge_ratio(frame, 0.0, 1.0)


def judge_subnormal(frame: pd.DataFrame) -> Verdict:
    return judge_ratio(frame, 1.10)


def judge_findings(frame: pd.DataFrame) -> Verdict:
    """Evidence already reduced to findings by its section (rows: scope, holds, figure)."""
    if frame is None or frame.empty:
        return Verdict("not measured", "-", "-")
    return combine([Finding(r.scope, None if pd.isna(r.holds) else bool(r.holds), r.figure,
                            "the intervals overlap" if pd.isna(r.holds) else "") for r in frame.itertuples()])


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
