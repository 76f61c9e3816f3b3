"""Faults: kill -9 mid-sweep and resume, failures as rows, concurrent writers, determinism,
parallel and cluster launchers."""
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from analysis.load import load_store
from bench.run.runner import resolve, run_point
from bench.run.store import point_path
from tests.conftest import ROOT, run_cli, run_main

TINY = ["model.hidden_size=8", "data.batch_size=4", "model.input_size=4", "progress=false"]
SWEEP = ["-m", "model.cell=rnn,lstm,gru", "data.seq_len=10,20,30,40,50,60"]  # 18 points


def _fail(message):
    raise AssertionError(message)


def _store_frame(store):
    """The whole store; any unreadable (e.g. partial) file fails the test."""
    return load_store(store, warn=_fail)


@pytest.mark.slow
def test_kill_mid_sweep_then_resume_stores_every_point_once(tmp_path):
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "bench", *SWEEP, *TINY, f"results_dir={store}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(store.glob("*.parquet"))) < 4:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(list(store.glob("*.parquet")))
    assert 4 <= killed_at < 18, "the kill did not land mid-sweep"
    resumed = run_cli(["bench", *SWEEP, *TINY, f"results_dir={store}"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"18 points: {18 - killed_at} measured, {killed_at} already stored" in resumed.stderr
    df = _store_frame(store)
    assert df["config_hash"].nunique() == 18 == len(list(store.glob("*.parquet")))
    assert not df.duplicated(["config_hash", "layer", "t"]).any()
    assert (df.groupby("config_hash").size() == df.groupby("config_hash")["seq_len"].first()).all()


def test_a_failing_point_becomes_a_row_and_a_rerun_retries_it(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg([f"results_dir={tmp_path}", *TINY])

    def boom(point):
        raise RuntimeError("shape the backend refuses")
    import dataclasses

    from bench.measures.registry import MEASURES
    monkeypatch.setitem(MEASURES, "gradients", dataclasses.replace(MEASURES["gradients"], measure=boom))
    assert run_point(cfg) == "failed"
    row = pd.read_parquet(point_path(tmp_path, resolve(cfg).chash))
    assert len(row) == 1 and row.loc[0, "status"] == "failed"
    assert "RuntimeError: shape the backend refuses" in row.loc[0, "error"]
    monkeypatch.undo()
    assert run_point(make_cfg([f"results_dir={tmp_path}", *TINY])) == "ok"  # not skipped: retried


def test_out_of_memory_is_classified():
    from bench.run.runner import classify
    assert classify(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == "oom"
    assert classify(FloatingPointError("overflow")) == "overflow"
    assert classify(ValueError("nope")) == "failed"


def test_same_seed_gives_bitwise_identical_gradient_records(make_cfg, tmp_path):
    frames = []
    for i in range(2):
        cfg = make_cfg([f"results_dir={tmp_path / str(i)}", "model.num_layers=2", "model.bidirectional=true",
                        "data.seq_len=25", *TINY])
        run_point(cfg)
        frames.append(pd.read_parquet(next((tmp_path / str(i)).glob("*.parquet"))))
    cols = ["layer", "t", "distance", "grad_norm", "jacobian_decay_per_step"]
    assert frames[0][cols].equals(frames[1][cols])


@pytest.mark.slow
def test_two_concurrent_writers_on_one_store(tmp_path):
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "bench", *SWEEP, *TINY, f"results_dir={store}", "force=true"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read()
    df = _store_frame(store)
    assert df["config_hash"].nunique() == 18 == len(list(store.glob("*.parquet")))
    assert not list(store.glob(".*.tmp"))
    assert not df.duplicated(["config_hash", "layer", "t"]).any()


def test_timed_measure_refused_under_local_parallel_launcher(tmp_path):
    proc = run_main(["-m", "measure=throughput", "hydra/launcher=local_parallel",
                     "model.cell=rnn,lstm", *TINY, f"results_dir={tmp_path / 's'}"])
    assert proc.returncode == 2 and "measure=throughput is timed" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "s").exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["local_parallel", "submitit_local"])
def test_parallel_and_cluster_launchers(tmp_path, launcher):
    store = tmp_path / "store"
    extra = ["hydra.launcher.timeout_min=5"] if launcher == "submitit_local" else []
    proc = run_cli(["bench", "-m", f"hydra/launcher={launcher}", "model.cell=rnn,lstm",
                    "data.seq_len=10,20", *TINY, f"results_dir={store}", *extra], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 points: 4 measured" in proc.stderr
    assert _store_frame(store)["config_hash"].nunique() == 4
