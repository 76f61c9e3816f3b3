"""Nested selection: a cell's recipe is chosen on tuning seeds; the figures reported come from
fresh seeds at the chosen recipe, never from the runs it was chosen on.

Seeds below REPORTED_FROM tune; seeds from REPORTED_FROM on are reported (the presets'
`select.seeds`; docs/architecture.md, "Seeds"). Per group (a RULES entry's `per` keys, e.g. cell,
task and lag) the candidates are the values of its `choose` keys (e.g. init and learning rate)
that the tuning seeds ran, ranked by

    1. the fraction of tuning seeds solved (higher first);
    2. the median steps to solve over the tuning seeds, an unsolved seed counting as never
       (fewer first; a median that is an unsolved seed is infinite);
    3. the mean final validation loss, a diverged or non-finite seed counting as infinite
       (lower first);

ties going to the smaller learning rate. A choice on the edge of the grid tried (the
smallest or largest learning rate) is flagged, and so is a choice that no candidate earned by a
solve (made on validation loss alone).

`python -m analysis.select STORE --rule NAME --from PRESET [PRESET ...] [-- overrides]` prints,
one JSON list per line, the overrides of each chosen configuration without its seed: what
`bench.run.suite` runs at the reported seeds (a preset with a `select:` block).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd

REPORTED_FROM = 100  # seeds >= this are reported seeds; below, tuning (and plain) seeds


@dataclass(frozen=True)
class Rule:
    """Which runs a choice is made among: `per` record columns define a group, `choose` columns
    the candidates; `where` keeps the runs the rule is about (e.g. protocol A's)."""
    per: tuple
    choose: tuple
    where: Callable[[pd.DataFrame], pd.Series] = lambda r: pd.Series(True, index=r.index)


def _protocol_a(r: pd.DataFrame) -> pd.Series:
    budget = r["param_budget"] if "param_budget" in r else pd.Series(np.nan, index=r.index)
    return budget.isna() & (r["init"] == "default")


def _protocol_b(r: pd.DataFrame) -> pd.Series:
    return r["param_budget"].notna() if "param_budget" in r else pd.Series(False, index=r.index)


# One rule per study that chooses; the presets name them (`select.rule`), the report sections
# read them, so the choice the sweep made and the one the report checks are the same code.
RULES: Dict[str, Rule] = {
    "fair_a": Rule(per=("task", "cell", "seq_len"), choose=("measure_lr",), where=_protocol_a),
    "fair_b": Rule(per=("task", "cell", "seq_len"), choose=("init", "nonlinearity", "measure_lr"),
                   where=_protocol_b),
    "recipe": Rule(per=("task", "cell", "seq_len", "forget_bias", "forget_gate", "hidden_size", "num_layers",
                        "measure_optimizer"), choose=("measure_lr",)),
}


def _key(v):
    """A group value that compares equal across rows (NaN and None alike)."""
    return "null" if v is None or (isinstance(v, float) and math.isnan(v)) else v


def candidates(runs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """Every candidate's score over its tuning seeds: one row per (group, candidate). Reads only
    tuning seeds (seed < REPORTED_FROM)."""
    r = runs[runs["seed"].astype(int) < REPORTED_FROM]
    r = r[rule.where(r)].copy()
    if r.empty:
        return pd.DataFrame()
    cols = [c for c in (*rule.per, *rule.choose) if c in r]
    for c in cols:
        r[c] = r[c].map(_key)
    steps = np.where(r["solved"].astype(bool), r["steps_to_solve"], np.inf)
    val = r["final_val_loss"].astype(float).where(np.isfinite(r["final_val_loss"].astype(float)), np.inf)
    r = r.assign(_steps=steps, _val=val)
    out = r.groupby(cols, sort=False, dropna=False).agg(
        tuning_seeds=("seed", "nunique"), solved=("solved", "mean"), median_steps=("_steps", "median"),
        mean_val_loss=("_val", "mean"), diverged=("diverged", "sum") if "diverged" in r else ("seed", "size"),
        budget=("budget", "max") if "budget" in r else ("steps", "max")).reset_index()
    return out


def choose(runs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """The chosen candidate of every group, with its score, `on_edge` (its learning rate is the
    smallest or largest the group tried) and `by_solve` (it solved at least one tuning seed)."""
    cand = candidates(runs, rule)
    if cand.empty:
        return cand
    per = [c for c in rule.per if c in cand]
    # ties go to the smaller learning rate (then the first candidate met): a fixed, stated order
    cand["_order"] = range(len(cand))
    lr = cand["measure_lr"].astype(float) if "measure_lr" in cand else pd.Series(0.0, index=cand.index)
    ranked = cand.assign(_lr=lr).sort_values(["solved", "median_steps", "mean_val_loss", "_lr", "_order"],
                                             ascending=[False, True, True, True, True], kind="mergesort")
    best = ranked.groupby(per, sort=False, dropna=False).head(1).copy()
    if "measure_lr" in cand:
        lrs = cand.groupby(per, sort=False, dropna=False)["measure_lr"].agg(["min", "max", "nunique"])
        bounds = best.join(lrs, on=per)
        best["on_edge"] = ((bounds["measure_lr"] == bounds["min"]) | (bounds["measure_lr"] == bounds["max"])).to_numpy()
        best["grid"] = bounds["nunique"].to_numpy()
    best["by_solve"] = best["solved"] > 0
    return best.drop(columns=["_order", "_lr"]).reset_index(drop=True)


def choice_text(lr, on_edge, by_solve) -> str:
    """A chosen learning rate with its flags, as the tables print it (flags may come back from a
    CSV table as text)."""
    return (f"{float(lr):g}" + (" (edge)" if str(on_edge) == "True" else "")
            + ("" if str(by_solve) == "True" else " (no tuning seed solved: chosen on validation loss)"))


def _at_choice(runs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """Reported runs (seed >= REPORTED_FROM) at each group's chosen candidate, with the choice's
    flags and `tuning_budget` (the budget the candidates trained under)."""
    best = choose(runs, rule)
    rep = runs[runs["seed"].astype(int) >= REPORTED_FROM]
    rep = rep[rule.where(rep)].copy()
    if best.empty or rep.empty:
        return rep.iloc[0:0]
    cols = [c for c in (*rule.per, *rule.choose) if c in best]
    for c in cols:
        rep[c] = rep[c].map(_key)
    flags = best[cols + [c for c in ("on_edge", "by_solve", "tuning_seeds", "solved", "grid", "budget") if c in best]]
    flags = flags.rename(columns={"solved": "tuning_solved", "budget": "tuning_budget"})
    return rep.merge(flags, on=cols, how="inner")


def chosen_runs(runs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """The reported runs at each group's chosen candidate, under the budget it was chosen with,
    with the choice's flags; reported runs at any other candidate, or continued past that budget
    (continued_runs), are left out."""
    rep = _at_choice(runs, rule)
    return rep[rep["budget"] <= rep["tuning_budget"]] if "tuning_budget" in rep else rep


def continued_runs(runs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """The reported runs at the chosen candidate trained past the budget it was chosen with (a
    preset's `select.overrides`, e.g. measure.steps: training is seeded, so such a run is the
    reported run continued, step for step; bench/run/suite.py)."""
    rep = _at_choice(runs, rule)
    return rep[rep["budget"] > rep["tuning_budget"]] if "tuning_budget" in rep else rep.iloc[0:0]


# --- the sweep's side: which configurations to run at the reported seeds ------------------------

def tuning_points(presets: List[str], extra: List[str]) -> List[tuple]:
    """(overrides, config hash) of every point of the tuning presets, as the sweep stored them."""
    from bench.run.suite import points

    pts = [overrides for preset in presets for overrides in points(preset)]
    return list(zip(pts, point_hashes(pts, extra)))


def selected_overrides(store: Path, rule: Rule, presets: List[str], extra: List[str],
                       unsolved: Optional[List[int]] = None) -> List[List[str]]:
    """The overrides (without the seed) of each group's chosen configuration; with `unsolved`
    (reported seeds), only those where a run at one of these seeds, under the chosen budget, did
    not solve, each with `seed=` naming those seeds."""
    from analysis.load import load_store, of
    from analysis.reduce.runs import runs as runs_of

    pts = tuning_points(presets, extra)
    wanted = {h for _, h in pts}
    df = load_store(store)
    lr = of(df, "long_range")
    lr = lr[lr["config_hash"].isin(wanted)]
    missing = len(wanted - set(lr["config_hash"]))
    if missing:
        raise SystemExit(f"analysis.select: {missing} of {len(wanted)} tuning points of {', '.join(presets)} "
                         f"are not stored (ok) in {store}: run the tuning presets first")
    r = runs_of(lr)
    best = choose(r, rule)
    cols = [c for c in (*rule.per, *rule.choose) if c in best]
    keyed = r.assign(**{c: r[c].map(_key) for c in cols})
    by_hash = dict((h, o) for o, h in pts)
    out = []
    for _, b in best.iterrows():
        match = keyed[np.logical_and.reduce([keyed[c] == b[c] for c in cols])]
        overrides = [o for o in by_hash[match["config_hash"].iloc[0]] if not o.startswith("seed=")]
        out.append(overrides)
    if unsolved is not None:  # the reported stage's own points: the chosen overrides at each seed
        done = runs_of(of(df, "long_range"))
        short = set(done.loc[~done["solved"].astype(bool), "config_hash"])
        kept = []
        for o in out:
            seeds = [s for s, h in zip(unsolved, point_hashes([[*o, f"seed={s}"] for s in unsolved], extra)) if h in short]
            if seeds:  # only those seeds: a solved seed run again would only repeat its run
                kept.append([*o, f"seed={','.join(map(str, seeds))}"])
        out = kept
    return out


def point_hashes(points: List[List[str]], extra: List[str]) -> List[str]:
    """The config hash of each point (overrides), as the sweep stores it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bench.config.schema import register_configs
    from bench.run.runner import resolve
    from bench.run.suite import EXPERIMENTS

    register_configs()
    out = []
    for overrides in points:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(EXPERIMENTS.parent), version_base="1.3"):
            out.append(resolve(compose(config_name="config", overrides=[*overrides, *extra])).chash)
    GlobalHydra.instance().clear()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m analysis.select", description=__doc__.split("\n")[0])
    parser.add_argument("store")
    parser.add_argument("--rule", required=True, choices=sorted(RULES))
    parser.add_argument("--from", dest="presets", nargs="+", required=True, help="the tuning presets")
    parser.add_argument("--unsolved", type=int, nargs="+", metavar="SEED",
                        help="only the chosen configurations with an unsolved run at these reported seeds, "
                             "each with seed= naming its unsolved ones")
    args = parser.parse_args(argv)
    for overrides in selected_overrides(Path(args.store), RULES[args.rule], args.presets, extra, args.unsolved):
        print(json.dumps(overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
