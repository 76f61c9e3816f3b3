"""Refused before any work, in one line (issue 29): a store that cannot be written, a seed the store
cannot hold, a float that is not finite, a key that no schema has (whichever prefix adds it), a
misspelt key, value, group or preset (with the likely one), a sweep preset without -m, a 0-point
sweep. And the newcomer's first hour: where the records went, no Hydra folders in the current
directory, Ctrl-C that says what is stored, `--help` that lists what can be chosen."""
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.config.errors import ConfigError
from bench.run.cli import preflight
from bench.run.runner import resolve
from tests.conftest import ROOT, interrupt_after_first_record, run_cli, run_main, sigint_as_at_a_terminal

TINY = ["model.hidden_size=8", "data.batch_size=4", "model.input_size=4", "data.seq_len=10", "progress=false"]


def refused(proc):
    """Exit 2, one line on stderr, no traceback; returns the line."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("where,why", [("file", "it is a file, not a folder"),
                                       ("file/store", "Not a directory (ENOTDIR)")])
def test_a_store_that_cannot_be_written_is_refused_before_any_work(tmp_path, where, why):
    (tmp_path / "file").write_text("not a folder")
    store = tmp_path / where
    line = refused(run_cli(["bench", *TINY, f"results_dir={store}"]))
    assert f"results_dir={store}: cannot write there: {why}" in line and "nothing was run" in line
    line = refused(run_cli(["bench", "-m", "model.cell=rnn,gru", *TINY, f"results_dir={store}"]))
    assert f"results_dir={store}: cannot write there" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_store_is_refused_before_any_work(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o555)
    try:
        line = refused(run_cli(["bench", *TINY, f"results_dir={store}"]))
    finally:
        store.chmod(0o755)
    assert "cannot write there: Permission denied (EACCES)" in line and not list(store.iterdir())


def test_a_seed_beyond_int64_is_refused_in_one_line(tmp_path):
    line = refused(run_main([*TINY, "seed=9223372036854775808", f"results_dir={tmp_path / 's'}"]))
    assert "seed=9223372036854775808: must be an int from" in line and "int64" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("overrides,key", [
    (["model.gain=inf"], "model.gain=inf"),
    (["model.forget_bias=nan"], "model.forget_bias=nan"),
    (["measure=long_range", "measure.lr=inf"], "measure.lr=inf"),
    (["measure=long_range", "measure.clip=inf"], "measure.clip=inf"),
    (["measure=throughput", "measure.min_time_s=nan"], "measure.min_time_s=nan"),
    (["measure=gradients", "measure.fit_end=inf"], "measure.fit_end=inf"),
])
def test_every_float_key_must_be_finite(make_cfg, overrides, key):
    with pytest.raises(ConfigError, match=f"^{key}: must be a finite number"):
        resolve(make_cfg(overrides))


@pytest.mark.parametrize("override", ["model.foo=1", "+model.foo=1", "++model.foo=1", "+foo=1",
                                      "+data.foo=2", "+measure.foo=3"])
def test_unknown_keys_are_refused_whichever_prefix_adds_them(make_cfg, tmp_path, override):
    line = preflight([override, *TINY])
    assert line and line.split(":")[0] in ("model.foo", "foo", "data.foo", "measure.foo"), line
    assert "not a key" in line and "Config" not in line
    if override.startswith("+"):  # a sweep's points are validated by the sweeper, through resolve
        with pytest.raises(ConfigError, match="not a key"):
            resolve(make_cfg([override]))


def test_an_added_misspelt_key_is_refused_not_run_at_its_default(tmp_path):
    line = refused(run_cli(["bench", "+model.hiden_size=8", *TINY, f"results_dir={tmp_path / 's'}"]))
    assert "model.hiden_size: not a key; did you mean model.hidden_size?" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("overrides,said", [
    (["model.cel=lstm"], "model.cel: not a key; did you mean model.cell?"),
    (["model.seq_len=5"], "model.seq_len: not a key; did you mean data.seq_len?"),
    (["model.init=orthogonl"], "model.init=orthogonl: not an allowed value; did you mean model.init=orthogonal?"),
    (["measure=gradient"], "measure=gradient: not an option of measure; did you mean measure=gradients?"),
    (["model=lsmt"], "model=lsmt: not an option of model; did you mean model=lstm?"),
    (["experiment=gradients_quik"], "experiment=gradients_quik: not a preset in conf/experiment/; did you "
                                    "mean experiment=gradients_quick?"),
    (["measure.backend=native"], "measure.backend: not a key of measure=gradients; it belongs to measure=throughput"),
    (["measure=long_range", "measure.fit_start=0.2"], "measure.fit_start: not a key of measure=long_range; "
                                                      "it belongs to measure=gradients"),
    (["data.seq_len=abc"], "data.seq_len=abc: must be an int"),
])
def test_errors_speak_the_users_key_names_with_a_did_you_mean(overrides, said):
    line = preflight(overrides)
    assert line and line.startswith(said), line
    assert "Config'" not in line and "GradientsConfig" not in line and "base_" not in line


def test_a_misspelt_cell_suggests_the_registered_one(make_cfg):
    with pytest.raises(ConfigError, match=r"model.cell=lsmt: not a registered cell; did you mean model.cell=lstm\?"):
        resolve(make_cfg(["model.cell=lsmt"]))


def test_a_sweep_preset_without_m_is_refused_with_the_command_that_runs_it(tmp_path):
    line = refused(run_cli(["bench", "experiment=gradients_quick", f"results_dir={tmp_path / 's'}"]))
    assert "experiment=gradients_quick is a sweep" in line
    assert "`python -m bench -m experiment=gradients_quick" in line and not (tmp_path / "s").exists()
    assert "python -m bench.run.suite default" in preflight(["experiment=default"])


def test_a_sweep_value_without_m_and_an_unparsable_value_say_what_works():
    assert preflight(["model.cell=rnn,lstm"]).startswith(
        "model.cell=rnn,lstm is a sweep: run it with `python -m bench -m model.cell=rnn,lstm`")
    assert preflight(["results_dir=/tmp/é"]) == ("results_dir=/tmp/é: the override grammar cannot read this "
                                                 "value; quote it: results_dir='/tmp/é' (in a shell: "
                                                 "\"results_dir='/tmp/é'\")")
    assert preflight(["results_dir='/tmp/é'"]) is None  # quoted, it is read


def test_cfg_with_a_sweep_is_one_line():
    line = refused(run_main(["-m", "experiment=ci_gradients", "--cfg", "job"]))
    assert "--cfg shows one point's configuration: drop -m" in line


def test_a_zero_point_sweep_is_an_error(tmp_path):
    line = refused(run_main(["-m", "seed=range(0)", *TINY, f"results_dir={tmp_path / 's'}"]))
    assert "the sweep has no points" in line


@pytest.mark.slow
def test_runs_say_where_their_records_are_and_leave_no_folder_behind(tmp_path):
    store, cwd = tmp_path / "store", tmp_path / "cwd"
    cwd.mkdir()
    single = run_cli(["bench", *TINY, f"results_dir={store}"], cwd=cwd)
    assert single.returncode == 0, single.stderr
    (record,) = store.glob("*.parquet")
    assert f"ok; record: {record}" in single.stderr
    sweep = run_cli(["bench", "-m", "model.cell=rnn,gru", *TINY, f"results_dir={store}"], cwd=cwd)
    assert sweep.returncode == 0, sweep.stderr
    assert f"bench: records: {store} (2 of 2 points stored)" in sweep.stderr
    assert not list(cwd.iterdir())                       # no results/hydra/... where the user stands
    assert sorted(p.suffix for p in store.iterdir()) == [".parquet"] * 3  # nor in the store


@pytest.mark.slow
def test_ctrl_c_says_how_many_points_are_stored_and_that_the_command_resumes(tmp_path):
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "bench", "-m", "model.cell=rnn,lstm,gru", "data.seq_len=10,20,30,40,50,60",
           *TINY[:3], "progress=false", f"results_dir={store}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store.glob("*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    stored = len(list(store.glob("*.parquet")))
    assert proc.returncode == 130, err
    assert f"bench: interrupted: {stored} of 18 points are stored; the same command resumes" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.mark.slow
def test_ctrl_c_under_a_preset_suite_ends_in_one_line_after_the_sweeps_count(tmp_path):
    """Ctrl-C at a terminal interrupts the whole process group: the suite (`make bench`) and the
    sweep it runs. The sweep says how many points are stored; the suite adds one line, no traceback."""
    store = tmp_path / "store"
    code, err = interrupt_after_first_record(["bench.run.suite", "ci", "progress=false", f"results_dir={store}"],
                                             store)
    assert code == 130, err
    assert "points are stored; the same command resumes" in err
    assert err.rstrip().splitlines()[-1] == ("bench.run.suite: interrupted; the same command resumes "
                                             "(stored points are skipped)")
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


HELP = ("import sys, runpy; sys.argv = ['bench', '--help']\n"
        "try:\n    runpy.run_module('bench', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)")


def test_help_lists_groups_and_presets_without_internal_nodes_or_torch():
    out = subprocess.run([sys.executable, "-c", HELP], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "torch imported: False" in out.stderr, out.stderr
    text = out.stdout
    assert "measure: gradients*, long_range, throughput" in text and "base_" not in text
    assert "model: gru, indrnn, lru, lstm*" in text and "model.hidden_size=128" in text
    assert "max_memory_gb=null" in text
    for preset in sorted((ROOT / "conf" / "experiment").glob("*.yaml")):
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [preset.stem])
        first = next(ln for ln in preset.read_text().splitlines() if ln.startswith("#") and "@package" not in ln)
        assert first.lstrip("# ").strip() in line
