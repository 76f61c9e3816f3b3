"""Read a record store into one DataFrame. A file that cannot be read, or whose columns are not
a record's (`record_problem`), is named and left out; a strict reader (the CI's baseline) refuses
the store instead."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.config.schema import MEASURE_DEFAULTS, MODEL_DEFAULTS

CONFIG_COLUMNS = ["cell", "input_size", "hidden_size", "num_layers", "bidirectional", "forget_bias",
                  "init", "gain", "nonlinearity", "chrono_tmax", "param_budget", "scan", "path", "chunk",
                  "forget_gate", "seq_len", "batch_size", "device",
                  "dtype", "seed"]

# What every record file holds (bench/run/records.py to_frame writes them): the configuration and
# the provenance on every row, each of one kind. `number` takes ints, floats and an all-empty
# column; `int` must be integers (a float `threads` would read as 2.0 and differ from 2).
KINDS = {"int": pa.types.is_integer, "bool": pa.types.is_boolean,
         "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
         "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)}
RECORD_COLUMNS = {
    **dict.fromkeys(["input_size", "hidden_size", "num_layers", "seq_len", "batch_size", "seed", "threads"], "int"),
    **dict.fromkeys(["cell", "device", "dtype", "torch_version", "device_name", "backend", "git_sha",
                     "timestamp", "config_hash", "status", "error", "measure"], "text"),
    "bidirectional": "bool", "forget_bias": "number"}
# What a measure's rows hold when the point is ok (DESIGN, "Records"); a long_range file also holds
# its gradient profiles as gradients rows, so these are numbers (a float column there), not ints.
MEASURE_COLUMNS = {
    "gradients": {"condition": "text", **dict.fromkeys(["t", "distance", "grad_norm"], "number")},
    "throughput": {"phase": "text", **dict.fromkeys(["rep", "time_ms", "flops", "peak_mem_bytes"], "number")},
    "long_range": {"task": "text", **dict.fromkeys(["step", "train_loss", "test_loss", "elapsed_s"], "number")},
}


class StoreError(Exception):
    """The store is missing, empty or holds nothing readable; the message says what to do."""


def record_files(store: Path) -> List[Path]:
    return sorted(p for p in Path(store).glob("*.parquet") if not p.name.startswith("."))


def record_problem(table: pa.Table) -> Optional[str]:
    """What makes a table not a record file (a missing column, a column of another kind, a row
    without its status, hash or measure), or None."""
    def wrong(columns: dict) -> Optional[str]:
        for col, kind in columns.items():
            if col not in table.column_names:
                return f"no column `{col}`"
            if not KINDS[kind](table.schema.field(col).type):
                return f"column `{col}` is {table.schema.field(col).type}, not {kind}"
        return None

    problem = wrong(RECORD_COLUMNS)
    if problem:
        return problem
    for col in ("status", "config_hash", "measure"):
        if table.column(col).null_count:
            return f"rows without a `{col}`"
    ok = [m for m, s in zip(table.column("measure").to_pylist(), table.column("status").to_pylist()) if s == "ok"]
    for measure in sorted(set(ok) & set(MEASURE_COLUMNS)):
        problem = wrong(MEASURE_COLUMNS[measure])
        if problem:
            return f"{problem} for its {measure} rows"
    return None


def read_records(store: Path) -> Tuple[List[pd.DataFrame], List[str]]:
    """(the frames of the usable files, one line per unusable file: its name and why)."""
    frames, bad = [], []
    for path in record_files(store):
        try:
            table = pq.read_table(path)
        except Exception as exc:  # an unreadable file (truncated, empty) is named
            bad.append(f"{path} (unreadable: {type(exc).__name__}: {exc})"[:300])
            continue
        problem = record_problem(table)
        if problem:
            bad.append(f"{path} (not a record file: {problem})")
            continue
        frames.append(table.to_pandas())
    return frames, bad


def load_store(store: str | Path, warn: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
               strict: bool = False, hint: str = "`make bench`") -> pd.DataFrame:
    """The store's records. An unusable file is named by `warn` and left out; with `strict`
    (a baseline, which must hold every point it was recorded with) it is a StoreError. `hint`:
    the command that makes this store, for the messages."""
    store = Path(store)
    if not store.is_dir():
        raise StoreError(f"no record store at {store}: run {hint} first")
    frames, bad = read_records(store)
    if bad and strict:
        raise StoreError(f"{len(bad)} record file(s) of {store} cannot be used: " + "; ".join(bad)
                         + f"; restore them (e.g. `git checkout {store}`) or re-record the store with {hint}")
    for line in bad:
        warn(f"warning: skipping record file {line}")
    if not frames:
        what = f"only unusable files ({len(bad)})" if bad else "no record files"
        raise StoreError(f"the record store {store} holds {what}: run {hint} first")
    return with_defaults(pd.concat(frames, ignore_index=True), store)


def with_defaults(df: pd.DataFrame, store: Path) -> pd.DataFrame:
    """Keys added after some records were stored, filled with their defaults."""
    for key, default in MODEL_DEFAULTS.items():  # points stored before the key existed
        if key not in df.columns:
            df[key] = default
        elif default is not None:
            df[key] = df[key].where(df[key].notna(), default)
    if "scan" in df.columns:  # diagonal-cell points stored before model.path: the path scan names
        named = df["scan"].notna() & df["path"].isna()
        df.loc[named, "path"] = np.where(df.loc[named, "scan"].astype(str).str.lower() == "true", "scan", "loop")
    for col in ("measure", "status"):
        if col not in df.columns:
            raise StoreError(f"the record store {store} has no `{col}` column: not an rnn-bench store")
    for measure, keys in MEASURE_DEFAULTS.items():  # measure keys added later, on that measure's rows
        rows = df["measure"] == measure
        for key, default in keys.items():
            if key not in df.columns:
                df[key] = None
            df.loc[rows & df[key].isna(), key] = default
    return df


def config_keys(df: pd.DataFrame) -> List[str]:
    """Every configuration column in `df`: the DESIGN's keys, the measure's own settings
    (`measure_*`, its version among them), the requested threads and the torch version."""
    extra = ("threads_requested", "torch_version")
    return [c for c in df.columns if c in CONFIG_COLUMNS or c.startswith("measure_") or c in extra]


def group_keys(df: pd.DataFrame, base: List[str], exclude: Tuple[str, ...] = ("seed",)) -> List[str]:
    """`base` plus every other configuration key that varies in `df`: rows that differ in any
    setting (device, dtype, batch size, the training recipe, ...) are never pooled."""
    varying = [c for c in config_keys(df) if c not in base and c not in exclude
               and df[c].astype(str).nunique() > 1]
    return [k for k in base if k in df.columns] + varying


def version_warnings(df: pd.DataFrame) -> List[str]:
    """One line per measure whose stored points come from more than one measure version or
    torch version: their numbers may not be comparable."""
    out = []
    # long_range stores its gradient profiles as measure=gradients rows: they carry long_range's
    # version, so they are grouped with the measure that made them
    origin = df["measure"].where(df["measure_task"].isna(), "long_range") if "measure_task" in df else df["measure"]
    for measure, rows in df.groupby(origin):
        for col, what in (("measure_version", "measure versions"), ("torch_version", "torch versions")):
            if col in rows:
                seen = sorted({f"{v:g}" if isinstance(v, float) else str(v) for v in rows[col].dropna()})
                if len(seen) > 1 or (col == "measure_version" and rows[col].isna().any() and seen):
                    seen += ["unversioned"] if rows[col].isna().any() else []
                    out.append(f"the store mixes {what} for {measure}: {', '.join(seen)}; "
                               "re-run the older points (force=true) or report them apart")
    timed = df[df["measure"] == "throughput"]
    if "slurm_job_id" in timed and len(timed):
        in_job = timed["slurm_job_id"].fillna("").astype(str).str.len() > 0
        if in_job.any() and not in_job.all():
            out.append(f"the store mixes throughput points timed in SLURM jobs ({timed.loc[in_job, 'config_hash'].nunique()}) "
                       f"and outside ({timed.loc[~in_job, 'config_hash'].nunique()}): their clocks ran on "
                       "different machines and loads; report them apart")
    return out


def of(df: pd.DataFrame, measure: str, ok_only: bool = True) -> pd.DataFrame:
    """Rows of one measure (status=ok unless asked); other measures' all-empty columns dropped,
    the configuration columns kept (forget_bias is empty for every cell but the LSTM family)."""
    rows = df[df["measure"] == measure]
    if ok_only:
        rows = rows[rows["status"] == "ok"]
    empty = [c for c in rows.columns if c not in CONFIG_COLUMNS and rows[c].isna().all()]
    return rows.drop(columns=empty).copy()


def as_text(values: pd.Series) -> pd.Series:
    """A configuration column as text that compares equal across points: NaN and None as "null"
    (pandas 3 keeps NaN missing through astype(str), and NaN never equals NaN)."""
    return values.map(lambda v: "null" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
