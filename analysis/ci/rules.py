"""The rules both CI modes share: fail closed (a base point missing, not ok or non-finite in the
candidate is a named regression), gradients exact, the environment side by side, the verdict line
(docs/architecture.md, "Regression tracking")."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd

from analysis.load import of

GRAD_RTOL = 1e-9
# What decides a timing besides the code (bench.records.environment); printed side by side,
# with what differs marked.
ENV = ["torch_version", "device_name", "threads", "python_version", "cpu_model", "cpu_flags",
       "cpu_capability", "onednn_version", "mkl_version", "cuda_version", "cudnn_version"]




def emit(code: int, text: str, table: pd.DataFrame, out: Optional[str], history: Optional[str]) -> int:
    """A verdict's exit: the text on stdout (stderr for unusable input, exit 2), and where the
    input was usable, the text into `out` and the table appended to the `history` folder. Both
    CI checks (analysis/compare.py, analysis/ci/counts.py) end here."""
    print(text, file=sys.stderr if code == 2 else sys.stdout)
    if code != 2:
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(text)
        if history:
            from analysis.ci.history import append_history  # late: matplotlib only when appending
            print(f"history: appended {append_history(table, Path(history))}", file=sys.stderr)
    return code


def finite_columns() -> dict:
    """measure -> the columns that must be finite (the measure registry's MeasureSpec.finite)."""
    from bench.measures.registry import MEASURES  # late: the registry imports torch
    return {name: spec.finite for name, spec in MEASURES.items()}


def missing_or_bad(base: pd.DataFrame, cand: pd.DataFrame, key: str = "config_hash", name=None) -> List[dict]:
    """Fail closed: every baseline point must be in the candidate, stored `ok`, with finite
    values. A point that is not is a regression, named by its configuration. `key` pairs the
    points: the configuration hash, or (A/B) the configuration without the versions."""
    out = []
    cand_status = cand.groupby(key)["status"].agg(lambda s: sorted(set(s)))
    finite = pd.Series(True, index=cand_status.index)
    for measure, cols in finite_columns().items():  # the values each measure's rows carry
        rows = cand[cand["measure"] == measure]
        for col in (c for c in cols if c in rows):
            ok = rows.groupby(key)[col].agg(lambda v: bool(np.isfinite(v.astype(float)).all()))
            finite.loc[ok.index] &= ok
    for chash, rows in base.groupby(key):
        what = (name or point_name)(rows.iloc[0])
        if chash not in cand_status.index:
            problem = "missing from the candidate"
        elif cand_status[chash] != ["ok"]:
            bad = cand[(cand[key] == chash) & (cand["status"] != "ok")]
            problem = f"status {', '.join(s for s in cand_status[chash] if s != 'ok')}: {bad['error'].iloc[0]}"[:200]
        elif not finite[chash]:
            problem = "non-finite values"
        else:
            continue
        out.append({"metric": f"point {what}", "baseline": np.nan, "candidate": np.nan, "change": np.nan,
                    "threshold": np.nan, "verdict": f"REGRESSION (point {problem})"})
    return out


def point_name(row: pd.Series) -> str:
    """A point's configuration in one line (its hash tells it apart; the rest is for people)."""
    keys = ["measure", "cell", "measure_backend", "hidden_size", "seq_len", "batch_size", "bidirectional"]
    parts = [f"{k}={row[k]}" for k in keys if k in row and pd.notna(row[k])]
    return f"{row['config_hash']} ({' '.join(parts)})"


def gradient_verdicts(base: pd.DataFrame, cand: pd.DataFrame, key: str = "config_hash", name=None) -> List[dict]:
    keys = [key, "condition", "layer", "t"]
    b, c = of(base, "gradients"), of(cand, "gradients")
    j = b.set_index(keys)["grad_norm"].to_frame("b").join(c.set_index(keys)["grad_norm"].to_frame("c"), how="left")
    out = []
    for chash, g in j.groupby(level=key):
        if g["c"].isna().all():
            continue  # not ok or missing in the candidate: missing_or_bad names it
        rel = ((g["c"] - g["b"]).abs() / g["b"].abs().where(g["b"] != 0, 1.0)).max()
        first = b[b[key] == chash].iloc[0]
        out.append({"metric": f"grad_norm {(name or point_name)(first)} (max rel. diff over t)",
                    "baseline": g["b"].median(), "candidate": g["c"].median(), "change": rel,
                    "threshold": GRAD_RTOL, "verdict": "REGRESSION (correctness)" if not rel <= GRAD_RTOL else "ok"})
    return out


def environment(df: pd.DataFrame, keys: List[str] = ENV) -> dict:
    return {k: ", ".join(sorted(df[k].dropna().astype(str).unique())) if k in df else "" for k in keys}


def environment_table(left: pd.DataFrame, right: pd.DataFrame, names: Tuple[str, str],
                      keys: List[str] = ENV) -> List[str]:
    """Markdown rows: each environment key on both sides, `**differs**` where it does."""
    a, b = environment(left, keys), environment(right, keys)
    rows = [f"| | {names[0]} | {names[1]} |", "|---|---|---|"]
    rows += [f"| {k} | {a[k]} | {b[k]} |" + (" **differs**" if a[k] != b[k] else "") for k in keys]
    return rows


def summarise(table: pd.DataFrame, points: str) -> Tuple[int, str]:
    """(exit code, verdict line) of a verdict table."""
    bad = table["verdict"].str.startswith("REGRESSION")
    inconclusive = table["verdict"].str.startswith(("inconclusive", "skipped"))
    judged = f"{int((~inconclusive).sum())} of {len(table)} metrics judged, {int(inconclusive.sum())} inconclusive"
    summary = f"{int(bad.sum())} regression(s); {judged}; {points}" if bad.any() else f"no regression; {judged}; {points}"
    return (1 if bad.any() else 0), f"**Verdict: {summary}.**"


def calibration(df: pd.DataFrame) -> float:
    """The run's median calibration-matmul rate (FLOP/s): the machine's state during the run."""
    tp = of(df, "throughput")
    return float(tp.groupby("config_hash")["calib_flops_per_s"].first().median()) if not tp.empty else np.nan
