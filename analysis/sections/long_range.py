"""Long-lag tasks: success against lag, learning curves, gradient profile before and after."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.fits import steps
from analysis.load import of
from analysis.sections.gradients import summarize

TITLE, ANCHOR = "Long-lag tasks", "long-range"
RUN = ["task", "cell", "seq_len", "forget_bias", "hidden_size", "num_layers", "bidirectional"]


def runs(lr: pd.DataFrame) -> pd.DataFrame:
    """One row per training run: final loss, solved, steps and seconds to solve."""
    out = []
    for chash, p in lr.sort_values("step").groupby("config_hash"):
        solved = p[p["solved"].astype(bool)]
        last = p.iloc[-1]
        out.append({"config_hash": chash, **{k: last[k] for k in RUN + ["seed"]},
                    "final_test_loss": last["test_loss"], "baseline_loss": last["baseline_loss"],
                    "solved": not solved.empty, "steps": int(last["step"]),
                    "steps_to_solve": solved["step"].iloc[0] if not solved.empty else np.nan,
                    "seconds_to_solve": solved["elapsed_s"].iloc[0] if not solved.empty else np.nan,
                    "train_seconds": last["elapsed_s"]})
    return pd.DataFrame(out)


def build(df: pd.DataFrame, report) -> Optional["SectionResult"]:
    from analysis.report import SectionResult

    lr = of(df, "long_range")
    if lr.empty:
        return None
    r = runs(lr)
    md, claims = [], {}
    md.append("Each run trains the cell with the fixed recipe (Adam, gradient-norm clipping, "
              "held-out test batch from its own seed). Adding problem: solved when test MSE < "
              "0.01; the constant predictor scores 1/6 = 0.167. Copy memory: solved at 99% recall "
              "accuracy; memoryless baseline 10 ln 8 / (T + 20).\n")
    success = r.groupby(RUN, dropna=False).agg(
        seeds=("seed", "nunique"), solved_fraction=("solved", "mean"),
        median_final_loss=("final_test_loss", "median"), baseline=("baseline_loss", "first"),
        median_steps_to_solve=("steps_to_solve", "median"),
        median_seconds_to_solve=("seconds_to_solve", "median"),
        median_train_seconds=("train_seconds", "median")).reset_index()
    md.append(report.table("long_range_success", success, "solved fraction over seeds per cell and lag"))
    default = r[r["forget_bias"].isna() | (r["forget_bias"] == 0)]  # the ladder has its own figure
    grid = sns.relplot(data=default, x="seq_len", y="final_test_loss", hue="cell", col="task", kind="line",
                       marker="o", errorbar=("pi", 100), height=3, aspect=1.4,
                       facet_kws={"sharey": False, "sharex": False})
    for task, ax in grid.axes_dict.items():
        base = r.loc[r["task"] == task, ["seq_len", "baseline_loss"]].drop_duplicates().sort_values("seq_len")
        ax.plot(base["seq_len"], base["baseline_loss"], "k--", marker="_", ms=12, lw=1,
                label="memoryless baseline")
        ax.set_yscale("log")
    grid.set_axis_labels("lag (seq_len)", "final test loss")
    md.append(report.figure("long_range_loss_vs_lag", grid.figure,
                            "final test loss against lag per cell (default forget bias; band: range "
                            "over seeds); dashed: the memoryless baseline"))
    curves = lr.assign(run=lr["task"] + ", T=" + lr["seq_len"].astype(str))
    grid = sns.relplot(data=curves, x="step", y="test_loss", hue="cell", units="seed", estimator=None,
                       col="run", col_wrap=min(3, curves["run"].nunique()), kind="line", height=2.6,
                       aspect=1.4, facet_kws={"sharey": False, "sharex": False}, alpha=0.8)
    for run, ax in grid.axes_dict.items():
        ax.axhline(curves.loc[curves["run"] == run, "baseline_loss"].median(), color="k", ls="--", lw=1)
        ax.set_yscale("log")
    md.append(report.figure("long_range_learning_curves", grid.figure,
                            "test loss during training, one line per seed; dashed: baseline"))
    ladder = r[r["cell"].isin(["lstm", "ref_lstm"]) & r["forget_bias"].notna()]
    ladder = ladder[ladder.groupby(["task", "seq_len"])["forget_bias"].transform("nunique") > 1]
    if not ladder.empty:
        ax = sns.lineplot(data=ladder, x="forget_bias", y="steps_to_solve", hue="seq_len", style="task",
                          marker="o", errorbar=("pi", 100), palette="viridis")
        ax.set(xlabel="forget-gate bias added", ylabel="steps to solve (unsolved runs left out)")
        solved = ladder.groupby("forget_bias")["solved"].agg(["sum", "count"])
        md.append(report.figure("steps_to_solve_vs_forget_bias", ax.figure,
                                "LSTM steps to solve against the forget-gate bias (band: range over "
                                "seeds); solved: " + ", ".join(f"bias {b:g} {int(r_['sum'])}/{int(r_['count'])}"
                                                              for b, r_ in solved.iterrows())))
    md.append(trained_profiles(df, report, claims))
    adding = success[(success["task"] == "adding") & (success["forget_bias"].isna() | (success["forget_bias"] == 0))]
    if not adding.empty:
        T = 100 if (adding["seq_len"] == 100).any() else int(adding["seq_len"].min())
        at = adding[adding["seq_len"] == T]
        parts = []
        for row in at.itertuples():
            solved = int(round(row.solved_fraction * row.seeds))
            extra = (f", median {row.median_steps_to_solve:.0f} steps / {row.median_seconds_to_solve:.0f} s"
                     if solved else f", final MSE {row.median_final_loss:.3f}")
            parts.append(f"{row.cell} solved {solved}/{row.seeds}{extra}")
        claims["long_lag"] = f"adding problem T={T}: " + "; ".join(parts)
    return SectionResult(TITLE, ANCHOR, "\n".join(md), claims)


def trained_profiles(df: pd.DataFrame, report, claims: dict) -> str:
    g = of(df, "gradients")
    if "measure_task" not in g.columns:
        return ""
    g = g[g["measure_task"].notna() & (g["layer"] == 0)]
    if g.empty:
        return ""
    s = summarize(g)
    s["task"] = s["config_hash"].map(g.groupby("config_hash")["measure_task"].first())
    t = s.groupby(["task", "cell", "forget_bias", "seq_len", "condition"], dropna=False).agg(
        runs=("config_hash", "nunique"), half_life_steps=("half_life_steps", "median"),
        decay_per_step=("decay_per_step", "median"), mean_gate=("mean_gate", "median")).reset_index()
    md = [report.table("trained_half_lives", t, "gradient half-life at init and after training, "
                       "medians over seeds (mean_gate: forget gate for the LSTM family, update gate "
                       "for gru)")]
    default = g[g["forget_bias"].isna() | (g["forget_bias"] == 0)]
    T = 100 if (default["seq_len"] == 100).any() else int(default["seq_len"].min())
    sel = default[(default["seq_len"] == T) & (default["grad_norm"] > 0)].copy()
    sel["log10_grad_norm"] = np.log10(sel["grad_norm"])
    grid = sns.relplot(data=sel, x="distance", y="log10_grad_norm", hue="cell", style="condition",
                       col="measure_task", kind="line", errorbar=("pi", 100), height=3, aspect=1.4)
    md.append(report.figure("init_vs_trained_profiles", grid.figure,
                            f"gradient profile at init and after training, lag {T}, default forget "
                            "bias; band: range over seeds"))
    at = t[(t["seq_len"] == T) & (t["task"] == "adding") & (t["forget_bias"].isna() | (t["forget_bias"] == 0))]
    pivot = at.pivot_table(index="cell", columns="condition", values="half_life_steps")
    if {"init", "trained"} <= set(pivot.columns):
        parts = [f"{cell} {steps(row['init'])} -> {steps(row['trained'])}" for cell, row in pivot.iterrows()]
        claims["reach"] = f"half-life init -> trained (adding, T={T}): " + ", ".join(parts) + " steps"
    return "\n".join(md)
