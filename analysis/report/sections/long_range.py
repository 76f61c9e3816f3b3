"""Long-lag tasks: success against lag, learning curves, gradient profile before and after."""
from __future__ import annotations

import math
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.load import group_keys, of
from analysis.reduce.fits import fraction, wilson
from analysis.reduce.gradients import interval_table, summarize
from analysis.reduce.long_lag import PROTOCOLS, budget_checks, continued_text, fair_table, papers_table, solved_evidence, tuning_table
from analysis.reduce.runs import runs
from analysis.reduce.survival import curves
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_PALETTE
from analysis.report.words import NAMES, describe, distinguishing, label
from analysis.select import RULES, chosen_runs
from bench.cells.registry import family
from bench.tasks.registry import TASKS

TITLE, ANCHOR = "Long-lag tasks", "long-range"
# the long-lag tasks (bench/tasks: kind long_lag); state tracking and selection are modern.py's
LONG_LAG = tuple(name for name, t in TASKS.items() if t.kind == "long_lag")
RUN = ["task", "cell", "seq_len", "forget_bias", "hidden_size", "num_layers", "bidirectional"]


def far_near(df: pd.DataFrame) -> pd.Series:
    """config_hash -> the trained task-loss gradient's farthest/nearest ratio (layer 0)."""
    g = of(df, "gradients")
    if "measure_task" not in g or "loss_kind" not in g:
        return pd.Series(dtype=float)
    g = g[g["measure_task"].notna() & (g["layer"] == 0) & (g["condition"] == "trained")
          & (g["loss_kind"] == "task_loss")]
    if g.empty:
        return pd.Series(dtype=float)
    return summarize(g).set_index("config_hash")["ratio_far_near"]


def build(df: pd.DataFrame, report) -> Optional[SectionResult]:
    lr = of(df, "long_range")
    if "task" in lr:  # state tracking and selective copying are the modern-cells section's
        lr = lr[lr["task"].isin(LONG_LAG)]
    if lr.empty:
        return None
    r = runs(lr)
    r["trained_far_near"] = r["config_hash"].map(far_near(df))
    md, evidence = [INTRO], {}
    table = fair_table(r)
    if not table.empty:
        checks = budget_checks(table)
        md += [fair_digest(table, checks, report), tuning_digest(r, report), survival_figure(r, report)]
        evidence = {"long_lag": solved_evidence(table, checks, "fair_a"),
                    "fair": solved_evidence(table, checks, "fair_b")}
    papers = papers_table(r, table)
    if not papers.empty:
        md.append(report.table("papers", papers, "the papers' outcomes as stated, the protocol run here and "
                               "what it measured; outcome: reproduced where the Wilson interval of the "
                               "fraction lies wholly above 1/2 for what the paper found, not reproduced "
                               "where wholly below, partly in between"))
    md += [success_digest(success_table(r), report), loss_vs_lag_figure(r, report), curves_figure(lr, report),
           ladder_figure(r, report), trained_profiles(df, report, {})]
    return SectionResult(TITLE, ANCHOR, "\n".join(md), evidence=evidence)


INTRO = ("Each run trains a cell on a long-lag task with Adam (or a paper's own optimizer), "
         "gradient-norm clipping and a held-out test batch from its own seed, until solved or its "
         "budget. `adding`: the adding problem as Le et al. (2015) and Arjovsky et al. (2016) pose it, "
         "solved when test MSE < 0.01 (constant predictor 1/6); `adding_hs97`: Hochreiter & "
         "Schmidhuber's (1997) form and success rule (constant predictor 1/24); `copy`: copy memory "
         "(memoryless baseline 10 ln 8 / (T + 20)). Where the store holds a nested selection "
         "(analysis/select.py), each cell's recipe (init, learning rate) is chosen on tuning seeds "
         "(below 100) and only fresh seeds (100 and up) are reported, with their solved fraction "
         "(95% Wilson) and the median steps to solve from a survival curve that censors unsolved runs "
         "at their budget (Kaplan-Meier, 95% interval). A budget passes when it is at least twice the "
         "slowest solving cell's median. A chosen recipe with a reported seed unsolved is trained again "
         "at the same seeds for longer (training is seeded: the same run, continued), which tells "
         "\"not learnt in N steps\" from \"not learnt in 3N\". Unsolved runs are described by what was measured (final "
         "loss, fraction of steps clipped, the trained gradient's farthest/nearest ratio), without a "
         "cause: a run on a loss plateau can still leave it. Seconds are training time with subnormal "
         "floats flushed (two runs share the machine: seconds inflated, steps not).\n")


def fair_digest(table: pd.DataFrame, checks: pd.DataFrame, report) -> str:
    """The fair comparison: per protocol, lag and cell, the chosen recipe and its reported seeds."""
    shown = pd.DataFrame({
        "protocol": table["protocol"].str.split(":").str[0], "lag": table["seq_len"], "cell": table["cell"],
        "recipe (chosen on tuning seeds)": table["recipe"] + np.where(table["on_edge"], " (edge of grid)", "")
        + np.where(~table["by_solve"], " (no tuning seed solved)", ""),
        "solved [95% Wilson]": [f"{r.solved}/{r.seeds} [{r.lo:.2f}, {r.hi:.2f}]"
                                + (f"; {r.diverged} diverged" if r.diverged else "") for r in table.itertuples()],
        "median steps to solve [95%]": [steps_text(r) for r in table.itertuples()],
        "unsolved: final MSE, clipped, far/near gradient": [unsolved_text(r) for r in table.itertuples()],
        "unsolved seeds continued past the budget": [continued_text(r) for r in table.itertuples()]})
    lines = [f"- protocol {c.protocol.split(':')[0]}, {c.task} lag {int(c.seq_len)}: {c.why}" for c in checks.itertuples()]
    return (report.table("fair_comparison", table, "the fair comparison under nested selection: per "
                         "protocol, lag and cell, the recipe chosen on tuning seeds and its reported seeds",
                         shown=shown) + "\nBudget check (at least twice the slowest solving cell's median "
            "steps to solve):\n\n" + "\n".join(lines) + "\n")


def steps_text(r) -> str:
    if math.isnan(r.median_steps):
        return f"> {r.budget} (under half solved)"
    hi = "inf" if math.isinf(r.median_hi) else f"{r.median_hi:.0f}"
    return f"{r.median_steps:.0f} [{r.median_lo:.0f}, {hi}]"


def unsolved_text(r) -> str:
    if r.solved == r.seeds:
        return "-"
    far = "-" if pd.isna(r.unsolved_far_near) else f"{r.unsolved_far_near:.1e}"
    div = f", {r.diverged} diverged" if r.diverged else ""
    return f"{r.unsolved_final_loss:.3g}, {r.unsolved_clipped:.0%}, {far}{div}"


def tuning_digest(r: pd.DataFrame, report) -> str:
    """Every candidate on the tuning seeds: solved fraction and median steps per learning rate."""
    t = tuning_table(r)
    if t.empty:
        return ""
    t["entry"] = [f"{s:.0%}" + ("" if math.isinf(m) else f", {m:.0f}") for s, m in zip(t["solved"], t["median_steps"])]
    init = t["init"].fillna("default") if "init" in t else pd.Series("default", index=t.index)
    t["candidate"] = t["cell"] + np.where(init != "default", " " + init.astype(str), "")
    wide = t.pivot_table(index=["protocol", "seq_len", "candidate"], columns="measure_lr", values="entry", aggfunc="first")
    wide = wide.reset_index()
    wide.columns = [f"lr {c:g}" if isinstance(c, float) else c for c in wide.columns]
    return report.table("fair_tuning", t.drop(columns=["entry"]), "the tuning seeds: per candidate "
                        "and learning rate, the fraction of tuning seeds solved and their median steps to "
                        "solve (what the choice reads; never reported as a result)", shown=wide)


def survival_figure(r: pd.DataFrame, report) -> str:
    """Solved fraction against training steps of the reported seeds, per protocol and lag."""
    panels = []
    for rule, proto in PROTOCOLS.items():
        rep = chosen_runs(r, RULES[rule])
        for T, g in rep.groupby("seq_len"):
            panels.append((proto.split(":")[0], T, g))
    if not panels:
        return ""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), sharey=True, squeeze=False)
    for ax, (proto, T, g) in zip(axes[0], panels):
        for (cell,), curve in curves(g, ["cell"]).items():
            xs = np.concatenate([[0], curve["step"].to_numpy()])
            ys = np.concatenate([[0], curve["solved_fraction"].to_numpy()])
            ax.step(xs, ys, where="post", color=CELL_PALETTE.get(cell), label=cell)
            ax.fill_between(xs, np.concatenate([[0], curve["lo"]]), np.concatenate([[0], curve["hi"]]),
                            step="post", color=CELL_PALETTE.get(cell), alpha=0.15, lw=0)
        ax.axvline(g["budget"].max(), color="grey", ls=":", lw=1)
        ax.set(title=f"protocol {proto}, lag {int(T)}", xlabel="training steps", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("reported seeds solved")
    axes[0][-1].legend(loc="lower right", fontsize="small")
    fig.suptitle("Solved fraction against steps (Kaplan-Meier; band: 95% interval; dotted: the budget)", y=1.03)
    return report.figure("long_range_survival", fig, "fraction of reported seeds solved by each training step, "
                         "per protocol and lag, each cell at its recipe chosen on tuning seeds; runs "
                         "unsolved at the budget are censored there")


def success_table(r: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and lag: seeds, solved (with the Wilson interval), medians."""
    keys = group_keys(r, RUN, exclude=("seed", "measure_task"))
    success = r.groupby(keys, dropna=False).agg(
        seeds=("seed", "nunique"), solved=("solved", "sum"),
        median_final_loss=("final_test_loss", "median"), baseline=("baseline_loss", "first"),
        median_steps_to_solve=("steps_to_solve", "median"),
        median_seconds_to_solve=("seconds_to_solve", "median"),
        median_train_seconds=("train_seconds", "median"), diverged=("diverged", "sum"),
        diverged_steps=("diverged_step", lambda v: ", ".join(f"{x:.0f}" for x in v.dropna())),
        **({"subnormals_flushed": ("measure_flush_denormal", "first")} if "measure_flush_denormal" in r else {})
    ).reset_index()
    success["solved_fraction"] = success["solved"] / success["seeds"]
    ci = [wilson(k, n) for k, n in zip(success["solved"], success["seeds"])]
    success["solved_lo"], success["solved_hi"] = [c[0] for c in ci], [c[1] for c in ci]
    return success


def success_digest(success: pd.DataFrame, report) -> str:
    shown = pd.DataFrame({
        "task": success["task"], "configuration": describe(success, ["cell", "forget_bias", "init", "hidden_size",
                                                                      "num_layers", "bidirectional", "measure_lr"], NAMES),
        "lag": success["seq_len"],
        "seeds solved [95% Wilson]": [fraction(int(k), int(n)) for k, n in zip(success["solved"], success["seeds"])],
        "final test loss, median (baseline)": [f"{a:.3g} ({b:.3g})" for a, b in zip(success["median_final_loss"], success["baseline"])],
        "to solve, median: steps / s": [f"{a:.0f} / {b:.1f}" if pd.notna(a) else "-" for a, b in
                                        zip(success["median_steps_to_solve"], success["median_seconds_to_solve"])],
        "subnormals flushed": success.get("subnormals_flushed", pd.Series(["-"] * len(success)))})
    if success["diverged"].any():  # a training whose loss went non-finite: no solve, no trained profile
        shown.insert(4, "seeds diverged (at step)", [f"{int(n)} ({steps})" if n else "0" for n, steps in
                                                     zip(success["diverged"], success["diverged_steps"])])
    return report.table("long_range_success", success, "solved fraction over seeds per cell and "
                           "lag, with its 95% Wilson interval (csv: solved_lo, solved_hi); a diverged "
                           "seed (its loss went non-finite, or stayed blown up to its end) counts as unsolved "
                           "unless it had solved first", shown=shown)


def loss_vs_lag_figure(r: pd.DataFrame, report) -> str:
    default = r[r["forget_bias"].isna() | (r["forget_bias"] == 0)]  # the ladder has its own figure
    default = default[np.isfinite(default["final_test_loss"].astype(float))]  # a diverged run has none
    if default.empty:
        return "*No figure of the final test loss against lag: no run ended with a finite loss (diverged).*\n"
    grid = sns.relplot(data=default, x="seq_len", y="final_test_loss", hue="cell", palette=CELL_PALETTE, col="task", kind="line",
                       marker="o", errorbar=("pi", 100), height=3, aspect=1.4,
                       facet_kws={"sharey": False, "sharex": False})
    for task, ax in grid.axes_dict.items():
        base = r.loc[r["task"] == task, ["seq_len", "baseline_loss"]].drop_duplicates().sort_values("seq_len")
        ax.plot(base["seq_len"], base["baseline_loss"], "k--", marker="_", ms=12, lw=1,
                label="memoryless baseline")
        ax.set_yscale("log")
    grid.set_axis_labels("lag (seq_len)", "final test loss")
    grid.set_titles("{col_name}")
    most = default.groupby(["task", "cell", "seq_len"])["solved"].mean() > 0.5
    longest = most[most].reset_index().groupby(["task", "cell"])["seq_len"].max()
    grid.figure.suptitle("Longest lag solved in most seeds: " + "; ".join(
        f"{task}: " + ", ".join(f"{c} {longest.get((task, c), '-')}" for c in sorted(d["cell"].unique()))
        for task, d in default.groupby("task")), y=1.03)
    return report.figure("long_range_loss_vs_lag", grid.figure,
                            "final test loss against lag per cell (default forget bias; band: range "
                            "over seeds); dashed: the memoryless baseline")


def curves_figure(lr: pd.DataFrame, report) -> str:
    curves = lr.assign(run=lr["task"] + ", T=" + lr["seq_len"].astype(str))
    grid = sns.relplot(data=curves, x="step", y="test_loss", hue="cell", palette=CELL_PALETTE, units="seed", estimator=None,
                       col="run", col_wrap=min(3, curves["run"].nunique()), kind="line", height=2.6,
                       aspect=1.4, facet_kws={"sharey": False, "sharex": False}, alpha=0.8)
    for run, ax in grid.axes_dict.items():
        ax.axhline(curves.loc[curves["run"] == run, "baseline_loss"].median(), color="k", ls="--", lw=1)
        ax.set_yscale("log")
    return report.figure("long_range_learning_curves", grid.figure,
                            "test loss during training, one line per seed; dashed: baseline")


def ladder_figure(r: pd.DataFrame, report) -> str:
    ladder = r[r["cell"].isin(family("lstm")) & r["forget_bias"].notna()]
    ladder = ladder[ladder.groupby(["task", "seq_len"])["forget_bias"].transform("nunique") > 1]
    if ladder.empty:
        return ""
    ax = sns.lineplot(data=ladder, x="forget_bias", y="steps_to_solve", hue="seq_len", style="task",
                      marker="o", errorbar=("pi", 100), palette="viridis")
    ax.set(xlabel="forget-gate bias added", ylabel="steps to solve (unsolved runs left out)")
    solved = ladder.groupby("forget_bias")["solved"].agg(["sum", "count"])
    return report.figure("steps_to_solve_vs_forget_bias", ax.figure,
                            "LSTM steps to solve against the forget-gate bias (band: range over "
                            "seeds); solved: " + ", ".join(f"bias {b:g} {int(r_['sum'])}/{int(r_['count'])}"
                                                          for b, r_ in solved.iterrows()))


def trained_profiles(df: pd.DataFrame, report, claims: dict) -> str:
    g = of(df, "gradients")
    if "measure_task" not in g.columns:
        return ""
    g = g[g["measure_task"].notna() & (g["layer"] == 0)]
    if g.empty:
        return ""
    s = summarize(g)
    s["task"] = s["measure_task"]
    base = ["task", "cell", "forget_bias", "seq_len", "condition", "loss_kind"]
    t = interval_table(s, base)
    keys = [k for k in group_keys(s, base) if k != "measure_task"]  # every key that tells rows apart
    t = t[keys + ["seeds", "decay_per_step", "decay_lo", "decay_hi", "half_life", "slowest_gate"]]
    md = [report.table("trained_half_lives", t, "gradient half-life at init and after training, 95% "
                       "intervals; loss_kind random_projection: the fixed projection of the readout "
                       "(comparable with the gradients section); task_loss: the task's own loss "
                       "through the trained head (the gradient training actually sends back); "
                       "slowest_gate: time-mean forget (LSTM) or update (gru) gate of the slowest unit")]
    default = g[g["forget_bias"].isna() | (g["forget_bias"] == 0)]
    T = 100 if (default["seq_len"] == 100).any() else int(default["seq_len"].min())
    sel = default[(default["seq_len"] == T) & (default["grad_norm"] > 0)
                  & (default.get("loss_kind", "random_projection") != "task_loss")].copy()
    sel["log10_grad_norm"] = np.log10(sel["grad_norm"])
    grid = sns.relplot(data=sel, x="distance", y="log10_grad_norm", hue="cell", palette=CELL_PALETTE, style="condition",
                       col="measure_task", kind="line", errorbar=("pi", 100), height=3, aspect=1.4)
    grid.set_axis_labels("distance from the readout (steps)", "log10 gradient norm")
    grid.set_titles("{col_name}")
    kind = t["loss_kind"] if "loss_kind" in t else pd.Series("random_projection", index=t.index)
    moved = t[(t["seq_len"] == T) & (kind == "random_projection")].pivot_table(
        index=["task", "cell"], columns="condition", values="decay_per_step", aggfunc="first")
    if {"init", "trained"} <= set(moved.columns):
        slower = (moved["trained"] > moved["init"]).sum()
        grid.figure.suptitle(f"After training the gradient decays more slowly in {slower} of {len(moved)} "
                             f"task-cell pairs (lag {T})", y=1.03)
    md.append(report.figure("init_vs_trained_profiles", grid.figure,
                            f"gradient profile at init and after training, lag {T}, default forget "
                            "bias; band: range over seeds"))
    at = t[(t["seq_len"] == T) & (t["task"] == "adding") & (t["forget_bias"].isna() | (t["forget_bias"] == 0))
           & (t["loss_kind"] == "random_projection")]
    names = [k for k in distinguishing(at) if k != "condition"]
    at = at.assign(name=[label(r, names) for _, r in at.iterrows()])  # one name per configuration
    pivot = at.pivot_table(index="name", columns="condition", values="half_life", aggfunc="first")
    if {"init", "trained"} <= set(pivot.columns):
        parts = [f"{name} {row['init']} -> {row['trained']}" for name, row in pivot.iterrows()]
        claims["reach"] = (f"half-life init -> trained (adding, T={T}, random projection of the readout), "
                           "steps [95% interval]: " + ", ".join(parts))
    return "\n".join(md)
