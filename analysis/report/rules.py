"""The rules that judge a claim (docs/architecture.md, "Report"): a claim's evidence, a small frame
with one row per configuration measured, becomes findings: per configuration, whether the claim
holds there (True), the evidence is against it (False), or the interval cannot tell (None: it
straddles the rule's threshold), with the figure behind it and its interval. `combine` reads them:
`supported` where it holds in every configuration measured, `contradicted` where the evidence is
against it in every one, `mixed` otherwise (naming where it holds, where not, and where the
evidence cannot tell), `not measured` without evidence. An undecided configuration never counts
for the claim, nor against it. The claims that use them: analysis/report/verdicts.py."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

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
    """Evidence already reduced to findings by its section (rows: scope, holds, figure; and why,
    where an undecided finding has another reason than overlapping intervals; and headline, the
    same in every row, where the verdict's figure should give every configuration at once)."""
    if frame is None or frame.empty:
        return Verdict("not measured", "-", "-")
    head = frame["headline"].iloc[0] if "headline" in frame else None
    return combine([Finding(r.scope, None if pd.isna(r.holds) else bool(r.holds), r.figure,
                            (r.why if isinstance(getattr(r, "why", None), str) and r.why else "the intervals overlap")
                            if pd.isna(r.holds) else "") for r in frame.itertuples()],
                   Finding("every cell", None, head) if isinstance(head, str) and head else None)
