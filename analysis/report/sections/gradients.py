"""Gradient reach: decay per step, half-life, horizons, theory beside measurement."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd
import seaborn as sns

from analysis.load import group_keys
from analysis.reduce.gradients import THEORY, defaults, half_life_table, ladder_rows, parity, profiles, summarize
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_PALETTE
from analysis.report.sections.gradient_studies import initialisation
from analysis.report.words import NAMES, describe

TITLE, ANCHOR = "Gradient reach", "gradients"


def build(df: pd.DataFrame, report) -> Optional[SectionResult]:
    g = profiles(df)
    if g.empty:
        return None
    summary = summarize(g)
    table = half_life_table(summary)
    md = [INTRO]
    figure, T = profiles_figure(g, table, report)
    md += [figure, half_life_digest(table, report)]
    init_md, init_evidence = initialisation(table, report)
    md.append(init_md)
    md += [ladder_figure(table, report), theory_figure(table, report),
           seq_len_independence(summary, report), depth_attenuation(summary, report)]
    return SectionResult(TITLE, ANCHOR, "\n".join(md), evidence={**evidence(g, table), **init_evidence})


INTRO = ("Per-position gradient norm ||dL/dx_t|| per sample from one backward pass (float64 "
              "on CPU), L reading the top layer at the end of each direction's pass through a fixed "
              "random projection. `decay_per_step` is the mean over samples and seeds of each "
              "sample's least-squares slope of log10 ||dL/dx_t|| against distance over the stated "
              "window (the slope of the geometric-mean profile: the typical sample), with a 95% "
              "bootstrap interval [`decay_lo`, `decay_hi`] that resamples seeds, then samples. "
              "`half_life` = log10(2)/-decay with its interval; where the interval reaches zero "
              "decay it is a lower bound (`> N` steps). `decay_batch_mean` is the slope of the "
              "arithmetic batch mean, which the slowest samples dominate: shown, never used for "
              "a claim. Beside it: " + "; ".join(f"`{k}`: {v}" for k, v in THEORY.items()) + ".\n")


def profiles_figure(g: pd.DataFrame, table: pd.DataFrame, report) -> tuple:
    """Profiles at the default init, faceted by layers and direction: (markdown, T)."""
    fb_default = ((g["forget_bias"].isna() | (g["forget_bias"] == 0)) & (g["init"] == "default")
                  & (g["gain"] == 1.0) & (g["nonlinearity"] == "tanh"))
    cells_per_T = g[fb_default].groupby("seq_len")["cell"].nunique().sort_index(ascending=False)
    T = int(cells_per_T.idxmax())  # the longest lag at which the most cells were measured
    H = int(g.loc[fb_default & (g["seq_len"] == T), "hidden_size"].mode().iloc[0])
    sel = g[fb_default & (g["seq_len"] == T) & (g["hidden_size"] == H) & (g["layer"] == 0)
            & (g["grad_norm"] > 0)].copy()
    sel["log10_grad_norm"] = np.log10(sel["grad_norm"])
    sel["direction"] = np.where(sel["bidirectional"].astype(bool), "bidirectional", "unidirectional")
    grid = sns.relplot(data=sel, x="t", y="log10_grad_norm", hue="cell", palette=CELL_PALETTE, kind="line",
                       col="num_layers", row="direction", errorbar=("pi", 100), height=3,
                       aspect=1.4, facet_kws={"sharey": False})
    grid.set_titles(row_template="{row_name}", col_template="{col_name} layer(s)")
    grid.set_axis_labels("position t (readout at the ends)", "log10 gradient norm")
    at = defaults(table)
    at = at[(at["seq_len"] == T) & (at["hidden_size"] == H) & (at["num_layers"] == 1) & (at["condition"] == "init")
            & ~at["bidirectional"].astype(bool) & (at["forget_bias"].isna() | (at["forget_bias"] == 0))]
    if not at.empty:
        grid.figure.suptitle(f"At PyTorch's default init every cell's gradient halves within a few steps\n"
                             f"(T={T}; half-life, steps: " + ", ".join(
                                 f"{r.cell} {r.half_life_steps:.3g}" for r in at.drop_duplicates("cell").itertuples()) + ")",
                             y=1.08)
    return report.figure("gradient_profiles", grid.figure,
                            f"log10 gradient norm (geometric mean over samples) against position, "
                            f"T={T}, hidden {H}, default init; band: range over seeds. "
                            "Bidirectional rows are U-shaped."), T


def half_life_digest(table: pd.DataFrame, report) -> str:
    """Every configuration's half-life, with a note where scan profiles are in the store."""
    md = []
    full = table.drop(columns=["loss_kind"])
    shown = pd.DataFrame({
        "configuration": describe(full, ["cell", "forget_bias", "init", "gain", "nonlinearity", "hidden_size",
                                         "num_layers", "bidirectional", "scan", "condition"], NAMES),
        "T": full["seq_len"], "seeds": full["seeds"],
        "decay per step, log10 [95% CI]": [f"{r.decay_per_step:.3g} [{r.decay_lo:.3g}, {r.decay_hi:.3g}]"
                                           for r in full.itertuples()],
        "half-life, steps [95% CI]": full["half_life"],
        "gate theory": full["gate_decay_per_step"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}"),
        "Jacobian exponent": full["jacobian_decay_per_step"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")})
    if "scan" in full and (full["scan"].astype(str).str.lower() == "true").any():
        md.append("> **Scan profiles:** rows with `scan True` were differentiated through the log-space "
                  "parallel scan, whose float64 gradient floors near 1e-15 of the nearest position's "
                  "(tests/test_modern.py): where the decay is fast that floor reads as a slow decay. "
                  "The same cell with `model.scan=false` gives the exact profile.\n")
    md.append(report.table("half_lives", full, "half-lives per cell and configuration, 95% intervals "
                           "(the csv has every column: fit window, r2, batch-mean decay, far/near ratio)",
                           shown=shown))
    return "\n".join(md)


def ladder_figure(table: pd.DataFrame, report) -> str:
    """The forget-bias ladder: decay per step against the bias, measured and from the weights."""
    lstm = ladder_rows(table)
    if lstm["forget_bias"].nunique() < 2:
        return ""
    # Decay per step, not half-life: a rung whose gradient does not decay has no finite
    # half-life for a log axis.
    ladder = lstm.rename(columns={"decay_per_step": "measured (geometric mean)", **THEORY}).melt(
        id_vars=["forget_bias", "seq_len"], var_name="source", value_name="decay",
        value_vars=["measured (geometric mean)", THEORY["gate_decay_per_step"],
                    THEORY["jacobian_decay_per_step"]])
    ax = sns.lineplot(data=ladder, x="forget_bias", y="decay", hue="source", style="source",
                      marker="o", errorbar=("pi", 100))
    ax.axhline(0, color="k", lw=1)
    sns.move_legend(ax, "lower right", title=None, fontsize="small")  # clear of the curves
    ax.set(xlabel="forget-gate bias added", ylabel="decay per step (log10); 0 = no decay")
    hl = lstm.sort_values("seq_len").groupby("forget_bias")["half_life"].last()
    grows = lstm[lstm["decay_lo"] > 0]["forget_bias"]
    ax.set_title("Each unit of forget-gate bias slows an LSTM's gradient decay at init" +
                 (f";\nfrom bias {grows.min():g} on it grows with distance" if len(grows) else ""), fontsize="medium")
    return report.figure("half_life_vs_forget_bias", ax.figure,
                            "LSTM gradient decay per step against the forget-gate bias, measured "
                            "and from the weights (band: range over seq_len). Half-lives at the "
                            "longest T, 95% interval: " +
                            ", ".join(f"bias {b:g}: {v} steps" for b, v in hl.items()))


def theory_figure(table: pd.DataFrame, report) -> str:
    """Decay per step from the weights against the measured one."""
    pred = table.melt(id_vars=["cell", "decay_per_step"], value_name="from_weights", var_name="theory",
                      value_vars=list(THEORY)).dropna()
    pred["theory"] = pred["theory"].map(THEORY)
    ax = sns.scatterplot(data=pred, x="from_weights", y="decay_per_step", hue="cell", palette=CELL_PALETTE, style="theory")
    lim = [min(pred["from_weights"].min(), pred["decay_per_step"].min()), max(0.0, pred["from_weights"].max())]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="decay per step from the weights (log10)", ylabel="measured decay per step (log10)")
    if ax.get_legend() is not None:  # none when no row has a theory column
        sns.move_legend(ax, "center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small")
    errs = {THEORY[t]: (table[t] - table["decay_per_step"]).abs().median() for t in THEORY}
    gate = (table["gate_decay_per_step"] - table["decay_per_step"]).dropna()
    if len(gate):
        ax.set_title("The Jacobian product matches the measurement (as it must); the gate theory "
                     f"predicts\n{'faster' if gate.median() < 0 else 'slower'} decay than measured "
                     f"(median by {abs(gate.median()):.2g} log10 per step)", fontsize="medium")
    return report.figure("decay_predicted_vs_measured", ax.figure,
                            "decay per step from the weights against the measured one; dashed: "
                            "equality. Median |difference|: " +
                            "; ".join(f"{k} {v:.3g}" for k, v in errs.items() if pd.notna(v)))


def evidence(g: pd.DataFrame, table: pd.DataFrame) -> dict:
    """What the claims judge (analysis/report/verdicts.py): the ref_lstm parity; per sequence
    length, the LSTM's and the tanh RNN's decay at PyTorch's default init (one layer, one
    direction, the most-measured hidden size)."""
    out = {"gates": {"max_rel_diff": parity(g)}}
    d = defaults(table)
    uni = d[(d["num_layers"] == 1) & ~d["bidirectional"].astype(bool) & (d["condition"] == "init")
            & (d["init"] == "default") & (d["gain"] == 1.0) & (d["nonlinearity"] == "tanh")
            & (d["forget_bias"].isna() | (d["forget_bias"] == 0)) & d["cell"].isin(["lstm", "rnn"])]
    if uni.empty:
        return out
    H = uni["hidden_size"].mode().iloc[0]
    uni = uni[uni["hidden_size"] == H]
    # every other key that varies names the configuration (points that differ are never pooled)
    varying = [k for k in group_keys(uni, ["seq_len"], exclude=("seed", "cell", "forget_bias")) if k != "seq_len"]
    rows = []
    for r in uni.sort_values("seq_len").to_dict("records"):
        scope = ", ".join([f"T={int(r['seq_len'])}"] + [f"{k}={r[k]}" for k in varying])
        rows.append({"scope": scope, "cell_role": r["cell"], "name": r["cell"], "decay_lo": r["decay_lo"],
                     "decay_hi": r["decay_hi"], "half_life": r["half_life"]})
    out["reach"] = pd.DataFrame(rows)
    return out


def seq_len_independence(summary: pd.DataFrame, report) -> str:
    """Decay per step against seq_len at fixed weights (same seed = same weights)."""
    top = summary[(summary["layer"] == 0) & (summary["condition"] == "init")].copy()
    keys = group_keys(top, ["cell", "forget_bias", "num_layers", "bidirectional", "hidden_size"],
                      exclude=("seed", "seq_len"))
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
    keys = group_keys(deep, ["cell", "num_layers", "bidirectional"], exclude=("seed", "hidden_size"))
    t = deep.groupby(keys + ["layer"], dropna=False).agg(
        near_vs_top_log10=("near_vs_top_log10", "median"), decay_per_step=("decay_per_step", "median"),
        points=("config_hash", "nunique")).reset_index()
    return report.table("depth_attenuation", t, "depth attenuation: log10 of the gradient at the "
                        "nearest step at layer k's input over the top layer's input (0 = x), and the "
                        "decay per step along time; medians over widths and seeds")
