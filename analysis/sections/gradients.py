"""Gradient reach: decay per step, half-life, horizons, theory beside measurement."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.fits import LOG10_2, decay_summary, steps
from analysis.load import of

TITLE, ANCHOR = "Gradient reach", "gradients"
KEYS = ["cell", "forget_bias", "num_layers", "bidirectional", "hidden_size", "seq_len"]


def profiles(df: pd.DataFrame) -> pd.DataFrame:
    """Gradient rows measured at initialisation by the `gradients` measure (not by long_range)."""
    g = of(df, "gradients")
    if "measure_task" in g.columns:
        g = g[g["measure_task"].isna()]
    return g


def summarize(g: pd.DataFrame) -> pd.DataFrame:
    """One row per point, condition and layer: decay_summary + configuration + theory."""
    rows = []
    for (chash, cond, layer), p in g.groupby(["config_hash", "condition", "layer"]):
        first = p.iloc[0]
        start = first.get("measure_fit_start", 0.1)
        end = first.get("measure_fit_end", 0.9)
        s = decay_summary(p, 0.1 if pd.isna(start) else start, 0.9 if pd.isna(end) else end)
        jac = first.get("jacobian_decay_per_step", np.nan)
        rows.append({"config_hash": chash, "condition": cond, "layer": layer,
                     **{k: first[k] for k in KEYS + ["seed", "input_size", "batch_size"]},
                     **s, "gate_decay_per_step": first.get("gate_decay_per_step", np.nan),
                     "jacobian_decay_per_step": jac,
                     "jacobian_half_life": LOG10_2 / -jac if jac < 0 else math.inf,
                     "mean_gate": first.get("mean_gate", np.nan),
                     "spectral_radius": first.get("spectral_radius", np.nan)})
    return pd.DataFrame(rows)


def half_life_table(summary: pd.DataFrame) -> pd.DataFrame:
    top = summary[(summary["layer"] == 0)]
    agg = top.groupby(KEYS, dropna=False).agg(
        seeds=("seed", "nunique"), decay_per_step=("decay_per_step", "median"),
        half_life_steps=("half_life_steps", "median"), r2=("r2", "median"),
        horizon_1e3=("horizon_1e3", "median"), horizon_1e6=("horizon_1e6", "median"),
        horizon_1e10=("horizon_1e10", "median"), ratio_far_near=("ratio_far_near", "median"),
        underflow_points=("underflow_points", "max"), fit_window=("fit_window", "first"),
        gate_decay_per_step=("gate_decay_per_step", "median"),
        jacobian_decay_per_step=("jacobian_decay_per_step", "median"),
        jacobian_half_life=("jacobian_half_life", "median")).reset_index()
    return agg.sort_values(KEYS)


def parity(g: pd.DataFrame) -> Optional[float]:
    """Largest relative difference of grad_norm between ref_lstm and lstm at the same point."""
    keys = [k for k in KEYS + ["seed", "batch_size", "input_size", "dtype", "device", "layer", "t"]
            if k != "cell"]
    a = g[g["cell"] == "lstm"].set_index(keys)["grad_norm"]
    b = g[g["cell"] == "ref_lstm"].set_index(keys)["grad_norm"]
    both = a.to_frame("lstm").join(b.to_frame("ref"), how="inner")
    both = both[both["lstm"] > 0]
    if both.empty:
        return None
    return float(((both["ref"] - both["lstm"]).abs() / both["lstm"]).max())


def build(df: pd.DataFrame, report) -> Optional["SectionResult"]:
    from analysis.report import SectionResult

    g = profiles(df)
    if g.empty:
        return None
    summary = summarize(g)
    table = half_life_table(summary)
    md, claims = [], {}
    md.append("Per-position gradient norm ||dL/dx_t|| from one backward pass (float64 on CPU), "
              "L reading the top layer at the end of each direction's pass. `decay_per_step` is "
              "the least-squares slope of log10 grad_norm against distance over the stated fit "
              "window; `half_life_steps` = log10(2)/-decay (`inf`: the gradient does not decay "
              "within the window); horizons are the steps for the fitted gradient to fall by 1e3, "
              "1e6, 1e10. Two predictions from the weights stand beside it: "
              "`gate_decay_per_step`, the textbook argument (LSTM family: mean log10 forget "
              "gate along the cell path; gru: mean log10 update gate; rnn: log10 of spectral "
              "radius of W_hh x mean tanh'), and `jacobian_decay_per_step`, the top Lyapunov "
              "exponent of the product of the full recurrent Jacobians d(h,c)_t/d(h,c)_{t-1} "
              "along the trajectory, which counts the hidden path as well as the cell path. "
              "Medians over seeds.\n")
    # Figure 1: profiles at the default init, faceted by layers and direction.
    fb_default = g["forget_bias"].isna() | (g["forget_bias"] == 0)
    cells_per_T = g[fb_default].groupby("seq_len")["cell"].nunique().sort_index(ascending=False)
    T = int(cells_per_T.idxmax())  # the longest lag at which the most cells were measured
    H = int(g.loc[fb_default & (g["seq_len"] == T), "hidden_size"].mode().iloc[0])
    sel = g[fb_default & (g["seq_len"] == T) & (g["hidden_size"] == H) & (g["layer"] == 0)
            & (g["grad_norm"] > 0)].copy()
    sel["log10_grad_norm"] = np.log10(sel["grad_norm"])
    grid = sns.relplot(data=sel, x="t", y="log10_grad_norm", hue="cell", kind="line",
                       col="num_layers", row="bidirectional", errorbar=("pi", 100), height=3,
                       aspect=1.4, facet_kws={"sharey": False})
    grid.set_axis_labels("position t (readout at the ends)", "log10 ||dL/dx_t||")
    md.append(report.figure("gradient_profiles", grid.figure,
                            f"log10 gradient norm against position, T={T}, hidden {H}, default "
                            f"init; band: range over seeds. Bidirectional rows are U-shaped."))
    md.append(report.table("half_lives", table, "half-lives per cell and configuration"))
    # Figure 2: the forget-bias ladder.
    lstm = table[table["cell"].isin(["lstm", "ref_lstm"]) & (table["num_layers"] == 1)
                 & ~table["bidirectional"]]
    if lstm["forget_bias"].nunique() > 1:
        # Decay per step, not half-life: a ladder rung whose gradient does not decay has an
        # infinite half-life that a log axis would silently drop.
        ladder = lstm.melt(id_vars=["forget_bias", "seq_len"], var_name="source", value_name="decay",
                           value_vars=["decay_per_step", "jacobian_decay_per_step", "gate_decay_per_step"])
        ax = sns.lineplot(data=ladder, x="forget_bias", y="decay", hue="source", style="source",
                          marker="o", errorbar=("pi", 100))
        ax.axhline(0, color="k", lw=1)
        ax.set(xlabel="forget-gate bias added", ylabel="decay per step (log10); 0 = no decay")
        hl = lstm.groupby("forget_bias")["half_life_steps"].median()
        md.append(report.figure("half_life_vs_forget_bias", ax.figure,
                                "LSTM gradient decay per step against the forget-gate bias, measured "
                                "and predicted (band: range over seq_len). Half-lives: " +
                                ", ".join(f"bias {b:g}: {'no decay' if np.isinf(v) else f'{v:.3g} steps'}"
                                          for b, v in hl.items())))
    # Figure 3: predicted against measured, both predictions.
    pred = table.melt(id_vars=["cell", "decay_per_step"], value_name="predicted", var_name="theory",
                      value_vars=["gate_decay_per_step", "jacobian_decay_per_step"]).dropna()
    ax = sns.scatterplot(data=pred, x="predicted", y="decay_per_step", hue="cell", style="theory")
    lim = [min(pred["predicted"].min(), pred["decay_per_step"].min()), max(0.0, pred["predicted"].max())]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="predicted decay per step (log10)", ylabel="measured decay per step (log10)")
    err = (table["jacobian_decay_per_step"] - table["decay_per_step"]).abs().median()
    gerr = (table["gate_decay_per_step"] - table["decay_per_step"]).abs().median()
    md.append(report.figure("decay_predicted_vs_measured", ax.figure,
                            f"predicted against measured decay per step; dashed: equality. Median "
                            f"|error|: Jacobian {err:.3g}, gate-only {gerr:.3g} log10 per step"))
    md.append(seq_len_independence(summary, report))
    md.append(depth_attenuation(summary, report))
    p = parity(g)
    if p is not None:
        claims["gates"] = f"ref_lstm vs nn.LSTM gradient profiles: max relative difference {p:.1e}"
    uni = table[(table["num_layers"] == 1) & ~table["bidirectional"]]
    T_claim = int(uni.groupby("seq_len")["cell"].nunique().sort_index(ascending=False).idxmax()) if not uni.empty else T
    single = uni[uni["seq_len"] == T_claim]
    hl = {(r.cell, r.forget_bias): r.half_life_steps for r in single.itertuples()}
    parts = [f"{c}{'' if pd.isna(fb) or c not in ('lstm',) else f' (fb {fb:g})'} {steps(v)}"
             for (c, fb), v in sorted(hl.items(), key=lambda kv: (kv[0][0], -1 if pd.isna(kv[0][1]) else kv[0][1]))
             if c != "ref_lstm"]
    if parts:
        claims["reach"] = f"half-life at init, T={T_claim}: " + ", ".join(parts) + " steps"
    bi = summary[summary["bidirectional"] & (summary["seq_len"] == T) & (summary["layer"] == 0)]
    if not bi.empty:
        claims["bidir"] = (f"longest gradient path {int(bi['max_distance'].max())} steps "
                           f"bidirectional vs {T - 1} unidirectional (T={T}, U-shaped profile)")
    return SectionResult(TITLE, ANCHOR, "\n".join(md), claims)


def seq_len_independence(summary: pd.DataFrame, report) -> str:
    """Decay per step against seq_len at fixed weights (same seed = same weights)."""
    top = summary[(summary["layer"] == 0) & (summary["condition"] == "init")].copy()
    keys = ["cell", "forget_bias", "num_layers", "bidirectional", "hidden_size"]
    top["forget_bias"] = top["forget_bias"].fillna(-1)  # pivot_table drops NaN keys
    pivot = top.pivot_table(index=keys, columns="seq_len", values="decay_per_step", aggfunc="median")
    pivot = pivot[pivot.notna().sum(axis=1) > 2]
    if pivot.empty:
        return ""
    long = [c for c in pivot.columns if c >= 100]
    per_seed = top[top["seq_len"] >= 100].groupby(keys + ["seed"])["decay_per_step"].agg(
        lambda d: (d.max() - d.min()) / abs(d.median()) if len(d) > 1 else np.nan)
    pivot["rel_spread_T>=100"] = per_seed.groupby(level=keys).median()
    pivot = pivot.reset_index()
    pivot["forget_bias"] = pivot["forget_bias"].replace(-1, np.nan)
    pivot.columns = [f"T={c}" if isinstance(c, (int, np.integer)) else c for c in pivot.columns]
    return report.table("decay_vs_seq_len", pivot, "decay per step against seq_len (median over "
                        f"seeds); rel_spread over T >= 100 ({len(long)} lags) per seed, median: "
                        "short sequences read the transient near the readout")


def depth_attenuation(summary: pd.DataFrame, report) -> str:
    """Per layer k (its input; 0 = x): gradient at the nearest step, relative to the top layer's
    input, and the decay per step along time."""
    deep = summary[summary["num_layers"] > 1].copy()
    if deep.empty:
        return ""
    deep["log10_near"] = np.log10(deep["near_grad"])
    top = deep[deep["layer"] == deep["num_layers"] - 1].set_index("config_hash")["log10_near"]
    deep["near_vs_top_log10"] = deep["log10_near"] - deep["config_hash"].map(top)
    t = deep.groupby(["cell", "num_layers", "bidirectional", "layer"], dropna=False).agg(
        near_vs_top_log10=("near_vs_top_log10", "median"), decay_per_step=("decay_per_step", "median"),
        points=("config_hash", "nunique")).reset_index()
    return report.table("depth_attenuation", t, "depth attenuation: log10 of the gradient at the "
                        "nearest step at layer k's input over the top layer's input (0 = x), and the "
                        "decay per step along time; medians over widths and seeds")
