"""Fits shared by the sections: gradient decay per sample, intervals, least-squares lines.

The decay of a configuration is the mean over samples (and seeds) of each sample's own slope
of log10 ||dL/dx_t|| against distance: that is the slope of the geometric-mean profile, the
typical sample, not the few slow samples that dominate an arithmetic batch mean. Its interval
is a percentile bootstrap that resamples seeds, then samples within each seed.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd
from scipy.stats import binomtest

LOG10_2 = math.log10(2)
BOOTSTRAP = 2000    # resamples
CONFIDENCE = 0.95


def line_fit(x: np.ndarray, y: np.ndarray) -> Tuple[float, float, float]:
    """Least-squares y = a + b x -> (a, b, R^2); NaNs when there are under 2 distinct x."""
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    ss = ((y - y.mean()) ** 2).sum()
    return float(a), float(b), float(1 - (resid ** 2).sum() / ss) if ss > 0 else 1.0


def sample_slopes(distance: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Per-sample least-squares slopes: distance (n,), logs (n, B) -> (B,).
    Non-finite entries (underflow: -inf) are left out of that sample's fit."""
    ok = np.isfinite(logs)
    x = np.where(ok, distance[:, None], 0.0)
    y = np.where(ok, logs, 0.0)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x.sum(0) / n, y.sum(0) / n
        sxy = (ok * (x - mx) * (y - my)).sum(0)
        sxx = (ok * (x - mx) ** 2).sum(0)
        return np.where((n >= 2) & (sxx > 0), sxy / sxx, np.nan)


def decay_summary(profile: pd.DataFrame, fit_start: float, fit_end: float) -> Dict:
    """Summary of one gradient profile (rows of one point, condition, loss and layer).

    decay_per_step: mean over samples of each sample's slope of log10 ||dL/dx_t|| against
    distance over [fit_start, fit_end] x the longest distance (`slopes` keeps them for the
    interval). decay_batch_mean: the slope of log10 of the batch-mean norm, labelled, not used
    for claims. r2: of the geometric-mean profile's line. Underflow (exact zeros) is counted,
    never fitted. ratio_far_near: geometric-mean gradient at the farthest distance over the nearest.
    zero_profile: the gradient is exactly zero at every distance (a saturated or dead model after
    a training that blew up): nothing decays, there is no half-life to give.
    """
    p = profile.sort_values("t")
    dist = p["distance"].to_numpy(float)
    dmax = int(dist.max())
    lo, hi = fit_start * dmax, fit_end * dmax
    win = (dist >= lo) & (dist <= hi)
    if "log10_grad_norm_samples" in p:
        logs = np.vstack(p["log10_grad_norm_samples"].to_numpy())[win]
    else:  # records from before per-sample norms: one "sample", the stored profile
        with np.errstate(divide="ignore"):
            logs = np.log10(p["grad_norm"].to_numpy(float))[win, None]
    slopes = sample_slopes(dist[win], logs)
    slopes = slopes[np.isfinite(slopes)]
    g = p.groupby("distance")["grad_norm"].mean().sort_index()
    usable = g[(g > 0) & np.isfinite(g)]
    window = usable[(usable.index >= lo) & (usable.index <= hi)]
    _, _, r2 = line_fit(window.index.to_numpy(float), np.log10(window.to_numpy(float)))
    batch_slope = math.nan
    if "grad_norm_batch_mean" in p:
        bm = p.groupby("distance")["grad_norm_batch_mean"].mean()
        bm = bm[(bm > 0) & (bm.index >= lo) & (bm.index <= hi)]
        batch_slope = line_fit(bm.index.to_numpy(float), np.log10(bm.to_numpy(float)))[1]
    near, far = g.iloc[0], g.iloc[-1]
    return {"decay_per_step": float(slopes.mean()) if len(slopes) else math.nan,
            "slopes": slopes, "r2": r2, "decay_batch_mean": batch_slope,
            "fit_window": f"{math.ceil(lo)}..{math.floor(hi)}", "fit_points": int(win.sum()),
            "underflow_points": int((g == 0).sum()), "zero_profile": bool((g == 0).all()), "max_distance": dmax,
            "near_grad": near, "ratio_far_near": far / near if near > 0 else math.nan}


def bootstrap_mean(groups: List[np.ndarray], seed: int = 0) -> Tuple[float, float, float]:
    """(mean, lo, hi): the pooled mean of per-sample values and its percentile interval from a
    two-level bootstrap (resample the groups, i.e. seeds, then the samples within each)."""
    groups = [g[np.isfinite(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        return math.nan, math.nan, math.nan
    mean = float(np.concatenate(groups).mean())
    rng = np.random.default_rng(seed)
    k = len(groups)
    picks = rng.integers(0, k, (BOOTSTRAP, k))                       # seeds, with replacement
    if len({len(g) for g in groups}) == 1:                            # the usual case: vectorised
        arr, n = np.stack(groups), len(groups[0])
        idx = rng.integers(0, n, (BOOTSTRAP, k, n))                   # samples within each seed
        means = arr[picks[..., None], idx].mean(axis=(1, 2))
    else:
        means = np.array([np.concatenate([rng.choice(groups[j], len(groups[j])) for j in row]).mean()
                          for row in picks])
    a = (1 - CONFIDENCE) / 2
    return mean, float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def half_life(decay: float, lo: float, hi: float, longest: float, zero: bool = False) -> Dict:
    """Half-life (steps) from a decay per step and its interval [lo, hi] (log10 per step).

    Where the interval reaches zero decay the half-life has no upper bound: it is reported as
    a lower bound, `> N` steps (N from the fastest decay in the interval, or the longest
    distance measured when even that does not decay), never as 'no decay' or inf. Where the
    whole interval is growth (exploding gradients), the doubling distance is given instead.
    A gradient that is identically zero (`zero`), or a decay that could not be fitted (NaN: no
    finite, non-zero norms), has none: said so, never a bound."""
    if zero or not np.isfinite([decay, lo, hi]).all():
        why = "the gradient is identically zero" if zero else "no finite gradient to fit"
        return {"half_life_steps": math.nan, "half_life_lo": math.nan, "half_life_hi": math.nan,
                "half_life": f"none: {why}"}
    if lo > 0:
        d, d_lo, d_hi = LOG10_2 / decay, LOG10_2 / hi, LOG10_2 / lo
        return {"half_life_steps": math.nan, "half_life_lo": math.inf, "half_life_hi": math.inf,
                "half_life": f"grows: x2 every {d:.3g} [{d_lo:.3g}, {d_hi:.3g}]"}
    if hi < 0:
        hl, hl_lo, hl_hi = LOG10_2 / -decay, LOG10_2 / -lo, LOG10_2 / -hi
        return {"half_life_steps": hl, "half_life_lo": hl_lo, "half_life_hi": hl_hi,
                "half_life": f"{hl:.3g} [{hl_lo:.3g}, {hl_hi:.3g}]"}
    bound = LOG10_2 / -lo if lo < 0 else longest
    return {"half_life_steps": math.nan, "half_life_lo": bound, "half_life_hi": math.inf,
            "half_life": f"> {bound:.3g}"}


def wilson(successes: int, n: int) -> Tuple[float, float]:
    """95% Wilson score interval of a fraction (scipy)."""
    if n == 0:
        return math.nan, math.nan
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def succeeds_where_other_does_not(a_lo: float, a_hi: float, b_lo: float, b_hi: float):
    """The claim "a succeeds where b does not", from the Wilson intervals of two success fractions:
    True where a's lies wholly above b's; False where b's lies wholly above 1/2 (b succeeds in most
    seeds) or a's wholly below; None otherwise (cannot tell)."""
    return True if a_lo > b_hi else False if (b_lo > 0.5 or a_hi < 0.5) else None


def fraction(successes: int, n: int) -> str:
    lo, hi = wilson(successes, n)
    return f"{successes}/{n} [{lo:.2f}, {hi:.2f}]"
