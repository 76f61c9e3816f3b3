"""Ratios of two timings, and what their intervals cover.

Interleaved (the published form, `rounds_ratio`): the two sides were timed alternately in one
process, in several rounds (bench/run/rounds.py). Each round gives one ratio of the two sides'
median step times; the ratio is their geometric mean, and its 95% interval is Student's t interval
over the rounds' log ratios (k - 1 degrees of freedom). So it covers the machine's drift from round
to round (minutes) and the jitter within each (seconds), and it stays a 95% interval at three
rounds, where a bootstrap over rounds is in effect the range of the rounds: a distribution-free
interval for the median of only 1 - 2^(1-k) coverage (75% at k = 3, 94% at k = 5).

The A/B verdict (analysis/ci/paired.py) keeps `interleaved_ratio`, a two-level bootstrap (rounds,
then repetitions) over its many rounds, with the threshold and error rates validated for it
(docs/architecture.md, "CI regression check: how it was validated").

One run (stores measured without rounds): the ratio of medians with a bootstrap over repetitions,
labelled as covering the repetitions of one run only.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import numpy as np
import pandas as pd

from analysis.load import as_text, config_keys
from analysis.reduce.fits import BOOTSTRAP, CONFIDENCE

COVERS = {"rounds": "interleaved rounds (Student's t over the rounds' log ratios)",
          "repetitions": "repetitions of one run, not interleaved (within-run jitter only)"}
MIN_ROUNDS = 3


def interleaved_ratio(rounds: List[Tuple[np.ndarray, np.ndarray]], seed: int = 0) -> Tuple[float, float, float]:
    """(ratio, lo, hi) of the second side over the first from paired rounds [(den_times,
    num_times), ...]: the median over rounds of median(num_r) / median(den_r), with the 95%
    percentile interval of a two-level bootstrap (rounds, then each round's repetitions)."""
    rounds = [(np.asarray(b, float), np.asarray(h, float)) for b, h in rounds if len(b) and len(h)]
    if not rounds:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    logs = np.array([math.log(np.median(h) / np.median(b)) for b, h in rounds])  # per round
    draws = np.empty((len(rounds), BOOTSTRAP))  # per round: bootstrap draws of its log ratio
    for k, (b, h) in enumerate(rounds):
        mb = np.median(b[rng.integers(0, len(b), (BOOTSTRAP, len(b)))], axis=1)
        mh = np.median(h[rng.integers(0, len(h), (BOOTSTRAP, len(h)))], axis=1)
        draws[k] = np.log(mh / mb)
    picks = rng.integers(0, len(rounds), (BOOTSTRAP, len(rounds)))  # rounds, with replacement
    medians = np.median(draws[picks, np.arange(BOOTSTRAP)[:, None]], axis=1)
    a = (1 - CONFIDENCE) / 2
    return (float(math.exp(np.median(logs))), float(math.exp(np.quantile(medians, a))),
            float(math.exp(np.quantile(medians, 1 - a))))


def rounds_ratio(rounds: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[float, float, float]:
    """(ratio, lo, hi) of the second side over the first from paired rounds [(den_times,
    num_times), ...]: the geometric mean over rounds of median(num_r) / median(den_r), with the 95%
    Student's t interval over the rounds' log ratios."""
    from scipy import stats
    logs = np.array([math.log(np.median(h) / np.median(b)) for b, h in rounds if len(b) and len(h)])
    if len(logs) < 2:
        return math.nan, math.nan, math.nan
    half = stats.t.ppf((1 + CONFIDENCE) / 2, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
    return float(math.exp(logs.mean())), float(math.exp(logs.mean() - half)), float(math.exp(logs.mean() + half))


def simultaneous(ratio: float, lo: float, hi: float, rounds: int, k: int) -> Tuple[float, float]:
    """(lo, hi): a `rounds_ratio` interval (Student's t over `rounds` rounds) widened to hold for k
    ratios at once (Bonferroni: each at 1 - (1 - CONFIDENCE) / k), so that picking the best of k
    and judging it on the same rounds keeps the family's 95%. Unchanged where k is 1."""
    from scipy import stats
    if k <= 1 or rounds < 2 or not all(map(math.isfinite, (ratio, lo, hi))):
        return lo, hi
    df = rounds - 1
    scale = stats.t.ppf(1 - (1 - CONFIDENCE) / (2 * k), df) / stats.t.ppf((1 + CONFIDENCE) / 2, df)
    centre = math.log(ratio)
    return (math.exp(centre - scale * (centre - math.log(lo))), math.exp(centre + scale * (math.log(hi) - centre)))


def repetition_ratio(num: np.ndarray, den: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> Tuple[float, float, float]:
    """(ratio, lo, hi): median(num) / median(den) with a percentile bootstrap over repetitions."""
    rng = np.random.default_rng(seed)
    a = np.median(num[rng.integers(0, len(num), (n, len(num)))], axis=1)
    b = np.median(den[rng.integers(0, len(den), (n, len(den)))], axis=1)
    lo, hi = np.quantile(a / b, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(np.median(num) / np.median(den)), float(lo), float(hi)


def ratio_rows(p: pd.DataFrame, key: str, num, den, keys: List[str] = None) -> pd.DataFrame:
    """Step-time ratio of the points with key == num over those with key == den at equal
    configuration (`keys`, by default every configuration key but `key`, the round and what a
    kernel or machine decides), one row per configuration: ratio, ratio_lo, ratio_hi, rounds, and
    `interval_covers` (COVERS). `p`: analysis.reduce.throughput.points rows (one per point and
    round), with `step_times`. Interleaved where both sides have MIN_ROUNDS common rounds."""
    skip = {key, "backend", "device_name", "threads", "forget_bias", "measure_round"}
    if keys is None:
        keys = [c for c in config_keys(p) if c not in skip]
    keys = [k for k in keys if k in p and k != key]
    rnd = p["measure_round"] if "measure_round" in p else pd.Series(np.nan, index=p.index)
    p_types = p
    p = p.assign(_round=rnd.fillna(0).astype(int), **{k: as_text(p[k]) for k in keys})
    a, b = p[p[key] == num], p[p[key] == den]
    out = []
    for k, ga in a.groupby(keys, dropna=False, sort=True):
        k = k if isinstance(k, tuple) else (k,)
        gb = b[np.logical_and.reduce([b[c] == v for c, v in zip(keys, k)])] if keys else b
        if gb.empty:
            continue
        ra, rb = ga.set_index("_round")["step_times"], gb.set_index("_round")["step_times"]
        if ra.index.duplicated().any() or rb.index.duplicated().any():
            continue  # `keys` do not identify one point per round: no ratio rather than one of pooled points
        common = sorted(set(ra.index) & set(rb.index) - {0})
        if len(common) >= MIN_ROUNDS:
            ratio, lo, hi = rounds_ratio([(np.asarray(rb[r]), np.asarray(ra[r])) for r in common])
            covers, n = "rounds", len(common)
        elif set(ra.index) | set(rb.index) != {0}:
            # measured in rounds, but too few rounds hold both sides (the rest left out as noisy):
            # no ratio, rather than one dividing points timed in different rounds
            continue
        else:
            ta, tb = np.concatenate(list(ra)), np.concatenate(list(rb))
            ratio, lo, hi = repetition_ratio(ta, tb)
            covers, n = "repetitions", 1
        out.append({**dict(zip(keys, k)), "ratio": ratio, "ratio_lo": lo, "ratio_hi": hi, "rounds": n,
                    "interval_covers": covers,
                    "num_ms": float(np.median(np.concatenate(list(ra)))), "den_ms": float(np.median(np.concatenate(list(rb)))),
                    # the two sides' own spread and noise flags (the stored-baseline CI mode reads them)
                    "rel_spread": _col(ga, "rel_iqr").max() + _col(gb, "rel_iqr").max(),
                    "num_noisy": bool(_col(ga, "noisy").fillna(False).astype(bool).any()),
                    "den_noisy": bool(_col(gb, "noisy").fillna(False).astype(bool).any())})
    out = pd.DataFrame(out)
    # the keys back in their own types (they were compared as text)
    for c in keys:
        if c in out:
            back = out[c].map(dict(zip(as_text(p_types[c]), p_types[c])))
            try:
                out[c] = back.astype(p_types[c].dtype)
            except (TypeError, ValueError):
                out[c] = back
    return out


def _col(g: pd.DataFrame, c: str) -> pd.Series:
    return g[c] if c in g else pd.Series(np.nan, index=g.index)


def interval_text(r) -> str:
    """`1.23x [1.10, 1.40]`: a ratio row in words."""
    return f"{r.ratio:.2f}x [{r.ratio_lo:.2f}, {r.ratio_hi:.2f}]" if not math.isnan(r.ratio) else "-"
