"""A progress bar per sweep: moved by run_point under the basic launcher (same process), by the
sweeper's store watcher under launchers that run points elsewhere (hydra_plugins/rnn_bench)."""
from __future__ import annotations

import sys
from typing import Optional

from tqdm import tqdm

_bar: Optional[tqdm] = None


def start(total: int, desc: str = "sweep") -> None:
    global _bar
    _bar = tqdm(total=total, desc=desc, unit="point", dynamic_ncols=True)


def point(label: str) -> None:
    if _bar is not None:
        _bar.set_postfix_str(label, refresh=True)


def done(status: str) -> None:
    if _bar is not None:
        _bar.update(1)


def set_done(n: int) -> None:
    """Points done so far, counted from outside (records landing from other processes)."""
    if _bar is not None and n != _bar.n:
        _bar.n = n
        _bar.refresh()


def write(message: str) -> None:
    """A line above the bar, on stderr with the bar (stdout stays the records' business)."""
    tqdm.write(message, file=sys.stderr)


def close() -> None:
    global _bar
    if _bar is not None:
        _bar.close()
    _bar = None
