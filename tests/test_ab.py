"""A/B regression tracking: the paired-round statistics on synthetic rounds, the verdict of an
A/B directory (fail closed, gradients exact, only the slowed cell flagged), the history, and the
runner's refusals."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis.ci import paired
from analysis.ci.history import main as history_main
from analysis.compare import main as compare_main
from analysis.reduce.ratios import interleaved_ratio
from tests.synthetic import write_gradients, write_throughput


def rounds(slowdown=1.0, n=5, noise=0.02, seed=0, burst=None):
    """n paired rounds of 20 repetitions: base ~ 10 ms, head ~ 10 ms x slowdown, each round's
    machine state (a shared factor) drawn per round; burst=(k, factor): one side of round k slowed."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        state = rng.uniform(0.8, 1.2)  # the machine's weather: shared by both sides of a round
        b = 10 * state * (1 + noise * rng.standard_normal(20))
        h = 10 * state * slowdown * (1 + noise * rng.standard_normal(20))
        if burst and burst[0] == k:
            h = h * burst[1]
        out.append((b, h))
    return out


def test_identical_code_is_not_a_regression_even_when_the_machine_drifts():
    for seed in range(20):
        ratio, lo, hi = interleaved_ratio(rounds(seed=seed))
        assert lo < 1 < hi
        assert paired.judge(ratio, lo, hi) in ("ok", "inconclusive: interval crosses the threshold")


def test_a_12_percent_slowdown_in_every_round_is_a_regression():
    ratio, lo, hi = interleaved_ratio(rounds(slowdown=1.12))
    assert ratio == pytest.approx(1.12, abs=0.02)
    assert lo > 1.05 and paired.judge(ratio, lo, hi) == "REGRESSION"


def test_one_burst_in_one_round_is_not_a_regression():
    ratio, lo, hi = interleaved_ratio(rounds(burst=(2, 1.5)))
    assert ratio == pytest.approx(1.0, abs=0.03)
    assert not paired.judge(ratio, lo, hi).startswith("REGRESSION")


def test_faster_and_inconclusive_verdicts():
    assert paired.judge(*interleaved_ratio(rounds(slowdown=0.8))) == "faster"
    assert paired.judge(1.04, 0.98, 1.12) == "inconclusive: interval crosses the threshold"
    assert paired.judge(float("nan"), 1, 1).startswith("REGRESSION")


def test_wider_noise_gives_a_wider_interval():
    _, lo1, hi1 = interleaved_ratio(rounds(noise=0.01))
    _, lo2, hi2 = interleaved_ratio(rounds(noise=0.10))
    assert hi2 - lo2 > hi1 - lo1


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = tmp_path_factory.mktemp("store")
    write_gradients(s)
    write_throughput(s)
    return s


def make_ab(root, store, n=3, edit_head=None, edit_base=None, head_env=None):
    """An A/B directory as bench.ab leaves it: base and head rounds copied from `store`, each
    round's times scaled by a shared factor; edit_head(df) plants a change on the head side."""
    for side, edit in (("base", edit_base), ("head", edit_head)):
        for k in range(1, n + 1):
            d = root / side / f"r{k}"
            shutil.copytree(store, d)
            for f in d.glob("*.parquet"):
                df = pd.read_parquet(f)
                if "time_ms" in df:
                    df["time_ms"] *= 1 + 0.1 * k  # the machine's state in round k, shared
                if side == "head" and head_env:
                    for col, value in head_env.items():
                        df[col] = value
                if edit:
                    edit(df)
                df.to_parquet(f, index=False)
    (root / "ab.json").write_text(json.dumps({"base": "HEAD~1 (abc)", "head": "working tree (def)",
                                              "rounds": n, "seconds": 1.0}))
    return root


def verdict(tmp_path, capsys, ab):
    code = compare_main(["--ab", str(ab), "--out", str(tmp_path / "v.md"), "--history", str(tmp_path / "hist")])
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_ab_identical_passes_and_names_both_sides(store, tmp_path, capsys):
    code, out = verdict(tmp_path, capsys, make_ab(tmp_path / "ab", store))
    assert code == 0 and "no regression" in out and "REGRESSION" not in out
    assert "HEAD~1 (abc)" in out and "grad_norm" in out and "step time lstm" in out


@pytest.mark.slow
def test_ab_flags_the_slowed_cell_and_nothing_else(store, tmp_path, capsys):
    def slow_gru(df):
        if "time_ms" in df and (df["cell"] == "gru").all():
            df["time_ms"] *= 1.12
    code, out = verdict(tmp_path, capsys, make_ab(tmp_path / "ab", store, edit_head=slow_gru))
    assert code == 1
    flagged = [line for line in out.splitlines() if "| REGRESSION" in line]
    assert flagged and all("step time gru" in line for line in flagged)
    assert len(flagged) == 6  # 3 lengths x 2 directions, every gru point, no other cell


@pytest.mark.slow
def test_ab_fails_closed_on_missing_and_overflowed_points(store, tmp_path, capsys):
    ab = make_ab(tmp_path / "ab", store)
    for f in (ab / "head" / "r2").glob("*.parquet"):
        df = pd.read_parquet(f)
        if (df["cell"] == "lstm").all() and df["measure"].iloc[0] == "throughput":
            f.unlink()
        elif df["measure"].iloc[0] == "gradients" and (df["cell"] == "gru").all() and df["seq_len"].iloc[0] == 20:
            df["status"], df["grad_norm"] = "overflow", np.inf
            df.to_parquet(f, index=False)
    code, out = verdict(tmp_path, capsys, ab)
    assert code == 1
    assert out.count("missing from the candidate") == 6  # every lstm throughput point, by name
    assert "REGRESSION (point status overflow" in out and "gru" in out


@pytest.mark.slow
def test_ab_gradient_drift_is_a_correctness_regression(store, tmp_path, capsys):
    def drift(df):
        if "grad_norm" in df and (df["cell"] == "rnn").all():
            df["grad_norm"] *= 1 + 1e-7
    code, out = verdict(tmp_path, capsys, make_ab(tmp_path / "ab", store, edit_head=drift))
    assert code == 1 and "REGRESSION (correctness)" in out


@pytest.mark.slow
def test_ab_pairs_points_across_torch_builds_and_prints_what_differs(store, tmp_path, capsys):
    env = {"torch_version": "9.9.9", "onednn_version": "v9.0", "python_version": "3.99"}
    code, out = verdict(tmp_path, capsys, make_ab(tmp_path / "ab", store, head_env=env))
    assert code == 0, out
    assert "| torch_version | test | 9.9.9 | **differs**" in out
    assert "| onednn_version |  | v9.0 | **differs**" in out


@pytest.mark.slow
def test_ab_new_head_points_are_listed_not_judged(store, tmp_path, capsys):
    ab = make_ab(tmp_path / "ab", store)
    for k in (1, 2, 3):
        extra = tmp_path / "extra"
        write_throughput(extra)
        for f in extra.glob("*.parquet"):
            df = pd.read_parquet(f)
            df["cell"] = "mingru"
            df.to_parquet(ab / "head" / f"r{k}" / ("n" + f.name), index=False)
        shutil.rmtree(extra)
    code, out = verdict(tmp_path, capsys, ab)
    assert code == 0 and "New in head, not judged (6)" in out and "mingru" in out


def test_ab_without_ab_json_is_unusable(tmp_path, capsys):
    (tmp_path / "ab").mkdir()
    assert compare_main(["--ab", str(tmp_path / "ab")]) == 2
    assert "ab.json missing" in capsys.readouterr().err


@pytest.mark.slow
def test_history_is_appended_per_run_and_drawn(store, tmp_path, capsys):
    def slow_gru(df):
        if "time_ms" in df and (df["cell"] == "gru").all():
            df["time_ms"] *= 1.12
    verdict(tmp_path, capsys, make_ab(tmp_path / "a1", store))
    verdict(tmp_path, capsys, make_ab(tmp_path / "a2", store, edit_head=slow_gru))
    files = sorted((tmp_path / "hist").glob("*.parquet"))
    assert len(files) == 2
    assert history_main([str(tmp_path / "hist"), "--out", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "h.png").stat().st_size > 10_000
    rows = [line for line in out.splitlines() if "| ab " in line]
    assert [int(line.split("|")[6]) for line in rows] == [0, 6]  # regressions per run, oldest first


def test_history_without_runs_says_so(tmp_path, capsys):
    assert history_main([str(tmp_path / "none")]) == 2
    assert "no history" in capsys.readouterr().err


def run_ab(*args):
    return subprocess.run([sys.executable, "-m", "bench.ab", *args], text=True, capture_output=True)


def test_ab_runner_refuses_unknown_ref_and_interpreter(tmp_path):
    r = run_ab("--base", "no-such-ref-xyz", "--out", str(tmp_path / "ab"))
    assert r.returncode == 2 and "no-such-ref-xyz" in r.stderr
    r = run_ab("--base-python", "/no/such/python", "--out", str(tmp_path / "ab"))
    assert r.returncode == 2 and "cannot run the suite there" in r.stderr
    r = run_ab("--base", "HEAD", "--rounds", "2")
    assert r.returncode == 2 and "at least 3" in r.stderr
    assert not (tmp_path / "ab").exists()  # refused before any work


def test_points_expand_a_suite_as_the_sweeper_does():
    from bench.cells.registry import REGISTRY
    from bench.run.suite import points
    pts = points("ci")
    n = len(REGISTRY)
    assert len(pts) == n * 2 + n * 2 * 2  # ci_gradients: cell x direction; ci_throughput: x backend
    assert all(p[0] in ("experiment=ci_gradients", "experiment=ci_throughput") for p in pts)
    assert ["experiment=ci_throughput", "model.cell=ref_lstm", "measure.backend=native",
            "model.bidirectional=True"] in pts


def test_every_registered_cell_is_in_the_ci_presets():
    """A change to any cell is seen by CI: each ci preset sweeps every registered cell."""
    import yaml

    from bench.cells.registry import REGISTRY, sweep_value
    from bench.run.suite import EXPERIMENTS, members, points
    for member in members("ci"):
        params = yaml.safe_load((EXPERIMENTS / f"{member}.yaml").read_text())["hydra"]["sweeper"]["params"]
        assert params["model.cell"] == "registered", member  # not a hand-written list that a new cell misses
        assert sweep_value("model.cell", params["model.cell"]).split(",") == list(REGISTRY)
    swept = {o.split("=", 1)[1] for p in points("ci") for o in p if o.startswith("model.cell=")}
    assert swept == set(REGISTRY)
