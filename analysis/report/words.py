"""Configurations in words: the names the tables and claims use for keys and rows."""
from __future__ import annotations

from typing import List

import numpy as np
import pandas as pd

from analysis.load import group_keys

NAMES = {"forget_bias": "forget bias", "hidden_size": "hidden", "num_layers": "layers", "seq_len": "T",
         "batch_size": "batch", "input_size": "input", "measure_backend": "asked for", "backend": "ran on",
         "scan": "scan", "threads": "threads"}


def label(row, keys: list) -> str:
    """A configuration's name in prose: the cell and whatever else tells it apart."""
    extra = [f"fb {row['forget_bias']:g}" if k == "forget_bias" else f"{k}={row[k]}"
             for k in keys if k != "cell" and not pd.isna(row[k])]
    return row["cell"] + (f" ({', '.join(extra)})" if extra else "")


def distinguishing(t: pd.DataFrame, exclude=("seq_len",)) -> list:
    return [k for k in group_keys(t, ["cell", "forget_bias"]) if k not in exclude
            and (k in ("cell", "forget_bias") or t[k].astype(str).nunique() > 1)]


def describe(df: pd.DataFrame, keys: List[str], names: dict = None) -> pd.Series:
    """Each row's configuration in words, from those of `keys` that vary in `df` (the first key,
    the cell, always): e.g. 'lstm, hidden 128, bidirectional'. The digest tables' first column."""
    names = names or {}
    shown = [k for k in keys if k in df.columns and (k == keys[0] or df[k].astype(str).nunique() > 1)]

    def one(row) -> str:
        parts = []
        for k in shown:
            v = row[k]
            if v is None or (isinstance(v, float) and pd.isna(v)):
                continue
            if isinstance(v, (bool, np.bool_)):
                parts.append(names.get(k, k) if v else "")
            elif k == keys[0]:
                parts.append(str(v))
            else:
                parts.append(f"{names.get(k, k)} {v:g}" if isinstance(v, float) else f"{names.get(k, k)} {v}")
        return ", ".join(p for p in parts if p)
    return df.apply(one, axis=1)
