"""The regression check: clean runs pass, planted slowdowns and gradient drift fail, bad input
exits 2 with a plain message."""
import shutil

import pandas as pd
import pytest

from analysis.ci.baseline import THRESHOLDS
from analysis.ci.manifest import write_manifest
from analysis.compare import main as compare_main
from tests.synthetic import write_gradients, write_throughput


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    store = tmp_path_factory.mktemp("baseline")
    write_gradients(store)
    write_throughput(store)
    write_manifest(store, "synthetic")  # as `make baseline` does: the points the baseline holds
    return store


def _copy(src, dst, edit=None):
    shutil.copytree(src, dst)
    if edit:
        for f in dst.glob("*.parquet"):
            df = pd.read_parquet(f)
            edit(df)
            df.to_parquet(f, index=False)
    return dst


def test_identical_stores_pass(baseline, tmp_path, capsys):
    out = tmp_path / "verdict.md"
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c")), "--out", str(out)]) == 0
    text = out.read_text()
    assert "no regression" in text and "| metric" in text and "REGRESSION" not in text


def test_planted_30_percent_lstm_slowdown_is_flagged(baseline, tmp_path, capsys):
    def slow_lstm(df):
        if "phase" in df and (df["cell"] == "lstm").all():
            df["time_ms"] *= 1.3
    code = compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", slow_lstm))])
    out = capsys.readouterr().out
    assert code == 1
    flagged = [line for line in out.splitlines() if "REGRESSION" in line]
    assert any("step/matmul lstm" in line for line in flagged)
    assert any(line.startswith("| lstm/rnn") for line in flagged)
    assert not any("rnn" in line.split("|")[1] and "lstm" not in line for line in flagged)
    assert 0.3 > max(THRESHOLDS.values())


def test_planted_gradient_change_is_flagged(baseline, tmp_path, capsys):
    def drift(df):
        if "grad_norm" in df:
            df["grad_norm"] *= 1 + 1e-6
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", drift))]) == 1
    assert "REGRESSION (correctness)" in capsys.readouterr().out


def test_speedup_is_not_a_regression(baseline, tmp_path, capsys):
    def fast(df):
        if "phase" in df:
            df["time_ms"] *= 0.5
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", fast))]) == 0
    assert "faster" in capsys.readouterr().out


def test_noise_within_spread_is_not_flagged(baseline, tmp_path):
    def noisy(df):  # +25% on lstm, but the points' own spread is 2% + 28% = 30%
        if "phase" in df:
            df["rel_iqr"] = 0.28
            if (df["cell"] == "lstm").all():
                df["time_ms"] *= 1.25
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", noisy))]) == 0


def test_unusable_input_exits_2(baseline, tmp_path, capsys):
    assert compare_main([str(tmp_path / "missing"), str(baseline)]) == 2
    assert "no record store" in capsys.readouterr().err
    other = tmp_path / "other"
    write_gradients(other)

    def reseed(df):
        df["config_hash"] = df["config_hash"] + "x"
    assert compare_main([str(baseline), str(_copy(other, tmp_path / "o2", reseed))]) == 2
    assert "no points in common" in capsys.readouterr().err


def test_other_device_refused_unless_asked(baseline, tmp_path, capsys):
    def move(df):
        df["device_name"] = "another cpu"
    cand = _copy(baseline, tmp_path / "c", move)
    assert compare_main([str(baseline), str(cand)]) == 2
    assert "refusing to compare across devices" in capsys.readouterr().err
    assert compare_main([str(baseline), str(cand), "--on-other-device", "gradients"]) == 0
    out = capsys.readouterr().out
    assert "skipped: baseline from another device" in out and "**differs**" in out


def _slow_lstm(df):
    if "phase" in df and (df["cell"] == "lstm").all():
        df["time_ms"] *= 1.3


@pytest.mark.slow
def test_confirmation_run_clears_a_transient_and_keeps_a_real_slowdown(baseline, tmp_path, capsys):
    transient = _copy(baseline, tmp_path / "t", _slow_lstm)
    clean = _copy(baseline, tmp_path / "clean")
    assert compare_main([str(baseline), str(transient), str(clean)]) == 0
    again = _copy(baseline, tmp_path / "t2", _slow_lstm)
    assert compare_main([str(baseline), str(transient), str(again)]) == 1
    assert "REGRESSION (2/2 runs)" in capsys.readouterr().out


def test_points_flagged_noisy_are_not_judged(baseline, tmp_path, capsys):
    def noisy_slow(df):
        _slow_lstm(df)
        if "phase" in df and (df["cell"] == "lstm").all():
            df["noisy"] = True
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", noisy_slow))]) == 0
    assert "inconclusive: noisy" in capsys.readouterr().out


def test_loaded_machine_is_not_judged(baseline, tmp_path, capsys):
    def loaded(df):  # everything 2x slower, the calibration matmul 3x slower
        if "phase" in df:
            _slow_lstm(df)
            df["calib_flops_per_s"] /= 3
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", loaded))]) == 0
    out = capsys.readouterr().out
    assert "inconclusive: machine loaded (calibration at 33% of baseline)" in out
    assert "candidate 3 G (33%)" in out


def test_fails_closed_when_points_are_missing_or_not_ok(baseline, tmp_path, capsys):
    """Every lstm point deleted, and a gru gradient point stored as overflow with an infinite
    norm: exit 1, each named."""
    cand = _copy(baseline, tmp_path / "c")
    lstm = [f for f in cand.glob("*.parquet") if (pd.read_parquet(f)["cell"] == "lstm").all()]
    for f in lstm:
        f.unlink()
    gru = next(f for f in sorted(cand.glob("*.parquet"))
               if (pd.read_parquet(f)["cell"] == "gru").all() and "grad_norm" in pd.read_parquet(f))
    df = pd.read_parquet(gru)
    df["status"], df["error"] = "overflow", "gradient not finite from distance 3"
    df.loc[0, "grad_norm"] = float("inf")
    df.to_parquet(gru, index=False)
    assert compare_main([str(baseline), str(cand)]) == 1
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if "missing from the candidate" in line]
    assert len(missing) >= len(lstm) and all("cell=lstm" in line for line in missing if "point" in line)
    assert "REGRESSION (point status overflow: gradient not finite from distance 3)" in out
    assert "regression(s)" in out and "baseline points in the candidate" in out


def test_non_finite_value_in_an_ok_point_is_a_regression(baseline, tmp_path, capsys):
    def nan_time(df):
        if "phase" in df and (df["cell"] == "rnn").all():
            df.loc[0, "time_ms"] = float("nan")
    assert compare_main([str(baseline), str(_copy(baseline, tmp_path / "c", nan_time))]) == 1
    assert "REGRESSION (point non-finite values)" in capsys.readouterr().out


def test_a_baseline_of_an_older_measure_version_is_refused_by_name(baseline, tmp_path, capsys):
    """A measure whose version moved changes every point's hash: compared point by point, a stale
    baseline would read as points missing from the candidate. It is refused in one line instead."""
    def version(v):
        def edit(df):
            df["measure_version"] = v if "phase" in df else 1
        return edit
    old = _copy(baseline, tmp_path / "b", version(2))
    write_manifest(old, "synthetic")
    assert compare_main([str(old), str(_copy(baseline, tmp_path / "c", version(2)))]) == 0
    capsys.readouterr()
    assert compare_main([str(old), str(_copy(baseline, tmp_path / "d", version(3)))]) == 2
    err = capsys.readouterr().err
    assert "was recorded with throughput v2 (this commit: v3)" in err and "re-record it with `make baseline`" in err
    assert len(err.strip().splitlines()) == 1
