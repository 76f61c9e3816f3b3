"""The record store: one Parquet file per measured point, named by its configuration hash.

Files are written atomically (a temp file in the same folder, fsync, then os.replace), so a
point killed mid-write leaves either the old file or none, never a partial one that reads as
data; concurrent writers never clobber each other's points. The writer holds an exclusive lock
(`fcntl.flock`) on its temp file from its creation to the rename; the kernel drops it when the
writer dies, so `clean_orphans` removes only temp files no live writer holds, whatever PID
namespace (container) or process the writer ran in: no pid is compared. Only `analysis/` reads
the store as a whole; the sweep only asks whether a point is already done.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
import uuid
from pathlib import Path
from typing import IO, Optional, Tuple

import pandas as pd
import pyarrow.parquet as pq

from bench.config.errors import ConfigError

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
    """Write one point's records atomically; returns the final path. Raises OSError (a full
    disk, a read-only folder, ...) with the temp file removed.

    The temp file's name carries host and pid (for people, and for the age rule of another
    host's files); it is locked while it exists. The folder is fsynced after the rename, so the
    new name survives a power cut, not only the file's bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh, tmp = _locked_temp(path)
    try:
        frame.to_parquet(fh, index=False)
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():  # a failed write: the lock is still ours, nobody else removes it
            tmp.unlink()
        fh.close()        # releases the lock
    return path


def _locked_temp(path: Path) -> Tuple[IO[bytes], Path]:
    """A new temp file beside `path`, open and exclusively locked. A cleaner that took the file
    between its creation and the lock has unlinked it (no links left): then another is made."""
    for _ in range(5):
        tmp = path.with_name(f".{path.name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fh = open(tmp, "xb")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if os.fstat(fh.fileno()).st_nlink > 0:
            return fh, tmp
        fh.close()
    raise OSError(errno.EAGAIN, f"could not hold a temp file beside {path}")


def os_error(exc: BaseException) -> str:
    """An OS error in one line without the temp file's name: `No space left on device (ENOSPC)`."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return f"{type(exc).__name__}: {exc}"


def write_problem(results_dir: str | os.PathLike) -> Optional[str]:
    """Why records cannot be written to `results_dir` (created if missing), or None: a probe
    file is created, written, synced and removed there, as a record would be."""
    folder = Path(results_dir)
    if folder.exists() and not folder.is_dir():
        return f"results_dir={results_dir}: cannot write there: it is a file, not a folder"
    probe = folder / f".write-probe.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb") as fh:
            fh.write(b"rnn-bench: can this folder hold a record?\n" * 100)
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        try:
            probe.unlink()
        except OSError:
            pass
        return f"results_dir={results_dir}: cannot write there: {os_error(exc)}"
    return None


def check_writable(results_dir: str | os.PathLike) -> None:
    """ConfigError (one line: the folder and the OS error) unless `results_dir` can be written."""
    problem = write_problem(results_dir)
    if problem:
        raise ConfigError(problem)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


ORPHAN_AGE_S = 24 * 3600  # another host's unlocked temp file this old belongs to a dead writer


def clean_orphans(results_dir: str | os.PathLike) -> int:
    """Remove temp files left by writers that died mid-write; returns how many.

    A temp file is an orphan when no process holds its lock (`write_point` holds it until the
    rename; the kernel drops it with the process). Another host's file must also be older than
    ORPHAN_AGE_S: on a shared filesystem without a lock service a lock may not reach this host."""
    removed = 0
    for tmp in Path(results_dir).glob(f".*{SUFFIX}.*.tmp"):
        parts = tmp.name.rsplit(".", 4)  # [.<hash>.parquet, host, pid, uid, tmp]
        mine = len(parts) == 5 and parts[1] == _host()
        try:
            with open(tmp, "rb") as fh:
                if not _unlocked(fh) or (not mine and time.time() - os.fstat(fh.fileno()).st_mtime < ORPHAN_AGE_S):
                    continue
                if os.stat(tmp).st_ino == os.fstat(fh.fileno()).st_ino:  # still the file we hold
                    tmp.unlink()
                    removed += 1
        except FileNotFoundError:  # its writer finished or another cleaner got there first
            continue
    return removed


def _unlocked(fh: IO[bytes]) -> bool:
    """Take the file's lock if nobody holds it (released when `fh` closes)."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # no dots: the temp name is split on them
