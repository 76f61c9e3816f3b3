"""Sweeps on a real SLURM scheduler (`make slurm-up && make test-slurm`; scripts/slurm.sh starts a
one-node cluster): every measure kind through the SLURM launcher into one shared store, a
cancelled sweep resumed, a failing point, the job's CPU allocation in timed rows, the progress
bar counting records as they land. Skipped, with the reason, where no cluster answers."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slurm

TINY = ["model.hidden_size=8", "data.batch_size=4", "model.input_size=4"]


def cluster_answers() -> str:
    """'' when a partition is up, else why not."""
    if not shutil.which("sinfo"):
        return "no SLURM client (sinfo) on this machine: `make slurm-up` starts a one-node cluster"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 10 s"
    states = out.stdout.split()
    if out.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return f"no SLURM node up (sinfo: {(out.stderr or out.stdout).strip()[:200] or 'no nodes'}): `make slurm-up`"
    return ""


@pytest.fixture(scope="module", autouse=True)
def cluster():
    why = cluster_answers()
    if why:
        pytest.skip(why)


def launcher(tmp_path, name: str, **extra) -> list:
    """The SLURM launcher as the README shows it, sized for the one-node cluster (1 CPU a job)."""
    opts = {"partition": "cpu", "cpus_per_task": 1, "mem_gb": 1, "timeout_min": 10, "name": name, **extra}
    return ["hydra/launcher=slurm", *[f"hydra.launcher.{k}={v}" for k, v in opts.items()],
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]


def bench(args: list, env: dict = None, timeout: float = 600, **kw):
    return subprocess.run([sys.executable, "-m", "bench", "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, **kw)


def frame(store) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(p) for p in sorted(store.glob("*.parquet")))


@pytest.mark.parametrize("measure,points,sweep", [
    ("gradients", 2, ["model.cell=rnn,lstm", "data.seq_len=12"]),
    ("throughput", 2, ["model.cell=rnn,lstm", "data.seq_len=12", "measure.min_reps=3", "measure.min_time_s=0",
                       "measure.warmup=1"]),
    ("long_range", 2, ["model.cell=rnn,lstm", "data.seq_len=12", "measure.steps=10", "measure.eval_every=5",
                       "measure.test_size=8"]),
])
def test_each_measure_kind_through_the_slurm_launcher(tmp_path, tmp_path_factory, measure, points, sweep):
    """Every point stored once in one store that all three measures' jobs share, each point by
    its own job; the bar counts the records as they land (it ends at N/N, not 0/N)."""
    store = tmp_path_factory.getbasetemp() / "shared-store"
    before = set(store.glob("*.parquet"))
    proc = bench([f"measure={measure}", *sweep, *TINY, f"results_dir={store}", "progress=true",
                  *launcher(tmp_path, f"rnnbench-{measure}")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{points} points: {points} measured" in proc.stderr
    assert f"{points}/{points}" in proc.stderr                      # the bar saw the records land
    new = sorted(set(store.glob("*.parquet")) - before)
    df = pd.concat(pd.read_parquet(p) for p in new)
    assert df["config_hash"].nunique() == points == len(new)
    jobs = df.groupby("config_hash")["slurm_job_id"].first()
    assert jobs.str.len().gt(0).all() and jobs.nunique() == points  # one point per job
    assert (df["slurm_node"] == socket.gethostname().split(".")[0]).all()
    assert (df["slurm_cpus"] == 1).all()
    if measure == "throughput":  # timed: torch ran on the job's allocation, not the node's CPUs
        assert (df["threads"] == 1).all()


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_cancelled_sweep_resumes_without_loss_or_remeasurement(tmp_path, sigint):
    """One job at a time; cancel the array once two records have landed; the re-run measures
    only what is missing and leaves the stored records untouched. Also with SIGINT ignored, as
    under nohup or in the background of a script (`bash .ci/run &`), where the queue watch cannot
    interrupt the sweep through Python's default handler."""
    store, name = tmp_path / "store", f"rnnbench-resume-{sigint}"
    args = ["model.cell=rnn,lstm", "data.seq_len=10,20,30,40", *TINY, f"results_dir={store}", "progress=false",
            *launcher(tmp_path, name, array_parallelism=1)]
    how = signal.SIG_IGN if sigint == "ignored" else signal.SIG_DFL  # SIG_DFL: Python installs its own
    proc = subprocess.Popen([sys.executable, "-m", "bench", "-m", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, how))
    deadline = time.time() + 300
    while len(list(store.glob("*.parquet"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    subprocess.run(["scancel", "--name", name], check=True)
    _, err = proc.communicate(timeout=300)
    before = {p.name: p.stat().st_mtime_ns for p in store.glob("*.parquet")}
    assert 2 <= len(before) < 8, f"the cancel did not land mid-sweep ({len(before)} stored)\n{err[-2000:]}"
    assert proc.returncode == 1, err[-2000:]
    assert f"{len(before)} of 8 points are stored; the same command resumes" in err
    resumed = bench(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"8 points: {8 - len(before)} measured, {len(before)} already stored" in resumed.stderr
    after = {p.name: p.stat().st_mtime_ns for p in store.glob("*.parquet")}
    assert len(after) == 8 and all(after[n] == t for n, t in before.items())   # nothing measured twice
    df = frame(store)
    assert not df.duplicated(["config_hash", "layer", "t"]).any()


def test_a_point_failing_on_the_cluster_is_a_failed_row_and_the_exit_code_says_so(tmp_path):
    store = tmp_path / "store"
    proc = bench(["model.cell=rnn,gru", "data.seq_len=12", *TINY, f"results_dir={store}", "progress=false",
                  *launcher(tmp_path, "rnnbench-fail")], env={"RNN_BENCH_FAIL_CELL": "gru"})
    assert proc.returncode == 1
    assert "2 points: 1 measured, 0 already stored, 0 overflow, 1 failed" in proc.stderr
    line = next(l for l in proc.stderr.splitlines() if l.startswith("bench: failed:"))
    assert "model.cell=gru" in line and "injected failure for cell gru" in line and "logs:" in line
    assert "_log.err" in line                                        # the job's own log file, found
    df = frame(store)
    failed = df[df["cell"] == "gru"]
    assert len(failed) == 1 and failed["status"].iloc[0] == "failed"
    assert "RuntimeError: injected failure" in failed["error"].iloc[0] and failed["slurm_job_id"].iloc[0]
    assert (df.loc[df["cell"] == "rnn", "status"] == "ok").all()
