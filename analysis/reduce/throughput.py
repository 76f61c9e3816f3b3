"""Throughput records reduced: one row per point (medians, IQR, rates, memory), step-time ratios
at equal configuration with their intervals, the per-step cost fit. Computed once here; the
training-cost and CPU-cost sections and the stored-baseline CI mode read them."""
from __future__ import annotations

from typing import List

import numpy as np
import pandas as pd

from analysis.load import config_keys
from analysis.reduce.fits import line_fit
from analysis.reduce.ratios import ratio_rows

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
        # measured bandwidth (bench/measures/roofline.py, compulsory_bytes)
        p["roofline_ms"] = (p["flops"] / p["calib_flops_per_s"] + p["min_bytes"] / p["calib_bytes_per_s"]) * 1e3
        p["roofline_fraction"] = p["roofline_ms"] / p["median_step_ms"]
        p["bytes_per_min_bytes"] = p["config_hash"].map(steps["bytes"].first()) / p["min_bytes"]
    return p


def by_config(p: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration, its rounds pooled (bench/run/rounds.py): the step times of every
    round concatenated and the medians and rates recomputed over them; `rounds` counts them. For
    tables and figures of single configurations; ratios read the rounds (ratios, paired)."""
    if "measure_round" not in p or p["measure_round"].isna().all():
        return p.assign(rounds=1)
    keys = [c for c in config_keys(p) if c != "measure_round"]
    key = p[keys].apply(lambda row: "|".join("null" if pd.isna(v) else str(v) for v in row), axis=1)
    rows = []
    for _, g in p.groupby(key, sort=False):
        first = g.iloc[0].copy()
        times = np.concatenate(list(g["step_times"]))
        first["step_times"], first["rounds"] = times, len(g)
        first["median_step_ms"] = float(np.median(times))
        first["iqr_step_ms"] = float(np.quantile(times, 0.75) - np.quantile(times, 0.25))
        for c in ("median_forward_ms", "median_backward_ms", "peak_mem_bytes", "calib_flops_per_s", "calib_bytes_per_s",
                  "roofline_ms", "rel_iqr"):  # each round calibrated its own peak and bandwidth: their median
            if c in g:
                first[c] = g[c].median()
        first["noisy"] = bool(g["noisy"].astype(bool).any()) if "noisy" in g else False
        rows.append(first)
    out = pd.DataFrame(rows).reset_index(drop=True)
    step_s = out["median_step_ms"] / 1e3
    out["tokens_per_s"] = out["tokens"] / step_s
    out["achieved_flops_per_s"] = out["flops"] / step_s
    out["fraction_of_peak"] = out["achieved_flops_per_s"] / out["calib_flops_per_s"]
    if "roofline_ms" in out:
        out["roofline_fraction"] = out["roofline_ms"] / out["median_step_ms"]
    return out


def ratios(p: pd.DataFrame, key: str, num, den, label: str) -> pd.DataFrame:
    """Step-time ratio of rows with key == num over key == den, the rest of the configuration
    equal (analysis/reduce/ratios.py: interleaved where the store holds rounds), labelled."""
    j = ratio_rows(p, key, num, den)
    if not j.empty:
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
    return ratio_rows(p, key, num, den, keys)
