"""Shared fixtures: composing configs the way `python -m bench` does, CPU and float64 throughout."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bench.config.schema import register_configs

ROOT = Path(__file__).resolve().parent.parent
CONF = str(ROOT / "conf")

# One intra-op thread for the in-process tests: their tensors are tiny, where a second OpenMP
# thread only adds barrier waits (on a busy machine a step of an 8-unit LSTM took 0.2 s, 20x its
# one-thread time). A test about threads sets `threads` in its config (bench/run/device.py).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _configs():
    register_configs()


@pytest.fixture
def make_cfg():
    """compose(overrides) -> the job config `python -m bench overrides` would get."""
    def _compose(overrides: List[str] = ()):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))
    yield _compose
    GlobalHydra.instance().clear()


def run_cli(args: List[str], cwd: Path = ROOT, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run `python -m <args>` as a user would, in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout, **kw)


def sigint_as_at_a_terminal() -> None:
    """preexec_fn for a child that is to be Ctrl-C'd: SIGINT back to its default. A command run in
    the background of a non-interactive shell (`bash .ci/run &`) inherits SIGINT ignored, and
    Python leaves an ignored SIGINT ignored, so the child would never see the key press."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after_first_record(args: List[str], store: Path) -> Tuple[int, str]:
    """Run `python -m <args>` in its own process group, press Ctrl-C (SIGINT to the group, as a
    terminal does) once a first record is in `store`; (exit code, stderr)."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_at_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and not any(store.glob("*.parquet")) and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def run_main(args: List[str]) -> subprocess.CompletedProcess:
    """`python -m bench ARGS` in this process (bench.run.cli.main, what `python -m bench` runs),
    for the cases refused before any work, where a subprocess would only add its imports; the
    result reads like run_cli's."""
    import contextlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    from bench.run.cli import main
    err, argv, code = io.StringIO(), sys.argv, 0
    sys.argv = ["bench", *args]
    try:
        with contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    return subprocess.CompletedProcess(["bench", *args], code, "", err.getvalue())


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield
