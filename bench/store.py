"""The record store: one Parquet file per measured point, named by its configuration hash.

Files are written atomically (a temp file in the same folder, fsync, then os.replace), so a
point killed mid-write leaves either the old file or none, never a partial one that reads as
data; concurrent writers never clobber each other's points. Only `analysis/` reads the store
as a whole; the sweep only asks whether a point is already done.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

SUFFIX = ".parquet"


def point_path(results_dir: str | os.PathLike, chash: str) -> Path:
    return Path(results_dir) / f"{chash}{SUFFIX}"


def is_done(path: Path) -> bool:
    """True when the point is stored and every row has status=ok (those are skipped).

    Only the status column is read. A file that cannot be read is not done: it is recomputed.
    """
    if not path.exists():
        return False
    try:
        status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    except Exception:  # noqa: BLE001 - any unreadable file is simply not done
        return False
    return bool(status) and all(s == "ok" for s in status)


def write_point(path: Path, frame: pd.DataFrame) -> Path:
    """Write one point's records atomically; returns the final path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
