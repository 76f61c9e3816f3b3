"""Ratios timed side by side (bench/run/rounds.py, analysis/reduce/ratios.py): every round stored
as its own point, the ratio's interval taken over rounds, and that interval covering a drift of the
machine between rounds that the within-run bootstrap does not see."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis.reduce.ratios import interleaved_ratio, ratio_rows, repetition_ratio, rounds_ratio, simultaneous
from tests.conftest import run_cli


@pytest.mark.slow
def test_rounds_store_every_round_and_the_ratio_says_it_covers_them(tmp_path):
    store = tmp_path / "store"
    r = run_cli(["bench.run.suite", "rounds_smoke", f"results_dir={store}", "progress=false"])
    assert r.returncode == 0, r.stderr[-1500:]
    assert "round 3/3" in r.stderr
    assert "round 1/3, 2 points (and 2 warm-up points, not stored)" in r.stderr, r.stderr  # once, before round 1
    assert "round 2/3, 2 points," in r.stderr
    from analysis.load import load_store
    from analysis.reduce.throughput import by_config, points
    df = load_store(store)
    p = points(df[df["measure"] == "throughput"])
    assert sorted(p["measure_round"].astype(int)) == [1, 1, 2, 2, 3, 3]
    one = ratio_rows(p, "cell", "lstm", "rnn")
    assert len(one) == 1 and one["rounds"].iloc[0] == 3 and one["interval_covers"].iloc[0] == "rounds"
    assert one["ratio_lo"].iloc[0] <= one["ratio"].iloc[0] <= one["ratio_hi"].iloc[0]
    assert len(by_config(p)) == 2 and set(by_config(p)["rounds"]) == {3}
    # a re-run resumes: every round is stored, nothing is measured again
    r = run_cli(["bench.run.suite", "rounds_smoke", f"results_dir={store}", "progress=false"])
    assert r.returncode == 0 and len(list(store.glob("*.parquet"))) == 6
    assert "warm-up" not in r.stderr  # nothing to measure, nothing to warm up


def frame(rounds):
    """Synthetic points rows: [(round, cell, step times)] -> the columns ratio_rows reads."""
    return pd.DataFrame([{"cell": c, "measure_round": r, "hidden_size": 64, "seq_len": 100,
                          "step_times": np.asarray(t), "rel_iqr": 0.01, "noisy": False}
                         for r, c, t in rounds])


def test_the_interval_over_rounds_covers_drift_between_rounds():
    """Each round the machine runs at another speed (x1.0 to x1.3) for both sides, and the true
    ratio is 2: the per-round ratios agree, so the estimate is 2 with a tight interval; a one-run
    bootstrap pooled over the rounds mixes the speeds into each side and is wider and off."""
    rng = np.random.default_rng(0)
    rows = []
    for r, speed in enumerate([1.0, 1.3, 1.1, 1.25, 1.05], start=1):
        rows += [(r, "rnn", speed * (10 + rng.normal(0, 0.1, 20))), (r, "lstm", speed * (20 + rng.normal(0, 0.2, 20)))]
    out = ratio_rows(frame(rows), "cell", "lstm", "rnn", ["hidden_size", "seq_len"])
    assert out["interval_covers"].iloc[0] == "rounds"
    assert 1.98 < out["ratio_lo"].iloc[0] <= out["ratio_hi"].iloc[0] < 2.02
    a = np.concatenate([t for _, c, t in rows if c == "lstm"])
    b = np.concatenate([t for _, c, t in rows if c == "rnn"])
    _, lo, hi = repetition_ratio(a, b)
    assert hi - lo > out["ratio_hi"].iloc[0] - out["ratio_lo"].iloc[0]


def test_a_ratio_that_moves_between_rounds_gets_a_wide_interval():
    """When the ratio itself differs from round to round (one side slowed in some rounds), the
    interval over rounds widens to cover it, where repetitions within each round are tight."""
    rng = np.random.default_rng(1)
    pairs = [(10 + rng.normal(0, 0.05, 20), f * (20 + rng.normal(0, 0.1, 20))) for f in (1.0, 1.2, 0.9, 1.1, 1.0)]
    for judge in (interleaved_ratio, rounds_ratio):
        ratio, lo, hi = judge(pairs)
        assert lo < 1.9 and hi > 2.1 and lo < ratio < hi


def test_three_rounds_each_below_one_are_not_yet_a_95_interval_below_one():
    """Per-round ratios 0.5, 0.6 and 0.95: below 1 in every round, which a bootstrap over the three
    rounds (in effect their range: 75% coverage) would call faster; the t interval over the rounds'
    log ratios spans 1. Three rounds agreeing closely stay wholly below 1."""
    def rounds(ratios):
        return [(np.full(5, 10.0), np.full(5, 10.0 * f)) for f in ratios]
    ratio, lo, hi = rounds_ratio(rounds([0.5, 0.6, 0.95]))
    assert interleaved_ratio(rounds([0.5, 0.6, 0.95]))[2] < 1 < hi
    assert ratio == pytest.approx((0.5 * 0.6 * 0.95) ** (1 / 3))
    assert rounds_ratio(rounds([0.5, 0.55, 0.6]))[2] < 1


def test_the_t_interval_over_rounds_covers_the_true_ratio_95_times_in_100():
    """Coverage checked by simulation: 3 rounds, each round's log ratio drawn around log 2 with
    drift between rounds and jitter within; the interval holds 2 in about 95% of 2000 studies."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(2000):
        pairs = [(10 + rng.normal(0, 0.2, 5), 20 * np.exp(rng.normal(0, 0.1)) + rng.normal(0, 0.4, 5))
                 for _ in range(3)]
        _, lo, hi = rounds_ratio(pairs)
        hits += lo <= 2 <= hi
    assert 0.93 < hits / 2000 < 0.97


def test_the_best_of_six_paths_judged_on_its_own_rounds_keeps_the_family_error_at_5_in_100():
    """Six paths, none faster than the reference (true ratio 1), five rounds each: picking the
    best and reading its plain t interval calls one faster in about 1 - 0.975^6 = 14% of studies;
    made simultaneous over the six (`simultaneous`, Bonferroni) it stays under 2.5% + noise."""
    rng = np.random.default_rng(4)
    plain = joint = 0
    for _ in range(2000):
        paths = [rounds_ratio([(np.full(3, 10.0), np.full(3, 10.0 * np.exp(rng.normal(0, 0.1)))) for _ in range(5)])
                 for _ in range(6)]
        plain += min(hi for _, _, hi in paths) < 1
        joint += min(simultaneous(r, lo, hi, 5, 6)[1] for r, lo, hi in paths) < 1
    assert plain / 2000 > 0.10 and joint / 2000 < 0.04


def test_simultaneous_leaves_one_path_alone_and_widens_around_the_ratio_in_log_space():
    assert simultaneous(0.8, 0.7, 0.9, 5, 1) == (0.7, 0.9)
    lo, hi = simultaneous(0.8, 0.7, 0.9, 5, 6)
    assert lo < 0.7 and hi > 0.9
    # each side's log distance scaled by t(1 - 0.05/12, 4 df) / t(0.975, 4 df) = 4.851 / 2.776
    assert math.log(0.8 / lo) / math.log(0.8 / 0.7) == pytest.approx(1.747, abs=1e-3)
    assert math.log(hi / 0.8) / math.log(0.9 / 0.8) == pytest.approx(1.747, abs=1e-3)


def test_rounds_left_out_as_noisy_never_turn_into_a_pooled_ratio():
    """Five rounds, three of one side's flagged noisy (and left out): two common rounds cannot
    give an interval over rounds, and pooling the rest would divide points timed rounds apart."""
    rows = [(r, c, [10.0 * (1 + (c == "lstm")), 10.1, 9.9]) for r in range(1, 6) for c in ("rnn", "lstm")]
    quiet = [x for x in rows if not (x[1] == "lstm" and x[0] in (2, 3, 5))]
    assert ratio_rows(frame(quiet), "cell", "lstm", "rnn", ["hidden_size"]).empty
    assert ratio_rows(frame(rows), "cell", "lstm", "rnn", ["hidden_size"])["interval_covers"].iloc[0] == "rounds"


def test_without_rounds_the_interval_is_labelled_as_one_run():
    rows = [(None, "rnn", [10.0, 10.1, 9.9]), (None, "lstm", [20.0, 20.2, 19.8])]
    out = ratio_rows(frame(rows), "cell", "lstm", "rnn", ["hidden_size"])
    assert out["interval_covers"].iloc[0] == "repetitions" and out["rounds"].iloc[0] == 1


def test_a_rounds_preset_that_is_a_suite_expands_to_its_members_points():
    """classic_throughput (`rounds: 5`, a suite of three presets) is measured as its members'
    points, each round; the preset itself is never a point (it would be refused as a suite)."""
    from bench.run.suite import members, points
    assert members("classic_throughput") == ["classic_throughput"]  # the suite runs it as a whole
    pts = points("classic_throughput")
    named = {o for p in pts for o in p if o.startswith("experiment=")}
    assert named == {"experiment=throughput_quick", "experiment=throughput_fastrnns",
                     "experiment=throughput_deepbench_512"}
    assert points("reference_classic")[: len(pts)] == pts


def test_an_invalid_point_in_a_rounds_preset_is_one_line_before_any_work(capsys, tmp_path):
    from bench.run.rounds import main
    assert main(["throughput_quick", "--rounds", "3", "model.hidden_size=0", f"results_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size=0" in err and "nothing was measured" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.parquet"))


def test_the_sides_of_a_ratio_are_measured_back_to_back():
    """A round measures the points a ratio compares together (equal in every key but a side's:
    cell, path, backend, threads, ...), so its two sides are timed seconds apart; a point of
    another shape is not put between them."""
    from bench.run.rounds import side_by_side
    keyed = [([f"c={c}", f"T={T}"], {"cell": c, "seq_len": T, "hidden_size": 64})
             for c in ("lstm", "mingru", "gru") for T in (16, 256, 4096)]
    order = side_by_side(keyed)
    assert order[:3] == [["c=lstm", "T=16"], ["c=mingru", "T=16"], ["c=gru", "T=16"]]
    assert [o[1] for o in order] == ["T=16"] * 3 + ["T=256"] * 3 + ["T=4096"] * 3
    # another hidden size is another group, even at the same length
    keyed.append((["c=lstm", "T=16", "H=128"], {"cell": "lstm", "seq_len": 16, "hidden_size": 128}))
    assert side_by_side(keyed)[-1] == ["c=lstm", "T=16", "H=128"]


@pytest.mark.slow
def test_the_crossover_is_measured_length_by_length():
    """The crossover preset: every point at one length runs before any point of the next, and
    each length's group holds the fused LSTM and every diagonal path (the sides its ratios divide)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bench.config.schema import register_configs
    from bench.run.rounds import side_by_side
    from bench.run.runner import resolve
    from bench.run.suite import EXPERIMENTS, points
    register_configs()
    keyed = []
    for p in points("throughput_crossover"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(EXPERIMENTS.parent), version_base="1.3"):
            keyed.append((p, resolve(compose(config_name="config", overrides=p)).point))
    GlobalHydra.instance().clear()
    lengths = [dict(o.split("=", 1) for o in p)["data.seq_len"] for p in side_by_side(keyed)]
    runs = [lengths[0]] + [b for a, b in zip(lengths, lengths[1:]) if a != b]
    assert len(runs) == len(set(lengths)), f"a length's points are split: {runs}"


@pytest.mark.slow
def test_ctrl_c_in_rounds_is_one_line_and_the_rounds_resume(tmp_path):
    import time

    """A time limit's SIGINT (scripts/gpu_run.sh) or Ctrl-C between points: one line, exit 130;
    the same command then measures only the rounds not stored."""
    from tests.conftest import interrupt_after_first_record
    store = tmp_path / "store"
    code, err = interrupt_after_first_record(["bench.run.rounds", "rounds_smoke", "--rounds", "3",
                                              f"results_dir={store}", "progress=false"], store)
    if code == 0:
        pytest.skip("the rounds finished before the interrupt landed")
    assert code == 130, err
    assert err.rstrip().splitlines()[-1].startswith("bench.run.rounds: rounds_smoke: interrupted; the same command resumes")
    assert "Traceback" not in err
    stored = len(list(store.glob("*.parquet")))
    resumed = time.time()
    r = run_cli(["bench.run.rounds", "rounds_smoke", "--rounds", "3", f"results_dir={store}", "progress=false"])
    assert r.returncode == 0 and len(list(store.glob("*.parquet"))) == 6 and stored < 6
    # rnn and lstm are one group (they differ only in a side): the round the interrupt cut is
    # measured whole by the second run, so its ratio never divides points of two runs
    from analysis.load import load_store
    df = load_store(store)
    for _, g in df.groupby("measure_round"):
        written = [(store / f"{h}.parquet").stat().st_mtime for h in g["config_hash"].unique()]
        assert len(written) == 2 and (min(written) >= resumed or max(written) < resumed)
