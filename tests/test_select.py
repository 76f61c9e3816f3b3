"""Nested selection (analysis/select.py): the rule, that it never reads the reported seeds, the
edge-of-grid flag, and the whole stage end to end through bench.suite."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.select import REPORTED_FROM, RULES, choose, chosen_runs, continued_runs
from tests.conftest import run_cli


def runs_frame(outcomes, reported=None):
    """outcomes: {(cell, lr): [(solved, steps, val), ...] for tuning seeds}; reported likewise."""
    rows = []
    for part, base in ((outcomes, 0), (reported or {}, REPORTED_FROM)):
        for (cell, lr), seeds in part.items():
            for k, (solved, steps, val) in enumerate(seeds):
                rows.append({"task": "adding", "cell": cell, "seq_len": 100, "measure_lr": lr, "seed": base + k,
                             "solved": solved, "steps_to_solve": steps if solved else np.nan,
                             "final_val_loss": val, "diverged": not np.isfinite(val), "budget": 8000,
                             "steps": steps, "forget_bias": np.nan, "forget_gate": None, "hidden_size": 64,
                             "measure_optimizer": "adam", "init": "default", "param_budget": np.nan})
    return pd.DataFrame(rows)


TUNING = {("lstm", 1e-3): [(True, 3000, 0.01), (False, 8000, 0.16)],
          ("lstm", 1e-2): [(True, 2000, 0.005), (True, 2500, 0.004)],
          ("lstm", 1e-1): [(False, 100, np.inf), (False, 100, np.inf)]}


def test_the_rule_ranks_solved_then_speed_then_validation():
    best = choose(runs_frame(TUNING), RULES["recipe"])
    assert len(best) == 1 and best["measure_lr"].iloc[0] == 1e-2 and bool(best["by_solve"].iloc[0])
    # the same solved fraction: the faster median wins
    tie = {("lstm", 1e-3): [(True, 3000, 0.01), (True, 3000, 0.01)], ("lstm", 1e-2): [(True, 2000, 0.02), (True, 2000, 0.02)]}
    assert choose(runs_frame(tie), RULES["recipe"])["measure_lr"].iloc[0] == 1e-2
    # nothing solved: the lowest mean validation loss, flagged as not earned by a solve
    none = {("lstm", 1e-3): [(False, 8000, 0.160)], ("lstm", 1e-2): [(False, 8000, 0.150)]}
    best = choose(runs_frame(none), RULES["recipe"])
    assert best["measure_lr"].iloc[0] == 1e-2 and not bool(best["by_solve"].iloc[0])


def test_the_choice_flips_when_the_tuning_evidence_flips():
    flipped = dict(TUNING)
    flipped[("lstm", 1e-3)] = [(True, 500, 0.001), (True, 600, 0.001)]
    assert choose(runs_frame(flipped), RULES["recipe"])["measure_lr"].iloc[0] == 1e-3


def test_selection_never_reads_the_reported_seeds():
    """Reported outcomes that would favour another candidate change nothing; only the reported
    runs of the chosen candidate are kept."""
    reported = {("lstm", 1e-3): [(True, 100, 0.0)] * 10, ("lstm", 1e-2): [(False, 8000, 0.2)] * 10}
    plain = choose(runs_frame(TUNING), RULES["recipe"])
    mixed = choose(runs_frame(TUNING, reported), RULES["recipe"])
    pd.testing.assert_frame_equal(plain, mixed)
    kept = chosen_runs(runs_frame(TUNING, reported), RULES["recipe"])
    assert len(kept) == 10 and (kept["measure_lr"] == 1e-2).all() and (kept["seed"] >= REPORTED_FROM).all()


def test_runs_continued_past_the_budget_are_kept_apart_from_the_reported():
    """A reported seed trained again for longer (select.overrides) is not a second reported run:
    chosen_runs keeps the runs under the tuning budget, continued_runs the longer ones."""
    reported = {("lstm", 1e-2): [(False, 8000, 0.16)] * 10}
    r = runs_frame(TUNING, reported)
    longer = r[r["seed"] >= REPORTED_FROM].assign(budget=24000, solved=True, steps_to_solve=12000.0)
    both = pd.concat([r, longer], ignore_index=True)
    kept, more = chosen_runs(both, RULES["recipe"]), continued_runs(both, RULES["recipe"])
    assert len(kept) == 10 and (kept["budget"] == 8000).all() and not kept["solved"].any()
    assert len(more) == 10 and (more["budget"] == 24000).all() and more["solved"].all()
    assert continued_runs(r, RULES["recipe"]).empty


def test_a_choice_on_the_edge_of_the_grid_is_flagged():
    assert bool(choose(runs_frame(TUNING), RULES["recipe"])["on_edge"].iloc[0]) is False
    edge = dict(TUNING)
    edge[("lstm", 1e-1)] = [(True, 1000, 0.001), (True, 1000, 0.001)]
    best = choose(runs_frame(edge), RULES["recipe"])
    assert best["measure_lr"].iloc[0] == 1e-1 and bool(best["on_edge"].iloc[0])


@pytest.mark.slow
def test_the_stage_end_to_end(tmp_path):
    """bench.suite on a selection preset: the tuning sweep, the choice, the reported seeds; the
    choice printed by analysis.select names one configuration per cell, without a seed."""
    store = tmp_path / "store"
    r = run_cli(["bench.run.suite", "selection_smoke", f"results_dir={store}", "progress=false"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 configurations chosen by rule recipe" in r.stderr
    df = pd.concat(pd.read_parquet(p) for p in store.glob("*.parquet"))
    seeds = sorted(df["seed"].unique())
    assert seeds == [0, 1, 100, 101]
    r = run_cli(["analysis.select", str(store), "--rule", "recipe", "--from", "selection_smoke_tune"])
    chosen = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(chosen) == 2 and all(not any(o.startswith("seed=") for o in c) for c in chosen)
    reported = df[(df["measure"] == "long_range") & (df["seed"] >= REPORTED_FROM)]
    for cell, g in reported.groupby("cell"):
        lr = [o for c in chosen if f"model.cell={cell}" in c for o in c if o.startswith("measure.lr=")]
        assert g["measure_lr"].unique().tolist() == [float(lr[0].split("=")[1])]
    # continued: the chosen configurations with an unsolved reported seed, at 60 steps instead of 40;
    # training is seeded, so each continued run repeats its reported run's first 40 steps exactly
    from analysis.reduce.runs import runs
    unsolved = runs(reported)
    unsolved = unsolved[~unsolved["solved"].astype(bool)]
    r = run_cli(["bench.run.suite", "selection_smoke_continued", f"results_dir={store}", "progress=false"])
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.concat(pd.read_parquet(p) for p in store.glob("*.parquet"))
    longer = df[(df["measure"] == "long_range") & (df["measure_steps"] == 60)]
    assert longer["cell"].nunique() == unsolved["cell"].nunique() > 0
    assert set(zip(longer["cell"], longer["seed"])) == set(zip(unsolved["cell"], unsolved["seed"]))  # no solved seed
    both = longer.merge(df[(df["measure"] == "long_range") & (df["measure_steps"] == 40)],
                        on=["cell", "seed", "step"], suffixes=("_60", "_40"))
    assert len(both) and (both["test_loss_60"] == both["test_loss_40"]).all()


def test_selection_refuses_a_store_without_the_tuning_points(tmp_path):
    (tmp_path / "s").mkdir()
    r = run_cli(["analysis.select", str(tmp_path / "s"), "--rule", "recipe", "--from", "selection_smoke_tune"])
    assert r.returncode != 0


def test_a_choice_prints_its_flags_from_the_frame_or_from_a_csv_table():
    from analysis.select import choice_text
    assert choice_text(0.01, True, False) == "0.01 (edge) (no tuning seed solved: chosen on validation loss)"
    assert choice_text(0.003, "False", "True") == "0.003"   # flags as a CSV table gives them back
