"""Fits shared by the sections: gradient decay summary and least-squares lines."""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import pandas as pd

LOG10_2 = math.log10(2)


def steps(value: float) -> str:
    """A half-life or horizon for prose: 'no decay' when the gradient does not decay."""
    return "no decay" if math.isinf(value) else f"{value:.2g}"


def line_fit(x: np.ndarray, y: np.ndarray) -> Tuple[float, float, float]:
    """Least-squares y = a + b x -> (a, b, R^2); NaNs when there are under 2 distinct x."""
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    ss = ((y - y.mean()) ** 2).sum()
    return float(a), float(b), float(1 - (resid ** 2).sum() / ss) if ss > 0 else 1.0


def decay_summary(profile: pd.DataFrame, fit_start: float, fit_end: float) -> Dict[str, float]:
    """Summary of one gradient profile (rows of one point, condition and layer).

    decay_per_step: slope of log10 grad_norm against distance over the window
    [fit_start, fit_end] x the longest distance; exact zeros (underflow) and non-finite values
    are counted, never fitted. half_life_steps = log10(2) / -decay. Horizons: steps for the
    fitted gradient to fall by 1e3, 1e6, 1e10. ratio_far_near: mean grad at the farthest
    distance over the nearest.
    """
    g = profile.groupby("distance")["grad_norm"].mean().sort_index()
    dmax = int(g.index.max())
    lo, hi = fit_start * dmax, fit_end * dmax
    usable = g[(g > 0) & np.isfinite(g)]
    window = usable[(usable.index >= lo) & (usable.index <= hi)]
    _, slope, r2 = line_fit(window.index.to_numpy(float), np.log10(window.to_numpy(float)))
    near, far = g.iloc[0], g.iloc[-1]
    out = {"decay_per_step": slope, "r2": r2,
           "half_life_steps": LOG10_2 / -slope if slope < 0 else math.inf,
           "fit_window": f"{math.ceil(lo)}..{math.floor(hi)}", "fit_points": len(window),
           "underflow_points": int((g == 0).sum()), "max_distance": dmax,
           "near_grad": near, "ratio_far_near": far / near if near > 0 else math.nan}
    for k in (3, 6, 10):
        out[f"horizon_1e{k}"] = k / -slope if slope < 0 else math.inf
    return out
