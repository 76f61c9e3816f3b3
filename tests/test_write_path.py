"""Failures on the write path lose nothing and are one line (issue 29): a record that cannot be
written names the point, the path and the OS error, and the sweep goes on and names every failed
point; a CPU out-of-memory is stored as `oom`; a temp file whose writer lives (in whatever PID
namespace) is never cleaned away; report files are written whole or not at all."""
import errno
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from bench.run.runner import classify, measure_point, resolve
from bench.run.store import _host, clean_orphans, point_path, write_point, write_problem
from tests.conftest import ROOT, run_cli

TINY = ["model.hidden_size=8", "data.batch_size=4", "model.input_size=4", "data.seq_len=10", "progress=false"]


def test_a_failed_write_after_the_measure_is_one_line_naming_point_path_and_error(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg([*TINY, f"results_dir={tmp_path}"])

    def full_disk(self, target, **kw):  # the disk fills while the record is written
        target.write(b"PAR1 partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    outcome = measure_point(cfg, label="the point")
    path = point_path(tmp_path, resolve(cfg).chash)
    assert outcome.status == "unstored"
    assert outcome.problem == f"cannot write {path}: No space left on device (ENOSPC)"
    assert not list(tmp_path.iterdir())  # neither the record nor its temp file


@pytest.mark.slow
def test_a_sweep_goes_on_past_points_it_cannot_store_and_names_each(make_cfg, tmp_path):
    store = tmp_path / "store"
    cells = ["rnn", "lstm", "gru", "ref_lstm"]
    blocked = [point_path(store, resolve(make_cfg([f"model.cell={c}", *TINY, f"results_dir={store}"])).chash)
               for c in ("rnn", "gru")]
    for path in blocked:  # a folder where the record should go: the rename fails with EISDIR
        path.mkdir(parents=True)
    proc = run_cli(["bench", "-m", f"model.cell={','.join(cells)}", *TINY, f"results_dir={store}"])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bench: 4 points: 2 measured, 0 already stored, 0 overflow, 2 failed" in proc.stderr
    failed = [ln for ln in proc.stderr.splitlines() if ln.startswith("bench: failed: ")]
    for cell, path in zip(("rnn", "gru"), blocked):
        (line,) = [ln for ln in failed if ln.startswith(f"bench: failed: model.cell={cell} ")]
        assert line.endswith(f"(not stored: cannot write {path}: Is a directory (EISDIR))")
    assert f"bench: records: {store} (2 of 4 points stored)" in proc.stderr
    assert sorted(p.name for p in store.glob("*.parquet") if p.is_file()) == sorted(
        point_path(store, resolve(make_cfg([f"model.cell={c}", *TINY, f"results_dir={store}"])).chash).name
        for c in ("lstm", "ref_lstm"))
    assert not list(store.glob(".*.tmp"))


@pytest.mark.slow
def test_a_single_point_that_cannot_be_stored_is_one_line_and_exit_1(make_cfg, tmp_path):
    store = tmp_path / "store"
    path = point_path(store, resolve(make_cfg([*TINY, f"results_dir={store}"])).chash)
    path.mkdir(parents=True)
    proc = run_cli(["bench", *TINY, f"results_dir={store}"])
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"bench: point {' '.join(TINY[:-1])}: not stored: cannot write {path}: Is a directory (EISDIR)"]


def test_a_cpu_out_of_memory_is_oom():
    with pytest.raises(RuntimeError) as real:  # the CPU allocator's own refusal
        torch.empty(1 << 62, dtype=torch.uint8)
    assert classify(real.value) == "oom"
    assert classify(MemoryError()) == "oom"
    assert classify(RuntimeError("overflow in conversion")) == "failed"


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    assert write_problem(tmp_path / "new" / "store") is None
    assert list((tmp_path / "new" / "store").iterdir()) == []


HOLDER = """
import fcntl, sys, time
fh = open(sys.argv[1], "wb")
fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
fh.write(b"a record half written")
fh.flush()
open(sys.argv[2], "w").close()
time.sleep(600)
"""


def dead_pid() -> int:
    """A pid that runs nothing here: what a writer's pid in another PID namespace looks like."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_a_live_writer_from_another_pid_namespace_keeps_its_temp_file(tmp_path):
    """Same host name, a pid that means nothing here (a container): the writer holds its lock."""
    tmp = tmp_path / f".abc.parquet.{_host()}.{dead_pid()}.cafef00d.tmp"
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp), str(ready)], cwd=ROOT)
    try:
        deadline = time.time() + 60
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.01)
        assert ready.exists()
        assert clean_orphans(tmp_path) == 0 and tmp.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert clean_orphans(tmp_path) == 1 and not tmp.exists()  # its writer died: an orphan now


def test_records_are_still_written_whole_and_locked_while_written(tmp_path, monkeypatch):
    import fcntl

    import bench.run.store as store
    seen = []

    def rename(src, dst):  # another process looks at the temp file just before the rename
        with open(src, "rb") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("unlocked")
            except BlockingIOError:
                seen.append("locked")
        os.rename(src, dst)
    monkeypatch.setattr(store.os, "replace", rename)
    path = write_point(point_path(tmp_path, "abc"), pd.DataFrame({"t": range(3)}))
    assert seen == ["locked"] and pd.read_parquet(path)["t"].tolist() == [0, 1, 2]


def test_report_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A disk that fills while a figure or a table is written leaves the previous file, never a
    truncated one; the command says so in one line."""
    import matplotlib.figure

    from analysis.report.__main__ import main as report_main
    from tests.synthetic import write_gradients
    store, out = tmp_path / "store", tmp_path / "report"
    write_gradients(store)
    assert report_main([str(store), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full_disk(self, fname, **kw):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    assert report_main([str(store), "--out", str(out)]) == 1
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # every file as it was; no temp file left
