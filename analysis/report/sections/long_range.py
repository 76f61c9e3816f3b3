"""Long-lag tasks: success against lag, learning curves, gradient profile before and after."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.reduce.fits import fraction, wilson
from analysis.load import config_keys, group_keys, of
from analysis.report.words import describe
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_PALETTE
from analysis.reduce.runs import runs
from analysis.reduce.gradients import interval_table, summarize
from analysis.report.words import NAMES, distinguishing, label
from bench.cells.registry import family
from bench.tasks.registry import TASKS

TITLE, ANCHOR = "Long-lag tasks", "long-range"
# the long-lag tasks (bench/tasks: kind long_lag); state tracking and selection are modern.py's
LONG_LAG = tuple(name for name, t in TASKS.items() if t.kind == "long_lag")
RUN = ["task", "cell", "seq_len", "forget_bias", "hidden_size", "num_layers", "bidirectional"]


VANISHED = 1e-6  # trained task-loss gradient, farthest over nearest input, below this: vanished


def diagnosis(run: pd.Series) -> str:
    """Why an unsolved run failed. Exploding: the gradient was clipped on most steps. Vanishing:
    after training, the task loss's gradient at the farthest input is under 1e-6 of that at the
    nearest (the profile stored with the run), so the first marker cannot be learnt from. A run
    can show both (a large norm from the recent steps, nothing from the far ones)."""
    if run["solved"]:
        return "solved"
    if run.get("diverged", False) or not np.isfinite(run.get("final_test_loss", 0.0)):
        return "diverged"
    why = [w for w, hit in (("exploding", run["clipped_fraction"] > 0.5),
                            ("vanishing", run.get("trained_far_near", np.nan) < VANISHED)) if hit]
    return " + ".join(why) or "neither vanishing nor exploding"


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


def fair_comparison(r: pd.DataFrame, report, claims: dict) -> str:
    """The two protocols of the fair comparison (conf/experiment/long_range_fair.yaml):
    A. default init, equal hidden size; B. good inits, equal parameters. Within each, per cell,
    task and lag, the configuration (init, nonlinearity, lr) with the lowest mean validation loss
    over seeds is chosen; its solved fraction is read on the test batch."""
    if "final_val_loss" not in r or r["final_val_loss"].isna().all():
        return ""
    # Runs from before the validation batch (measure version < 3) cannot take part; a run of
    # version 3 whose losses are not finite diverged: it counts, as an unsolved run that the
    # validation choice ranks last (dropping it would choose among the survivors).
    version = r["measure_version"] if "measure_version" in r else pd.Series(np.nan, index=r.index)
    r = r[version.astype(float) >= 3].copy()
    r["final_val_loss"] = r["final_val_loss"].fillna(np.inf)
    budget = r["param_budget"] if "param_budget" in r else pd.Series(np.nan, index=r.index)
    r["protocol"] = np.where(budget.notna(), "B: best init, equal parameters",
                             np.where(r["init"] == "default", "A: default init, equal hidden size", ""))
    r = r[r["protocol"] != ""]
    r["lr"] = r["measure_lr"]
    choice = ["init", "nonlinearity", "lr"]
    base = ["protocol", "task", "cell", "seq_len"]
    if r.empty or r.groupby(base)[choice].nunique().max().max() < 2 and r["protocol"].nunique() < 2:
        return ""
    cand = r.groupby(base + choice, dropna=False).agg(val=("final_val_loss", "mean"), seeds=("seed", "nunique"))
    best = cand.reset_index().sort_values("val").groupby(base, dropna=False).head(1)
    chosen = r.merge(best[base + choice], on=base + choice)
    chosen["why"] = chosen.apply(diagnosis, axis=1)
    out = chosen.groupby(base + choice + ["hidden_size"], dropna=False).agg(
        seeds=("seed", "nunique"), solved=("solved", "sum"), val_loss=("final_val_loss", "mean"),
        test_loss=("final_test_loss", "median"), clipped=("clipped_fraction", "median"),
        gate_open=("gate_open_fraction", "median"),
        failures=("why", lambda w: ", ".join(f"{k} {v}" for k, v in w[w != "solved"].value_counts().items()))).reset_index()
    out["solved [95% Wilson]"] = [fraction(int(k), int(n)) for k, n in zip(out["solved"], out["seeds"])]
    out = out.drop(columns=["solved"]).sort_values(base)
    md = [report.table("fair_comparison", out, "fair long-lag comparison: per protocol, cell and lag, "
                       "the (init, nonlinearity, lr) with the lowest mean validation loss over seeds "
                       "(a diverged seed counts as infinite), "
                       "its solved fraction on the test batch (95% Wilson), median test loss, median "
                       "fraction of steps clipped, median fraction of memory gates above 0.99 at the "
                       "end, and why unsolved runs failed (clipped on most steps: exploding; after "
                       "training the task loss's gradient at the farthest input under 1e-6 of the "
                       "nearest: vanishing)")]
    T = int(out["seq_len"].max())
    at = out[(out["task"] == "adding") & (out["seq_len"] == T)]
    if not at.empty:
        parts = []
        for proto, g in at.groupby("protocol"):
            cells = "; ".join(f"{row.cell} ({row.init}{'+' + row.nonlinearity if row.cell == 'rnn' else ''}, "
                              f"lr {row.lr:g}, H={row.hidden_size}) {row['solved [95% Wilson]']}"
                              for _, row in g.iterrows())
            parts.append(f"{proto.split(':')[0]}: {cells}")
        claims["fair"] = f"adding T={T}, solved seeds [95% Wilson], protocol " + "; protocol ".join(parts)
    return "\n".join(md)


def build(df: pd.DataFrame, report) -> Optional[SectionResult]:
    lr = of(df, "long_range")
    if "task" in lr:  # state tracking and selective copying are the modern-cells section's
        lr = lr[lr["task"].isin(LONG_LAG)]
    if lr.empty:
        return None
    r = runs(lr)
    r["trained_far_near"] = r["config_hash"].map(far_near(df))
    claims: dict = {}
    success = success_table(r)
    md = [INTRO, success_digest(success, report), loss_vs_lag_figure(r, report), curves_figure(lr, report),
          ladder_figure(r, report), fair_comparison(r, report, claims), trained_profiles(df, report, claims)]
    claims.update(long_lag_claim(success))
    return SectionResult(TITLE, ANCHOR, "\n".join(md), claims)


INTRO = ("Each run trains the cell with the fixed recipe (Adam, gradient-norm clipping, "
              "held-out test batch from its own seed). `adding`: the adding problem as Le et al. "
              "(2015) and Arjovsky et al. (2016) pose it, solved when test MSE < 0.01; the constant "
              "predictor scores 1/6 = 0.167. `adding_hs97`: Hochreiter & Schmidhuber's (1997) form, "
              "solved by their rule (MSE < 0.01 and every held-out sequence within 0.04); constant "
              "predictor 1/24. Copy memory: solved at 99% recall accuracy; memoryless baseline "
              "10 ln 8 / (T + 20). Solved fractions carry 95% Wilson intervals. Seconds to solve are training "
              "time with subnormal floats flushed to zero (`subnormals_flushed`; kept, a step can be "
              "several times slower: the CPU-cost section).\n")


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
                           "seed (its training loss went non-finite) counts as unsolved", shown=shown)


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


def long_lag_claim(success: pd.DataFrame) -> dict:
    adding = success[(success["task"] == "adding") & (success["forget_bias"].isna() | (success["forget_bias"] == 0))]
    if not adding.empty:
        T = 100 if (adding["seq_len"] == 100).any() else int(adding["seq_len"].min())
        at = adding[adding["seq_len"] == T]
        names = distinguishing(at)
        parts = []
        for _, row in at.iterrows():
            if row.solved:
                extra = f", median {row.median_steps_to_solve:.0f} steps / {row.median_seconds_to_solve:.0f} s"
            elif row.diverged == row.seeds:
                extra = ", every seed diverged (training loss not finite)"
            else:
                extra = f", final MSE {row.median_final_loss:.3f}"
            extra += f", {int(row.diverged)} diverged" if row.diverged and row.diverged < row.seeds else ""
            parts.append(f"{label(row, names)} solved {fraction(int(row.solved), int(row.seeds))}{extra}")
        return {"long_lag": f"adding problem (Le et al. form) T={T}, solved seeds [95% Wilson]: " + "; ".join(parts)}
    return {}


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
