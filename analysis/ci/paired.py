"""The A/B verdict: head against base from the interleaved rounds of `bench.ab`.

Each round holds one run of each side, close together in time and in alternating order, so the
machine's state is shared within a round and differs between rounds. The change of a point's step
time is therefore judged on paired rounds:

    ratio = median over rounds k of median(head_k) / median(base_k)

with a 95% percentile interval from a two-level bootstrap: rounds are resampled, and within each
the repetitions of both sides (so a round measured with few or scattered repetitions counts for
what it holds). The median over rounds, not the mean: on a shared machine a co-tenant's burst
slows one side of one round by up to 50% (measured), and a mean would carry that into the
estimate; a real slowdown is in every round. A regression is an interval wholly above 1 + threshold; faster, wholly below
1 - threshold; ok, wholly below 1 + threshold; anything else is inconclusive (the interval
crosses the threshold: the machine was too noisy to tell). Raw times are compared, not the
step/matmul ratio of the stored-baseline mode: both sides share the machine within a round, and a
torch build whose matmul is slower is a change to be seen, not divided out.

Points are paired by their configuration without the torch and measure versions, so that
`--base-python` (another torch) pairs the same points; what differs is printed as environment.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from analysis.load import StoreError, config_keys, load_store, of
from analysis.reduce.ratios import interleaved_ratio

THRESHOLD = 0.05  # set from the A/B measurements in docs/architecture.md, "Regression tracking"
UNPAIRED = ("torch_version", "measure_version")


def judge(ratio: float, lo: float, hi: float, threshold: float = THRESHOLD) -> str:
    if not np.isfinite([ratio, lo, hi]).all():
        return "REGRESSION (no finite times)"
    if lo > 1 + threshold:
        return "REGRESSION"
    if hi < 1 - threshold:
        return "faster"
    if hi <= 1 + threshold:
        return "ok"
    return "inconclusive: interval crosses the threshold"


def pair_keys(sides: List[pd.DataFrame]) -> List[str]:
    """The configuration columns all sides share, without the versions (they are compared as
    environment): a key that only one side knows (added since base) cannot pair points."""
    common = set.intersection(*(set(config_keys(df)) for df in sides))
    return sorted(c for c in common if c not in UNPAIRED)


def _text(value) -> str:
    """One configuration value as text, alike on both sides (8 and 8.0, None and NaN agree)."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def add_pair_key(df: pd.DataFrame, keys: List[str]) -> pd.DataFrame:
    """A `pair_key` column: hash of the shared configuration, the same on both sides."""
    df = df.copy()
    blob = df[keys + ["measure"]].apply(lambda row: "|".join(_text(v) for v in row), axis=1)
    df["pair_key"] = blob.map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:16])
    return df


def load_ab(directory: Path) -> Tuple[dict, Dict[str, List[pd.DataFrame]]]:
    """(ab.json, {side: [round stores]}) of a `bench.ab` run; StoreError when incomplete."""
    directory = Path(directory)
    meta_path = directory / "ab.json"
    if not meta_path.exists():
        raise StoreError(f"no A/B run in {directory} (ab.json missing): run `make ci-bench BASE=<ref>`; "
                         "an A/B run that stopped part-way writes no ab.json")
    meta = read_meta(meta_path)
    # base's rounds are the reference, as a stored baseline is: an unusable file refuses the verdict
    sides = {s: [load_store(directory / s / f"r{k}", strict=s == "base", hint="`make ci-bench BASE=<ref>`")
                 for k in range(1, meta["rounds"] + 1)] for s in ("base", "head")}
    keys = pair_keys([df for rounds in sides.values() for df in rounds])
    return meta, {s: [add_pair_key(df, keys) for df in rounds] for s, rounds in sides.items()}


def read_meta(path: Path) -> dict:
    """ab.json of a `bench.ab` run; StoreError (exit 2: unusable input) naming the file when it
    is not JSON or lacks what the verdict reads."""
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise TypeError("not a JSON object")
        for key, kind in (("rounds", int), ("base", str), ("head", str), ("refused", list)):
            if key not in meta and key != "refused":
                raise KeyError(f"no `{key}`")
            if key in meta and not isinstance(meta[key], kind):
                raise TypeError(f"`{key}` is not {kind.__name__}")
        if meta["rounds"] < 1:
            raise ValueError(f"rounds={meta['rounds']}")
        if not all(isinstance(r, dict) and {"side", "point"} <= set(r) for r in meta.get("refused", [])):
            raise TypeError("`refused` entries need `side` and `point`")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"{path} cannot be used ({type(exc).__name__}: {exc}): re-run "
                         "`make ci-bench BASE=<ref>`") from exc
    return meta


def label(row: pd.Series) -> str:
    """A point in words, without hashes (they differ between torch builds)."""
    keys = [("measure", ""), ("cell", ""), ("measure_backend", "backend="), ("hidden_size", "H="), ("seq_len", "T="),
            ("batch_size", "B=")]
    parts = [f"{p}{row[k]}" for k, p in keys if k in row and pd.notna(row[k])]
    bi = row.get("bidirectional")
    return " ".join(parts) + (" bi" if pd.notna(bi) and bool(bi) else "")


def step_times(df: pd.DataFrame) -> Dict[str, np.ndarray]:
    tp = of(df, "throughput")
    if tp.empty:
        return {}
    steps = tp[tp["phase"] == "step"]
    return {k: g["time_ms"].to_numpy(float) for k, g in steps.groupby("pair_key")}


def timing_verdicts(sides: Dict[str, List[pd.DataFrame]], threshold: float = THRESHOLD) -> List[dict]:
    """One row per timed point of base: the paired-round ratio, its interval, the verdict."""
    base = [step_times(df) for df in sides["base"]]
    head = [step_times(df) for df in sides["head"]]
    names = {}
    for df in sides["base"]:
        tp = of(df, "throughput")
        names.update({k: label(g.iloc[0]) for k, g in tp.groupby("pair_key")})
    out = []
    for key in sorted(names, key=names.get):
        pairs = [(b[key], h[key]) for b, h in zip(base, head) if key in b and key in h]
        if len(pairs) < len(base):
            # a base point without head times is named by the fail-closed check; one that the
            # base itself failed to measure in some round is judged on the rounds that have it
            if not any(key in h for h in head):
                continue
        ratio, lo, hi = interleaved_ratio(pairs)
        out.append({"metric": f"step time {names[key].removeprefix('throughput ')}",
                    "base_ms": np.median(np.concatenate([p[0] for p in pairs])),
                    "head_ms": np.median(np.concatenate([p[1] for p in pairs])), "ratio": ratio,
                    "ratio_lo": lo, "ratio_hi": hi, "rounds": len(pairs), "threshold": threshold,
                    "verdict": judge(ratio, lo, hi, threshold)})
    return out


def new_points(sides: Dict[str, List[pd.DataFrame]]) -> List[str]:
    """Head points that base does not have (a cell or point added since): listed, not judged."""
    base = set().union(*(set(df["pair_key"]) for df in sides["base"]))
    head = pd.concat(sides["head"], ignore_index=True)
    return sorted({label(r) for _, r in head[~head["pair_key"].isin(base)].iterrows()})
