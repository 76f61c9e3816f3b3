"""The record store: one Parquet file per measured point, named by its configuration hash.

Files are written atomically (a temp file in the same folder, fsync, then os.replace), so a
point killed mid-write leaves either the old file or none, never a partial one that reads as
data; concurrent writers never clobber each other's points. Only `analysis/` reads the store
as a whole; the sweep only asks whether a point is already done.
"""
from __future__ import annotations

import os
import socket
import time
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
    except Exception:
        return False
    return bool(status) and all(s == "ok" for s in status)


def write_point(path: Path, frame: pd.DataFrame) -> Path:
    """Write one point's records atomically; returns the final path.

    The temp file's name carries host and pid, so `clean_orphans` can tell a dead writer's
    leftover from a live writer's file. The folder is fsynced after the rename, so the new
    name survives a power cut, not only the file's bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


ORPHAN_AGE_S = 24 * 3600  # another host's temp file this old belongs to a dead writer


def clean_orphans(results_dir: str | os.PathLike) -> int:
    """Remove temp files left by writers that died mid-write; returns how many.

    A temp file of this host is an orphan when its pid no longer runs; one of another host
    (a cluster node sharing the store) when it is older than ORPHAN_AGE_S."""
    removed, host = 0, _host()
    for tmp in Path(results_dir).glob(f".*{SUFFIX}.*.tmp"):
        parts = tmp.name.rsplit(".", 4)  # [.<hash>.parquet, host, pid, uid, tmp]
        try:
            mine, pid = parts[1] == host, int(parts[2])
        except (IndexError, ValueError):
            mine, pid = False, -1
        try:
            dead = (mine and not _alive(pid)) or (not mine and time.time() - tmp.stat().st_mtime > ORPHAN_AGE_S)
            if dead:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # its writer finished or another cleaner got there first
            continue
    return removed


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # no dots: the temp name is split on them


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
