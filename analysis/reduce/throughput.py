"""Throughput records reduced: one row per point (medians, IQR, rates, memory), step-time ratios
at equal configuration with their intervals, the per-step cost fit. Computed once here; the
training-cost and CPU-cost sections and the stored-baseline CI mode read them."""
from __future__ import annotations

from typing import List

import numpy as np
import pandas as pd

from analysis.load import config_keys
from analysis.reduce.fits import line_fit

ROOFLINE = ["min_bytes", "calib_bytes_per_s", "recurrence_kernel", "bytes_source"]
POINT = ["cell", "measure_backend", "backend", "device", "device_name", "dtype", "measure_tf32",
         "input_size", "hidden_size", "num_layers", "bidirectional", "seq_len", "batch_size", "threads"]


def points(tp: pd.DataFrame) -> pd.DataFrame:
    """One row per point: medians and IQR per phase and the derived rates."""
    tp = tp.copy()
    for c in POINT:
        if c not in tp.columns:
            tp[c] = np.nan
    wide = tp.pivot_table(index=["config_hash"], columns="phase", values="time_ms",
                          aggfunc=["median", lambda s: s.quantile(0.75) - s.quantile(0.25)])
    wide.columns = [f"{'median' if a == 'median' else 'iqr'}_{p}_ms" for a, p in wide.columns]
    for c in ("peak_mem_source", "flops_source"):
        if c not in tp.columns:  # records from before measure version 2
            tp[c] = "saved-tensor model" if c == "peak_mem_source" else "3x forward"
    cfg = [c for c in config_keys(tp) if c not in POINT]
    cols = POINT + cfg + ["flops", "tokens", "params", "peak_mem_bytes", "peak_mem_source", "flops_source",
                          "calib_flops_per_s", "rel_iqr", "noisy", "attempt", "seed"]
    cols += [c for c in ROOFLINE if c in tp.columns]  # points from before the roofline have none
    first = tp.groupby("config_hash")[list(dict.fromkeys(cols))].first()
    steps = tp[tp["phase"] == "step"].groupby("config_hash")
    p = first.join(wide).reset_index()
    p["flops"] = p["config_hash"].map(steps["flops"].first())
    p["step_times"] = p["config_hash"].map(steps["time_ms"].apply(np.asarray))
    step_s = p["median_step_ms"] / 1e3
    p["tokens_per_s"] = p["tokens"] / step_s
    p["achieved_flops_per_s"] = p["flops"] / step_s
    p["fraction_of_peak"] = p["achieved_flops_per_s"] / p["calib_flops_per_s"]
    if {"min_bytes", "calib_bytes_per_s"} <= set(p.columns):
        # the roofline bound: the matmuls at the measured peak, then the compulsory bytes at the
        # measured bandwidth (bench/measures/throughput.py, compulsory_bytes)
        p["roofline_ms"] = (p["flops"] / p["calib_flops_per_s"] + p["min_bytes"] / p["calib_bytes_per_s"]) * 1e3
        p["roofline_fraction"] = p["roofline_ms"] / p["median_step_ms"]
        p["bytes_per_min_bytes"] = p["config_hash"].map(steps["bytes"].first()) / p["min_bytes"]
    return p


def ratio_interval(num: np.ndarray, den: np.ndarray, n: int = 2000, seed: int = 0):
    """95% percentile-bootstrap interval of median(num) / median(den) over repetitions."""
    rng = np.random.default_rng(seed)
    a = np.median(num[rng.integers(0, len(num), (n, len(num)))], axis=1)
    b = np.median(den[rng.integers(0, len(den), (n, len(den)))], axis=1)
    return tuple(np.quantile(a / b, [0.025, 0.975]))


def ratios(p: pd.DataFrame, key: str, num, den, label: str) -> pd.DataFrame:
    """Step-time ratio of rows with key == num over key == den, the rest of the config equal,
    with its bootstrap interval over repetitions [ratio_lo, ratio_hi]."""
    # every configuration key but the one compared (and forget_bias, which only the LSTM family has)
    skip = {key, "backend", "device_name", "threads", "forget_bias"}
    rest = [c for c in POINT + ["seed"] if c not in skip]
    rest += [c for c in config_keys(p) if c not in rest and c not in skip]
    cols = {"median_step_ms": "", "rel_iqr": "_rel_iqr", "noisy": "_noisy", "step_times": "_times"}
    a = p[p[key] == num].set_index(rest)[list(cols)].rename(columns=lambda c: "num" + cols[c])
    b = p[p[key] == den].set_index(rest)[list(cols)].rename(columns=lambda c: "den" + cols[c])
    j = a.join(b, how="inner").reset_index()
    j["ratio"] = j["num"] / j["den"]
    ci = [ratio_interval(a, b) for a, b in zip(j["num_times"], j["den_times"])]
    j["ratio_lo"] = [c[0] for c in ci] if ci else []
    j["ratio_hi"] = [c[1] for c in ci] if ci else []
    j["rel_spread"] = j["num_rel_iqr"] + j["den_rel_iqr"]  # the ratio's own relative spread
    j["ratio_kind"] = label
    return j


def cost_fit(p: pd.DataFrame) -> pd.DataFrame:
    keys = ["cell", "measure_backend", "hidden_size", "batch_size", "num_layers", "bidirectional", "dtype"]
    out = []
    for k, g in p.groupby(keys, dropna=False):
        if g["seq_len"].nunique() < 3:
            continue
        a, b, r2 = line_fit(g["seq_len"].to_numpy(float), g["median_step_ms"].to_numpy(float))
        out.append({**dict(zip(keys, k)), "a_ms": a, "b_ms_per_step": b, "r2": r2,
                    "seq_lens": f"{g['seq_len'].min()}..{g['seq_len'].max()}"})
    return pd.DataFrame(out)


def paired(p: pd.DataFrame, key: str, num, den, keys: List[str]) -> pd.DataFrame:
    """Rows of p with key == num against key == den, all of `keys` equal: ratio and interval."""
    a = p[p[key] == num].set_index(keys)
    b = p[p[key] == den].set_index(keys)
    common = a.index.intersection(b.index)
    rows = []
    for k in common:
        ta, tb = a.loc[[k], "step_times"].iloc[0], b.loc[[k], "step_times"].iloc[0]
        lo, hi = ratio_interval(ta, tb)
        rows.append({**dict(zip(keys, k if isinstance(k, tuple) else (k,))),
                     "num_ms": float(np.median(ta)), "den_ms": float(np.median(tb)),
                     "ratio": float(np.median(ta) / np.median(tb)), "ratio_lo": lo, "ratio_hi": hi})
    return pd.DataFrame(rows)
