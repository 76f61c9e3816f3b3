"""Training that blows up, read as what it is (issue 29): a run whose loss went non-finite is
recorded where it diverged and reported as diverged; a gradient profile that is identically zero
(a saturated model) has no half-life, not "> N steps"; a store of diverged runs only still reports.
The runs are real: lr 1e6 on tiny models (a relu RNN diverges at once, a tanh LSTM saturates)."""
import pandas as pd
import pytest

from analysis.load import load_store
from analysis.reduce.gradients import interval_table, summarize
from analysis.report.build import build
from bench.run.runner import resolve, run_point
from bench.run.store import point_path

BLOW_UP = ["measure=long_range", "measure.lr=1000000.0", "measure.clip=1e9", "measure.steps=20",
           "measure.eval_every=10", "measure.test_size=16", "data.batch_size=4", "model.hidden_size=8",
           "progress=false"]
DIVERGES = ["model.cell=rnn", "model.nonlinearity=relu"]
SATURATES = ["model.cell=lstm"]


def run(make_cfg, store, *overrides) -> pd.DataFrame:
    cfg = make_cfg([*BLOW_UP, f"results_dir={store}", *overrides])
    assert run_point(cfg) == "ok"  # a diverged training is a measurement, not a failure
    return pd.read_parquet(point_path(store, resolve(cfg).chash))


@pytest.fixture
def diverged_store(make_cfg, tmp_path):
    store = tmp_path / "diverged"
    for seed in (0, 1):
        run(make_cfg, store, *DIVERGES, "data.seq_len=20", f"seed={seed}")
        run(make_cfg, store, *DIVERGES, "measure.task=parity", "data.seq_len=8", f"seed={seed}")
    return store


def test_a_diverged_run_is_recorded_where_it_diverged(make_cfg, tmp_path):
    df = run(make_cfg, tmp_path, *DIVERGES, "data.seq_len=20")
    last = df[df["measure"] == "long_range"].sort_values("step").iloc[-1]
    assert last["diverged"] and last["diverged_step"] == last["step"]
    assert set(df.loc[df["measure"] == "gradients", "condition"]) == {"init"}  # no trained profile


def test_an_identically_zero_profile_has_no_half_life(make_cfg, tmp_path):
    df = run(make_cfg, tmp_path, *SATURATES, "data.seq_len=20")
    g = df[(df["measure"] == "gradients") & (df["layer"] == 0)]
    assert (g.loc[g["condition"] == "trained", "grad_norm"] == 0).all()  # saturated: nothing flows back
    s = summarize(g)
    t = interval_table(s, ["cell", "condition", "loss_kind"]).set_index(["condition", "loss_kind"])
    assert t.loc[("trained", "random_projection"), "half_life"] == "none: the gradient is identically zero"
    assert t.loc[("init", "random_projection"), "half_life"][0].isdigit()  # at init it decays, measurably


def test_a_store_of_diverged_runs_only_still_reports_them_as_diverged(diverged_store, tmp_path):
    df = load_store(diverged_store)
    assert df.loc[df["measure"] == "long_range"].groupby("config_hash")["diverged"].any().all()
    report = build(diverged_store, tmp_path / "report").read_text()
    assert "a diverged seed (its loss went non-finite, or stayed blown up to its end) counts as unsolved" in report
    assert "| seeds diverged (at step)" in report and "| 2 (" in report
    assert "2 diverged (at step" in report  # the modern section's parity summary
    assert "No figure of the final test loss against lag" in report
