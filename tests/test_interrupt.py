"""Ctrl-C whose KeyboardInterrupt a library's clean-up turned into another error (bench/run/interrupt.py):
still one line, exit 130, and no point stored as failed. The clean-up is simulated exactly as it
happened in CI: SIGINT lands, and the `finally` it unwinds through raises an error of its own."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT, sigint_as_at_a_terminal

TINY = ["model.hidden_size=8", "data.batch_size=4", "model.input_size=4", "data.seq_len=10", "progress=false",
        "measure=gradients"]

# SIGINT to this process, then the error OmegaConf's flag reset raised in CI while unwinding from it
CLEANUP_FAILS = """
import os, signal, time
def ctrl_c_then_cleanup_fails():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    finally:
        raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")
"""

# where it lands: while Hydra composes the sweep's second point for the launcher (calls 1-3 are the
# sweeper's checks of every point, 4 the launcher's first), or inside the second point's measure
COMPOSE = """
from hydra._internal.config_loader_impl import ConfigLoaderImpl
original, calls = ConfigLoaderImpl.load_sweep_config, []
def load_sweep_config(self, *a, **k):
    calls.append(1)
    if len(calls) == {call}:
        ctrl_c_then_cleanup_fails()
    return original(self, *a, **k)
ConfigLoaderImpl.load_sweep_config = load_sweep_config
"""
PATCHES = {
    "check": COMPOSE.format(call=2),
    "compose": COMPOSE.format(call=5),
    "measure": """
import bench.run.runner as runner
def injected_failure(point):
    if point.get("cell") == "gru":
        ctrl_c_then_cleanup_fails()
runner.injected_failure = injected_failure
""",
}


def run_patched(patch: str, args, store):
    code = (CLEANUP_FAILS + PATCHES[patch] +
            f"import sys; sys.argv = ['bench', *{list(args)!r}, 'results_dir={store}']\n"
            "from bench.run.cli import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          preexec_fn=sigint_as_at_a_terminal)


@pytest.mark.parametrize("where, says, stored", [
    ("check", "bench: interrupted while the sweep's points were checked; nothing was run", 0),
    ("compose", "bench: interrupted: 1 of 3 points are stored; the same command resumes", 1),
    ("measure", "bench: interrupted: 1 of 3 points are stored; the same command resumes", 1)])
def test_a_sweep_interrupted_through_a_failing_cleanup_says_what_is_stored(tmp_path, where, says, stored):
    store = tmp_path / "store"
    out = run_patched(where, ["-m", "model.cell=lstm,gru,rnn", *TINY], store)
    assert out.returncode == 130, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(says), out.stderr
    assert "Traceback" not in out.stderr and "_invalidate_flags_cache" not in out.stderr, out.stderr
    assert len(list(store.glob("*.parquet"))) == stored  # the interrupted point is not stored as a failure


def test_an_unrelated_error_is_not_taken_for_an_interrupt(tmp_path):
    """The control: the same error with no SIGINT before it is a failed point, stored as one."""
    code = ("import bench.run.runner as runner\n"
            "def injected_failure(point):\n"
            "    raise AttributeError('an error of the measure')\n"
            "runner.injected_failure = injected_failure\n"
            f"import sys; sys.argv = ['bench', *{TINY!r}, 'results_dir={tmp_path}']\n"
            "from bench.run.cli import main\nmain()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "failed" in out.stderr and "interrupted" not in out.stderr, out.stderr
    assert len(list(tmp_path.glob("*.parquet"))) == 1
