"""The report on a small synthetic store with known answers; empty and corrupt stores."""
import re

import pandas as pd
import pytest

from analysis.reduce.fits import half_life
from analysis.report.__main__ import main as report_main
from analysis.report.verdicts import CLAIM_KEYS
from tests.synthetic import write_all


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = write_all(tmp_path_factory.mktemp("store"))
    out = tmp_path_factory.mktemp("report")
    assert report_main([str(store), "--out", str(out)]) == 0
    return store, out


def test_report_links_resolve_and_files_exist(built):
    _, out = built
    text = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links, "no links in report"
    for link in links:
        assert (out / link).is_file(), link
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert f'<a id="{anchor}"></a>' in text, anchor
    assert list((out / "figures").glob("*.svg")) and list((out / "tables").glob("*.md"))


def test_scorecard_gives_each_claim_a_verdict_by_its_rule(built):
    """The synthetic store's known answers: the LSTM decays at -0.1 a step, the RNN at -0.3
    (reach: supported at every T); an LSTM step costs 3x an RNN's (slower: supported) and a
    bidirectional one 2x (bidir: supported); claims the store does not measure say where they are."""
    _, out = built
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")  # what make docs gathers
    assert list(v.index) == CLAIM_KEYS
    assert v.at["reach", "verdict"] == "supported" and "T=20; T=40; T=80" in v.at["reach", "scope"]
    assert "lstm 3.01 [3.01, 3.01] vs rnn 1 [1, 1]" in v.at["reach", "figure"]
    assert v.at["slower", "verdict"] == "supported" and "3.00x [3.00, 3.00]" in v.at["slower", "figure"]
    assert "one run's repetitions only" in v.at["slower", "figure"]  # no rounds in this store: labelled
    assert v.at["bidir", "verdict"] == "supported" and "2.00x" in v.at["bidir", "figure"]
    assert v.at["gates", "verdict"] == "not measured" and v.at["long_lag", "verdict"] == "not measured"
    card = (out / "report.md").read_text().split("## Scorecard")[1].split("<a id")[0]
    assert "not in this store: `make bench EXP=long_range_fair`; committed verdict: `results/reference/fair`" in card
    assert "| **supported** |" in card and "Rules" in card


def test_half_life_table_values(built):
    _, out = built
    t = pd.read_csv(out / "tables" / "half_lives.csv")
    for cell, decay in {"rnn": -0.3, "lstm": -0.1, "gru": -0.05}.items():
        rows = t[t["cell"] == cell]
        assert rows["decay_per_step"].to_numpy() == pytest.approx(decay, rel=1e-9)
        assert rows["jacobian_decay_per_step"].to_numpy() == pytest.approx(1.1 * decay, rel=1e-9)
        assert rows["gate_decay_per_step"].to_numpy() == pytest.approx(1.5 * decay, rel=1e-9)
    spread = pd.read_csv(out / "tables" / "decay_vs_seq_len.csv")
    assert spread["rel_spread_T>=100"].isna().all()  # one lag >= 100 in the synthetic store
    assert spread.filter(like="T=").to_numpy().ravel().tolist() == pytest.approx(
        [d for d in (-0.05, -0.05, -0.05, -0.1, -0.1, -0.1, -0.3, -0.3, -0.3)])


@pytest.mark.slow
def test_report_is_reproducible(built, tmp_path):
    store, out = built
    assert report_main([str(store), "--out", str(tmp_path)]) == 0
    for f in (out / "figures").glob("*.svg"):
        assert f.read_bytes() == (tmp_path / "figures" / f.name).read_bytes(), f.name
    assert (out / "tables" / "half_lives.csv").read_text() == (tmp_path / "tables" / "half_lives.csv").read_text()


def test_empty_or_missing_store_says_run_make_bench(tmp_path, capsys):
    assert report_main([str(tmp_path / "missing")]) == 1
    assert "run `make bench` first" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "run `make bench` first" in err and len(err.strip().splitlines()) == 1


def test_corrupt_file_is_named_and_skipped(tmp_path, capsys):
    from tests.synthetic import write_gradients
    store = tmp_path / "store"
    write_gradients(store)
    bad = store / "0123456789abcdef.parquet"
    bad.write_bytes(b"PAR1 truncated")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    assert report_main([str(store), "--out", str(tmp_path / "r")]) == 0
    assert str(bad) in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before  # nothing changed


def test_tables_never_pool_points_that_differ(tmp_path):
    """A store that mixes CPU and GPU, float32 and float64, two batch sizes and two training
    step budgets: every table keeps them apart, and the scorecard names each."""
    from tests.synthetic import DECAY, _config, _write, samples
    store = tmp_path / "store"
    for device, dtype, batch in [("cpu", "float64", 4), ("cuda", "float32", 4), ("cpu", "float64", 8)]:
        for cell in ("rnn", "lstm"):
            d = DECAY[cell] * (2 if device == "cuda" else 1) * (3 if batch == 8 else 1)
            point = {**_config(cell, 40, "gradients", forget_bias=0.0 if cell == "lstm" else None),
                     "device": device, "dtype": dtype, "batch_size": batch}
            _write(store, point, [{"measure": "gradients", "condition": "init", "layer": 0, "t": t,
                                   "distance": 39 - t, "grad_norm": 10 ** (d * (39 - t)),
                                   "log10_grad_norm_samples": samples(d * (39 - t))} for t in range(40)])
    for steps in (100, 300):
        for seed in (0, 1):
            point = _config("lstm", 50, "long_range", seed, measure_task="adding", measure_steps=steps)
            _write(store, point, [{"measure": "long_range", "task": "adding", "step": s, "test_loss": 0.005
                                   if steps == 300 and s == steps else 0.2, "solved": steps == 300 and s == steps,
                                   "elapsed_s": 1.0, "baseline_loss": 1 / 6, "train_loss": 0.2}
                                  for s in (0, steps)])
    out = tmp_path / "report"
    assert report_main([str(store), "--out", str(out)]) == 0
    hl = pd.read_csv(out / "tables" / "half_lives.csv")
    assert len(hl) == 6 and {"device", "dtype", "batch_size"} <= set(hl.columns)
    assert sorted(hl["decay_per_step"].round(6)) == sorted(
        round(DECAY[c] * f, 6) for c in ("rnn", "lstm") for f in (1, 2, 3))
    success = pd.read_csv(out / "tables" / "long_range_success.csv")
    assert sorted(zip(success["measure_steps"], success["solved"])) == [(100, 0), (300, 2)]
    reach = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim").at["reach", "scope"]
    for name in ("device=cuda", "batch_size=8", "device=cpu"):  # three configurations, judged apart
        assert name in reach, name


def test_report_warns_when_a_store_mixes_measure_versions(tmp_path, capsys):
    from tests.synthetic import write_gradients
    store = tmp_path / "store"
    write_gradients(store)
    first = sorted(store.glob("*.parquet"))[0]
    df = pd.read_parquet(first)
    df["measure_version"] = 1
    df.to_parquet(first)
    assert report_main([str(store), "--out", str(tmp_path / "r")]) == 0
    assert "mixes measure versions for gradients: 1, unversioned" in capsys.readouterr().err
    assert "**Warning:** the store mixes measure versions" in (tmp_path / "r" / "report.md").read_text()


def test_initialisation_study_gain_figure_table_and_claim(tmp_path):
    from tests.synthetic import write_init_study
    store, out = write_init_study(tmp_path / "s"), tmp_path / "r"
    assert report_main([str(store), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert (out / "figures" / "decay_vs_gain.png").exists()
    assert "Smallest gain whose whole interval grows: tanh 1.2" in text
    t = pd.read_csv(out / "tables" / "half_life_by_init.csv")
    chrono = t[(t["cell"] == "lstm") & (t["init"] == "chrono")].iloc[0]
    assert chrono["decay_per_step"] == pytest.approx(-0.01, rel=1e-6)
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    # the best inits: chrono LSTM log10(2)/0.01 = 30.1 steps, orthogonal tanh RNN log10(2)/0.05 at gain 1
    assert v.at["init", "verdict"] == "supported"
    assert "lstm (chrono) 30.1" in v.at["init", "figure"] and "rnn (orthogonal+tanh) 6.02" in v.at["init", "figure"]
    assert half_life(0.05, 0.04, 0.06, 59)["half_life"].startswith("grows: x2 every 6.02")


@pytest.mark.slow
def test_fair_comparison_reports_fresh_seeds_at_the_tuned_recipe(tmp_path):
    """The chosen recipe comes from the tuning seeds; the figures from the reported seeds only;
    the long-lag verdict flips when the reported RNN runs solve as the LSTM's do."""
    from tests.synthetic_learning import write_fair_study
    for flip, verdict in ((False, "supported"), (True, "contradicted")):
        store, out = write_fair_study(tmp_path / f"s{flip}", rnn_reported_solves=flip), tmp_path / f"r{flip}"
        assert report_main([str(store), "--out", str(out)]) == 0
        t = pd.read_csv(out / "tables" / "fair_comparison.csv")
        a = t[t["protocol"].str.startswith("A")].set_index("cell")
        assert a.at["lstm", "measure_lr"] == 0.01 and a.at["lstm", "solved"] == 10 and a.at["lstm", "seeds"] == 10
        assert a.at["rnn", "measure_lr"] == 0.01  # the lower validation loss of two unsolved candidates
        b = t[t["protocol"].str.startswith("B")].set_index("cell")
        assert b.at["rnn", "init"] == "identity" and b.at["rnn", "solved"] == 5
        v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
        assert v.at["long_lag", "verdict"] == verdict
        assert v.at["fair", "verdict"] == "mixed"  # 10/10 against 5/10: the intervals overlap, neither way
        assert "cannot tell" in v.at["fair", "scope"]
        assert "too short" in (out / "report.md").read_text()  # a 300-step budget, medians of 200


@pytest.mark.slow
def test_seeds_continued_past_the_budget_are_shown_beside_not_counted_in_the_reported(tmp_path):
    from tests.synthetic_learning import write_fair_study
    store, out = write_fair_study(tmp_path / "s", continued=True), tmp_path / "r"
    assert report_main([str(store), "--out", str(out)]) == 0
    t = pd.read_csv(out / "tables" / "fair_comparison.csv")
    a = t[t["protocol"].str.startswith("A")].set_index("cell")
    assert a.at["rnn", "solved"] == 0 and a.at["rnn", "seeds"] == 10 and a.at["rnn", "budget"] == 300
    assert a.at["rnn", "continued_budget"] == 900 and a.at["rnn", "continued_solved"] == 5
    assert pd.isna(a.at["lstm", "continued_budget"])
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    assert v.at["long_lag", "verdict"] == "supported"       # the rule reads the budget it states
    assert "rnn, the 10 unsolved seeds to 900 steps: 5 solved" in v.at["long_lag", "figure"]


def test_long_range_gradient_rows_are_versioned_with_long_range():
    """long_range (v3) stores measure=gradients rows beside the gradients measure's own (v2):
    not a mix of versions; two versions of one measure are."""
    from analysis.load import version_warnings
    df = pd.DataFrame({"measure": ["gradients", "gradients", "long_range"],
                       "measure_task": [None, "adding", "adding"], "measure_version": [2, 3, 3],
                       "torch_version": ["2.13.0"] * 3})
    assert version_warnings(df) == []
    df.loc[1, "measure_task"] = None
    assert version_warnings(df) and "gradients: 2, 3" in version_warnings(df)[0]


def test_crossover_figure_ratios_and_claim(tmp_path):
    from tests.synthetic import write_crossover
    store, out = write_crossover(tmp_path / "s"), tmp_path / "r"
    assert report_main([str(store), "--out", str(out)]) == 0
    assert (out / "figures" / "crossover.png").exists()
    r = pd.read_csv(out / "tables" / "crossover_ratios.csv").set_index(["comparison", "seq_len"])
    assert r.at[("mingru scan / lstm onednn", 64), "ratio"] == pytest.approx(2.64 / 6.4)
    assert r.at[("mingru scan / mingru loop", 16), "ratio"] == pytest.approx(2.16 / 3.2)
    assert (r["ratio_lo"] <= r["ratio"]).all() and (r["ratio"] <= r["ratio_hi"]).all()
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    assert v.at["scan", "scope"].count("at T=1024") == 1  # one diagonal cell, at the longest seq_len
    assert (v.at["scan", "verdict"] == "supported") == (r.at[("mingru scan / lstm onednn", 1024), "ratio_hi"] < 1)


def test_crossover_names_every_path_and_the_roofline_is_computed(tmp_path):
    """Points with model.path (new records) beside points with only model.scan (old records):
    each path is compared with the loop and the fused LSTM, and the roofline bound is the FLOPs
    at the measured peak plus the compulsory bytes at the measured bandwidth."""
    from tests.synthetic import _config, _write
    store, out = tmp_path / "s", tmp_path / "r"
    for T in (16, 64, 256, 1024):
        for cell, backend, extra, ms in (("lstm", "onednn", {}, 0.1 * T),
                                         ("mingru", "native", {"scan": False}, 0.2 * T),  # stored before paths
                                         ("mingru", "native", {"path": "chunked", "chunk": 64}, 0.05 * T)):
            point = _config(cell, T, "throughput", dtype="float32", measure_backend="auto", measure_tf32=False, **extra)
            rows = [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": ms * f, "flops": 1e6,
                     "bytes": 4e6, "min_bytes": 1e6, "calib_bytes_per_s": 1e9, "peak_mem_bytes": 1000 * T,
                     "rel_iqr": 0.01, "noisy": False, "calib_flops_per_s": 1e10, "calib_n": 512,
                     "tokens": 4 * T, "attempt": 1, "params": 100}
                    for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
            _write(store, point, rows, backend=backend)
    assert report_main([str(store), "--out", str(out)]) == 0
    r = pd.read_csv(out / "tables" / "crossover_ratios.csv").set_index(["comparison", "seq_len"])
    assert r.at[("mingru chunked / mingru loop", 64), "ratio"] == pytest.approx(0.25)
    assert r.at[("mingru chunked / lstm onednn", 1024), "ratio"] == pytest.approx(0.5)
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    assert v.at["fastest", "verdict"] == "supported" and "mingru chunked at T=1024" in v.at["fastest", "scope"]
    pts = pd.read_csv(out / "tables" / "throughput_points.csv")
    chunked = pts[(pts["path"] == "chunked") & (pts["seq_len"] == 1024)].iloc[0]
    assert chunked["roofline_ms"] == pytest.approx((1e6 / 1e10 + 1e6 / 1e9) * 1e3)
    assert chunked["roofline_fraction"] == pytest.approx(chunked["roofline_ms"] / 51.2)
    assert chunked["bytes_per_min_bytes"] == pytest.approx(4.0)
    assert set(pts.loc[pts["cell"] == "mingru", "path"]) == {"loop", "chunked"}
