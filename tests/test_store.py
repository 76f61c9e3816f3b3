"""Records and the store: atomic per-point files, dtype round-trip, skip and force."""
import pandas as pd
import pyarrow.parquet as pq

from bench.run.records import STATUSES, to_frame
from bench.run.runner import resolve, run_point
from bench.run.store import is_done, point_path, write_point


def test_round_trip_keeps_dtypes(tmp_path):
    frame = to_frame([{"t": 0, "grad_norm": 0.5, "underflow": False},
                      {"t": 1, "grad_norm": 0.25, "underflow": False}],
                     {"cell": "rnn", "forget_bias": None, "bidirectional": True, "seq_len": 2},
                     {"torch_version": "x", "threads": 2}, "abc")
    path = write_point(point_path(tmp_path, "abc"), frame)
    back = pd.read_parquet(path)
    assert list(back.columns) == list(frame.columns)
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    assert back["status"].tolist() == ["ok", "ok"] and back["bidirectional"].all()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_failed_point_is_one_row_with_status(tmp_path):
    frame = to_frame([], {"cell": "lstm"}, {}, "h", status="oom", error="CUDA out of memory")
    assert len(frame) == 1 and frame.loc[0, "status"] == "oom" and "oom" in STATUSES
    write_point(point_path(tmp_path, "h"), frame)
    assert not is_done(point_path(tmp_path, "h"))  # not ok: a re-run measures it again


def test_unreadable_file_is_not_done(tmp_path):
    p = point_path(tmp_path, "bad")
    p.write_bytes(b"not parquet")
    assert not is_done(p)


def test_rerun_skips_stored_points_and_force_recomputes(make_cfg, tmp_path):
    cfg = make_cfg([f"results_dir={tmp_path}", "data.seq_len=8", "model.hidden_size=4"])
    assert run_point(cfg) == "ok"
    path = point_path(tmp_path, resolve(cfg).chash)
    stamp = path.stat().st_mtime_ns
    assert run_point(cfg) == "skipped"
    assert path.stat().st_mtime_ns == stamp  # untouched
    forced = make_cfg([f"results_dir={tmp_path}", "data.seq_len=8", "model.hidden_size=4", "force=true"])
    assert run_point(forced) == "ok"
    assert path.stat().st_mtime_ns != stamp
    assert len(list(tmp_path.glob("*.parquet"))) == 1


def test_records_carry_config_and_provenance(make_cfg, tmp_path):
    cfg = make_cfg([f"results_dir={tmp_path}", "data.seq_len=6", "model.cell=gru"])
    run_point(cfg)
    frame = pq.read_table(next(tmp_path.glob("*.parquet"))).to_pandas()
    for col in ("cell", "input_size", "hidden_size", "num_layers", "bidirectional", "forget_bias",
                "seq_len", "batch_size", "device", "dtype", "seed", "torch_version", "device_name",
                "backend", "threads", "git_sha", "timestamp", "config_hash", "status", "error",
                "condition", "t", "distance", "grad_norm"):
        assert col in frame.columns, col
    assert frame["dtype"].unique().tolist() == ["float64"]
    assert frame["forget_bias"].isna().all()  # not an LSTM: no forget gate
    assert sorted(frame["t"]) == list(range(6))
    # the environment that decides a timing besides the code, as the A/B verdict compares it
    import platform

    import torch
    assert frame["python_version"].iloc[0] == platform.python_version()
    assert frame["cpu_capability"].iloc[0] == torch.backends.cpu.get_cpu_capability()
    if torch.backends.mkldnn.is_available():
        assert frame["onednn_version"].iloc[0].startswith("v")
    assert frame["cpu_model"].iloc[0] and "cpu_flags" in frame


KILLED_WRITER = """
import os, sys, time
import pandas as pd
import bench.run.store as store
def stall(src, dst):  # the temp file is complete and fsynced: stop right before the rename
    open(sys.argv[2], "w").close()
    time.sleep(600)
store.os.replace = stall
store.write_point(store.point_path(sys.argv[1], "abc"), pd.DataFrame({"t": range(1000), "v": 2.0}))
"""


def test_kill_during_a_write_keeps_the_old_record_and_the_orphan_is_cleaned(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from bench.run.store import clean_orphans
    from tests.conftest import ROOT
    path = write_point(point_path(tmp_path, "abc"), pd.DataFrame({"t": range(3), "v": 1.0}))
    before = path.read_bytes()
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path), str(ready)], cwd=ROOT)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert ready.exists(), "the writer never reached the rename"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path.read_bytes() == before and pd.read_parquet(path)["v"].eq(1.0).all()
    orphans = list(tmp_path.glob(".*.tmp"))
    assert len(orphans) == 1                       # killed mid-write: its temp file is left
    assert clean_orphans(tmp_path) == 1 and not list(tmp_path.glob(".*.tmp"))


def test_a_live_writers_temp_file_is_not_an_orphan(tmp_path):
    import fcntl
    import os

    from bench.run.store import _host, clean_orphans
    live = tmp_path / f".abc.parquet.{_host()}.{os.getpid()}.deadbeef.tmp"
    with open(live, "wb") as fh:  # a writer holds its temp file's lock until the rename
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        assert clean_orphans(tmp_path) == 0 and live.exists()
    assert clean_orphans(tmp_path) == 1 and not live.exists()  # lock gone: the writer is gone


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import bench.run.store as store
    calls = []
    monkeypatch.setattr(store, "fsync_dir", lambda folder: calls.append(folder))
    write_point(point_path(tmp_path, "abc"), pd.DataFrame({"t": [0]}))
    assert calls == [tmp_path]
