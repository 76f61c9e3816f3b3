"""Steps to solve as a survival curve: the solved fraction against training steps, with runs that
did not solve censored at their budget (Kaplan-Meier), its interval, the median steps to solve
with its interval, and the budget check the long-lag claims must pass.

A run that solves at step s is an event at s; a run that did not solve within its budget
(diverged runs included: they can no longer solve) is censored at the budget. With one budget for
every run the estimate is the plain fraction solved by each step; with several (runs continued
past a budget) the Kaplan-Meier product keeps each run in the risk set only while observed.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.reduce.fits import CONFIDENCE, wilson

BUDGET_FACTOR = 2.0  # a budget is long enough at this many times the slowest solving cell's median


def kaplan_meier(steps_to_solve: np.ndarray, solved: np.ndarray, budget: np.ndarray) -> pd.DataFrame:
    """The solved fraction F(t) = 1 - S(t) at every event or censoring step.

    steps_to_solve (n,): the step of the first solved evaluation (ignored where not solved);
    solved (n,) bool; budget (n,): the step at which an unsolved run was last observed.
    Columns: step, at_risk, events, censored, solved_fraction, lo, hi. The interval is Greenwood's
    on log(-log S) (as lifelines draws it); where S is 1 or 0 it has no width, so there the 95%
    Wilson interval of the events among the runs at risk stands in (small k, no width is wrong).
    """
    solved = np.asarray(solved, bool)
    t = np.where(solved, np.asarray(steps_to_solve, float), np.asarray(budget, float))
    n = len(t)
    rows, surv, var_sum, z = [], 1.0, 0.0, norm.ppf(0.5 + CONFIDENCE / 2)
    for step in np.unique(t):
        at_risk = int((t >= step).sum())
        d = int(((t == step) & solved).sum())
        c = int(((t == step) & ~solved).sum())
        if d:
            surv *= 1 - d / at_risk
            var_sum += d / (at_risk * (at_risk - d)) if at_risk > d else math.inf
        f = 1 - surv
        if 0 < surv < 1 and math.isfinite(var_sum):
            ll = math.log(-math.log(surv))
            half = z * math.sqrt(var_sum) / abs(math.log(surv))
            s_lo, s_hi = math.exp(-math.exp(ll + half)), math.exp(-math.exp(ll - half))
            lo, hi = 1 - s_hi, 1 - s_lo
        else:
            solved_so_far = int(round(f * n))
            lo, hi = wilson(solved_so_far, n)
        rows.append({"step": step, "at_risk": at_risk, "events": d, "censored": c,
                     "solved_fraction": f, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["step", "at_risk", "events", "censored", "solved_fraction", "lo", "hi"])


def median_steps(curve: pd.DataFrame) -> Tuple[float, float, float]:
    """(median, lo, hi) steps to solve from a curve: the first step where the solved fraction
    reaches one half, and where its interval's upper and lower bounds do (Brookmeyer-Crowley's
    reading of the band). NaN where never reached within the observed steps (the median is then
    beyond the budget); an upper bound never reached is inf."""
    def first(col: str) -> float:
        hit = curve.loc[curve[col] >= 0.5 - 1e-9, "step"]  # S = 0.5000000000000001 is one half
        return float(hit.iloc[0]) if len(hit) else math.nan
    med, lo, hi = first("solved_fraction"), first("hi"), first("lo")
    if math.isnan(hi) and not math.isnan(med):
        hi = math.inf
    return med, lo, hi


def curves(runs: pd.DataFrame, by: list) -> Dict[tuple, pd.DataFrame]:
    """One curve per group of `runs` (analysis.runs.runs rows): {group values: curve}."""
    out = {}
    for key, g in runs.groupby(by, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out[key] = kaplan_meier(g["steps_to_solve"].to_numpy(float), g["solved"].to_numpy(bool),
                                g["budget"].to_numpy(float))
    return out


def budget_check(medians: Dict[str, float], budget: float) -> Dict:
    """Whether `budget` is at least BUDGET_FACTOR x the slowest solving cell's median steps to
    solve. `medians`: cell -> median (NaN for a cell that solved under half its runs)."""
    solving = {c: m for c, m in medians.items() if m is not None and not math.isnan(m)}
    if not solving:
        return {"long_enough": False, "slowest": None, "slowest_median": math.nan, "needed": math.nan,
                "budget": budget, "why": "no cell solved half its runs: the budget cannot be judged"}
    slowest = max(solving, key=solving.get)
    needed = BUDGET_FACTOR * solving[slowest]
    ok = budget >= needed
    why = (f"budget {budget:.0f} >= {BUDGET_FACTOR:g} x {slowest}'s median {solving[slowest]:.0f}" if ok else
           f"budget {budget:.0f} < {BUDGET_FACTOR:g} x {slowest}'s median {solving[slowest]:.0f}: too short")
    return {"long_enough": ok, "slowest": slowest, "slowest_median": solving[slowest], "needed": needed,
            "budget": budget, "why": why}
