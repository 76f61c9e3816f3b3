"""The state-tracking study reduced (bench/tasks/state.py: parity with one final label, modular
arithmetic, the S3 word problem): per task and cell, the recipe chosen on tuning seeds, the
reported seeds' accuracy at every test length scaled so that chance is 0 and perfect 1, and the
state horizon: the first test length at which a seed's scaled accuracy falls below HORIZON_AT."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.load import of
from analysis.reduce.fits import succeeds_where_other_does_not, wilson
from analysis.reduce.runs import runs
from analysis.select import RULES, chosen_runs
from bench.cells.registry import cell_rank
from bench.tasks.registry import TASKS
from bench.tasks.state import STATE_TEST_LENGTHS

HORIZON_AT = 0.9   # scaled accuracy below which a length is beyond the horizon
TASKS_WITH_LENGTHS = tuple(n for n, t in TASKS.items() if t.generalise == "lengths")

# Grazzi et al. (ICLR 2025), Table 3, quoted: scaled accuracy on test lengths 40 to 256, best of 3
# seeds; trained on lengths 3 to 40 for 20k (parity) / 100k (modular arithmetic) steps at batch 256,
# 2 layers of width 128, modular arithmetic with one final label. Not measured here.
QUOTED = pd.DataFrame([
    ("Transformer", 0.022, 0.031), ("mLSTM", 0.087, 0.040), ("sLSTM", 1.000, 0.787),
    ("Mamba [0, 1]", 0.000, 0.095), ("Mamba [-1, 1]", 1.000, 0.241),
    ("DeltaNet [0, 1]", 0.017, 0.314), ("DeltaNet [-1, 1]", 1.000, 0.971)],
    columns=["model (quoted)", "parity", "modular arithmetic (no brackets)"])


def per_seed(df: pd.DataFrame) -> pd.DataFrame:
    """One row per reported run and test length: its configuration, chosen recipe and accuracies."""
    lr = of(df, "long_range")
    lr = lr[lr["task"].isin(TASKS_WITH_LENGTHS)] if "task" in lr else lr.iloc[0:0]
    gen = of(df, "length_generalisation")
    if lr.empty or gen.empty or "scaled_acc" not in gen:
        return pd.DataFrame()
    r = runs(lr)
    rep = chosen_runs(r, RULES["recipe"])
    if rep.empty:
        return pd.DataFrame()
    cols = ["config_hash", "test_len", "test_acc", "scaled_acc"]
    return gen[gen["task"].isin(TASKS_WITH_LENGTHS)][cols].merge(rep, on="config_hash")


def horizon(g: pd.DataFrame) -> float:
    """A run's state horizon: the first test length (in order) whose scaled accuracy is below
    HORIZON_AT; inf when every length is at or above it."""
    g = g.sort_values("test_len")
    below = g[g["scaled_acc"] < HORIZON_AT]
    return float(below["test_len"].iloc[0]) if len(below) else math.inf


def summary(g: pd.DataFrame) -> pd.DataFrame:
    """Per task and cell (and sLSTM's forget gate): recipe, solved at the training lengths, the
    horizon over seeds, seeds tracking every test length, and the scaled accuracy over lengths
    40 to 256 (Grazzi et al.'s range) as its best and median over seeds."""
    fg = g["forget_gate"] if "forget_gate" in g else pd.Series("-", index=g.index)
    g = g.assign(forget_gate=fg.fillna("-").replace({"null": "-", "None": "-"}))
    rows = []
    for (task, cell, fg), d in g.groupby(["task", "cell", "forget_gate"], sort=False):
        seeds = d.groupby("seed")
        hz = seeds.apply(horizon, include_groups=False)
        tracks = int(np.isinf(hz).sum())
        n = len(hz)
        far = d[d["test_len"] >= 40].groupby("seed")["scaled_acc"].mean()
        solved = seeds["solved"].first()
        first = d.iloc[0]
        rows.append({"task": task, "cell": cell if fg == "-" else f"{cell} ({fg} forget gate)", "cell_key": cell,
                     "lr": first["measure_lr"], "on_edge": bool(first.get("on_edge", False)),
                     "by_solve": bool(first.get("by_solve", True)), "seeds": n,
                     "budget": int(d["budget"].max()),
                     "solved": int(solved.sum()), "solved_lo": wilson(int(solved.sum()), n)[0],
                     "solved_hi": wilson(int(solved.sum()), n)[1],
                     "horizon_median": float(np.median(hz)), "horizon_min": float(hz.min()), "horizon_max": float(hz.max()),
                     "tracking": tracks, "tracking_lo": wilson(tracks, n)[0], "tracking_hi": wilson(tracks, n)[1],
                     "scaled_40_256_best": far.max(), "scaled_40_256_median": far.median()})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    rank = {"task": {t: i for i, t in enumerate(TASKS_WITH_LENGTHS)}, "cell_key": cell_rank}
    return out.sort_values(["task", "cell_key", "cell"], kind="stable",  # tasks, then cells, in registry order
                           key=lambda c: c.map(rank[c.name]) if c.name in rank else c).reset_index(drop=True)


def horizon_text(v: float) -> str:
    return f"> {max(STATE_TEST_LENGTHS)}" if math.isinf(v) else f"{v:.0f}"


def evidence(s: pd.DataFrame) -> dict:
    """The claims' findings: `signed` (parity: the signed minGRU against minGRU and minLSTM, solved
    at the training lengths) and `state` (S3: each nonlinear cell against the signed minGRU,
    seeds tracking every test length)."""
    out = {}
    par = s[s["task"] == "parity_final"].set_index("cell_key")
    if "mingru_signed" in par.index:
        sg = par.loc["mingru_signed"]
        rows = [{"scope": f"parity, mingru_signed vs {c}",
                 "holds": succeeds_where_other_does_not(sg["solved_lo"], sg["solved_hi"],
                                                        par.at[c, "solved_lo"], par.at[c, "solved_hi"]),
                 "figure": f"solved at training lengths within {sg['budget']} steps: mingru_signed {sg['solved']}/{sg['seeds']} "
                           f"[{sg['solved_lo']:.2f}, {sg['solved_hi']:.2f}] vs {c} {par.at[c, 'solved']}/"
                           f"{par.at[c, 'seeds']} [{par.at[c, 'solved_lo']:.2f}, {par.at[c, 'solved_hi']:.2f}]"
                           f" (mingru_signed tracking to {max(STATE_TEST_LENGTHS)}: {sg['tracking']}/{sg['seeds']})"}
                for c in ("minlstm", "mingru") if c in par.index]  # the last is the headline: minGRU, the same cell
        if rows:
            out["signed"] = pd.DataFrame(rows)
    s3 = s[(s["task"] == "word_s3") & ~s["cell"].str.contains("forget gate")].set_index("cell_key")
    if "mingru_signed" in s3.index:
        sg = s3.loc["mingru_signed"]
        rows = [{"scope": f"S3, {c} vs mingru_signed",
                 "holds": succeeds_where_other_does_not(s3.at[c, "tracking_lo"], s3.at[c, "tracking_hi"],
                                                        sg["tracking_lo"], sg["tracking_hi"]),
                 "figure": f"seeds tracking to {max(STATE_TEST_LENGTHS)} (trained until solved, at most {sg['budget']} steps): "
                           f"{c} {s3.at[c, 'tracking']}/{s3.at[c, 'seeds']} "
                           f"[{s3.at[c, 'tracking_lo']:.2f}, {s3.at[c, 'tracking_hi']:.2f}] vs mingru_signed "
                           f"{sg['tracking']}/{sg['seeds']} [{sg['tracking_lo']:.2f}, {sg['tracking_hi']:.2f}]"
                           # whether the signed cell fails beyond the training lengths or already on them
                           f" (mingru_signed solved the training lengths in {sg['solved']}/{sg['seeds']})"}
                for c in ("rnn", "lstm", "gru") if c in s3.index]
        if rows:
            out["state"] = pd.DataFrame(rows)
    return out
