"""Training cost: step time, tokens/s, FLOP/s against the measured peak, memory, cost ratios."""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from analysis.load import of
from analysis.reduce.crossover import all_evidence, length_text
from analysis.reduce.crossover import crossover as reduce_crossover
from analysis.reduce.throughput import by_config, cost_fit, points, ratios
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_MARKERS, CELL_PALETTE
from analysis.report.words import NAMES, describe

TITLE, ANCHOR = "Training cost", "throughput"


def build(df: pd.DataFrame, report) -> Optional[SectionResult]:
    tp = of(df, "throughput")
    if tp.empty:
        return None
    each = points(tp)                      # a row per point and round: the ratios read the rounds
    p = by_config(each)                    # a row per configuration: the tables and figures
    quiet = each[~each["noisy"].astype(bool)]  # ratios only from points that passed the noise check
    r = ratio_table(quiet)
    crossover_claims: dict = {}
    crossover_md, crossover_evidence = crossover(each, report, crossover_claims)
    md = [INTRO, points_table(p, report), noise_line(p), ratio_digest(r, report), depth_table(p, quiet, report),
          crossover_md]
    fit = cost_fit(p)
    if not fit.empty:
        md.append(report.table("cost_fit", fit, "per-step cost fit time = a + b*seq_len"))
    uni = p[~p["bidirectional"].astype(bool) & (p["num_layers"] == 1)]
    md += [tokens_figure(p, report), lstm_rnn_figure(r, report), peak_figure(p, uni, report), memory_figure(uni, report)]
    return SectionResult(TITLE, ANCHOR, "\n".join(md), crossover_claims, evidence={**evidence(r), **crossover_evidence})


INTRO = ("One training step = forward (with the loss on the readout), backward, Adam step; each "
        "repetition a row, medians here. FLOPs are analytic: per layer and direction, per step "
        "FLOPs are counted by torch.utils.flop_counter on the step that runs (`flops_source` "
        "flop_counter); fused kernels hide their matmuls from the counter, so there a formula "
        "that a test holds to the counter's count on the native path within 1% gives them "
        "(`formula`). Layer 0's input gradient is never computed, so training is under 3x "
        "forward. The peak is a matmul of the same dtype timed inside the same point. "
        "`backend`: the kernel observed in a profiled step (onednn/cudnn fused, or aten's native "
        "loop; `measure_backend=native` forces it); a point whose observed kernel differs from "
        "the requested one fails. Memory is read, not modelled: on CPU the peak of live bytes "
        "allocated during one training step, from torch's allocation events (a profiled step of "
        "its own, `peak_mem_source` cpu_allocation_events); on CUDA "
        "torch.cuda.max_memory_allocated. The two are different quantities and are never drawn "
        "on one axis. Ratios carry a 95% interval, over interleaved rounds where the store has them "
        "(`interval_covers` says which).\n")


def points_table(p: pd.DataFrame, report) -> str:
    cols = ["cell", "measure_backend", "backend", "device", "dtype", "input_size", "threads", "hidden_size", "num_layers", "bidirectional",
            "seq_len", "batch_size", "median_forward_ms", "median_backward_ms", "median_step_ms",
            "iqr_step_ms", "rel_iqr", "noisy", "tokens_per_s", "achieved_flops_per_s",
            "fraction_of_peak", "flops_source", "peak_mem_bytes", "peak_mem_source", "params",
            "roofline_ms", "roofline_fraction", "bytes_per_min_bytes"]
    if "path" in p and p["path"].notna().any():  # the diagonal cells' path (bench/cells/recurrence.py PATHS)
        cols[2:2] = ["path", "chunk"]
    full = p[[c for c in cols if c in p]].sort_values([c for c in cols[:11] if c in p])
    shown = pd.DataFrame({
        "configuration": describe(full, ["cell", "measure_backend", "backend", "path", "chunk", "dtype", "input_size",
                                         "threads", "hidden_size", "num_layers", "bidirectional", "batch_size"],
                                  NAMES).values,
        "T": full["seq_len"].values,
        "step, ms (median, IQR)": [f"{a:.3g} ({b:.2g})" for a, b in zip(full["median_step_ms"], full["iqr_step_ms"])],
        "tokens/s": full["tokens_per_s"].map("{:.3g}".format).values,
        "FLOP/s (of matmul peak)": [f"{a:.3g} ({b:.0%})" for a, b in zip(full["achieved_flops_per_s"], full["fraction_of_peak"])],
        "peak memory, MiB": (full["peak_mem_bytes"] / 2 ** 20).map("{:.3g}".format).values})
    if "roofline_ms" in full:  # bound / step time: 1 is at the roofline
        shown["roofline, ms (of step)"] = [f"{a:.3g} ({b:.0%})" if pd.notna(a) else ""
                                           for a, b in zip(full["roofline_ms"], full["roofline_fraction"])]
    return report.table("throughput_points", full, "step time per point (ms, median and IQR over "
                           "repetitions), rates and memory (the csv has forward and backward, sources, "
                           "parameters); roofline: a model of the least time a step can take, its matmul "
                           "FLOPs at the calibrated matmul peak plus its compulsory bytes at the triad's "
                           "bandwidth, one after the other (a consistency check, not a prediction: data "
                           "that stays in cache or overlap of the two can beat it)", shown=shown)


def noise_line(p: pd.DataFrame) -> str:
    noisy = p["rel_iqr"]
    return (f"Noise: relative IQR of step time, median {noisy.median():.1%}, worst "
              f"{noisy.max():.1%}; {int((p['attempt'] > 1).sum())} of {len(p)} points were "
              f"re-measured and {int(p['noisy'].sum())} stayed above the limit (flagged `noisy`, "
              "left out of the ratios, except the crossover's, whose interval over rounds covers them).\n")


def ratio_table(quiet: pd.DataFrame) -> pd.DataFrame:
    """Step-time ratios at equal configuration: LSTM/RNN, GRU/RNN, bidirectional/unidirectional,
    ref_lstm/lstm."""
    r = pd.concat([ratios(quiet, "cell", "lstm", "rnn", "lstm/rnn (4x FLOPs)"),
                   ratios(quiet, "cell", "gru", "rnn", "gru/rnn (3x FLOPs)"),
                   ratios(quiet, "bidirectional", True, False, "bidirectional/unidirectional (2x)"),
                   ratios(quiet, "cell", "ref_lstm", "lstm", "ref_lstm/lstm (Python loop vs fused)")])
    if not r.empty:
        r["bidirectional"] = r["bidirectional"].astype(bool)
        r = r.sort_values(["ratio_kind", "measure_backend", "hidden_size", "num_layers", "bidirectional", "seq_len"])
    return r


def ratio_digest(r: pd.DataFrame, report) -> str:
    if r.empty:
        return ""
    show = ["ratio_kind", "cell", "measure_backend", "hidden_size", "num_layers", "bidirectional",
            "seq_len", "batch_size", "ratio", "ratio_lo", "ratio_hi", "interval_covers", "rounds", "rel_spread"]
    return report.table("cost_ratios", r[[c for c in show if c in r.columns]], "step-time ratios "
                        "at equal configuration (noisy points left out), beside the FLOP ratio; "
                        "[ratio_lo, ratio_hi]: 95% interval, over interleaved rounds where interval_covers "
                        "is 'rounds' (one ratio per round), else a bootstrap over one run's repetitions; "
                        "rel_spread: the two points' relative IQRs added")


def depth_table(p: pd.DataFrame, quiet: pd.DataFrame, report) -> str:
    layers = ratios(quiet[quiet["num_layers"].isin([1, p["num_layers"].max()])], "num_layers",
                    p["num_layers"].max(), 1, "L layers / 1 layer") if quiet["num_layers"].nunique() > 1 else pd.DataFrame()
    if layers.empty:
        return ""
    return report.table("depth_ratios", layers[["cell", "measure_backend", "hidden_size", "seq_len", "ratio"]],
                        f"step time with {p['num_layers'].max()} layers over 1 layer")


def tokens_figure(p: pd.DataFrame, report) -> str:
    H = int(p.groupby("hidden_size")["seq_len"].nunique().sort_index(ascending=False).idxmax())
    sub = p[(p["hidden_size"] == H)]
    grid = sns.relplot(data=sub, x="seq_len", y="tokens_per_s", hue="cell", palette=CELL_PALETTE, style="measure_backend",
                       col="num_layers", row="bidirectional", kind="line", marker="o", height=3,
                       aspect=1.3, errorbar=None)
    grid.set(yscale="log")
    return report.figure("tokens_per_s", grid.figure, f"training tokens/s against seq_len, hidden {H} "
                            f"(solid: default backend, dashed: native)")


def lstm_rnn_figure(r: pd.DataFrame, report) -> str:
    lr = r[r["ratio_kind"].str.startswith("lstm/rnn")] if not r.empty else r
    if lr.empty or lr["hidden_size"].nunique() < 2:
        return ""
    named = lr.assign(backend=lr["measure_backend"].map(BACKEND_NAMES).fillna(lr["measure_backend"]))
    ax = sns.lineplot(data=named, x="hidden_size", y="ratio", hue="backend", marker="o", errorbar=("pi", 100))
    sns.move_legend(ax, "lower right", title="backend asked for", fontsize="small")
    ax.axhline(4, color="k", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set(ylabel="LSTM / RNN step time", xlabel="hidden size")
    ax.set_title("An LSTM step costs " + ", ".join(f"{g['ratio'].median():.2f}x ({b})" for b, g in named.groupby("backend"))
                 + "\nan RNN's, median; dashed: 4x the FLOPs", fontsize="medium")
    return report.figure("lstm_rnn_ratio", ax.figure, "LSTM/RNN step-time ratio against hidden "
                            "size; dashed: the 4x FLOP ratio; band: range over the other keys "
                            "(seq_len, batch, direction)")


def peak_figure(p: pd.DataFrame, uni: pd.DataFrame, report) -> str:
    grid = sns.catplot(data=uni, x="cell", y="fraction_of_peak", hue="backend", col="hidden_size",
                       kind="bar", estimator="median", errorbar=("pi", 100), height=3, aspect=1.1)
    grid.set_axis_labels("cell", "FLOP/s / measured matmul peak")
    return report.figure("fraction_of_peak", grid.figure, "achieved training FLOP/s as a fraction of "
                            f"the matmul peak measured in the same point (median peak "
                            f"{p['calib_flops_per_s'].median() / 1e9:.0f} GFLOP/s); 1 layer, "
                            "unidirectional; bars: median, whiskers: range over seq_len and batch")


def memory_figure(uni: pd.DataFrame, report) -> str:
    reading = uni["peak_mem_source"].map({"cpu_allocation_events": "CPU allocations",
                                          "cuda_max_memory_allocated": "CUDA max allocated"})
    grid = sns.relplot(data=uni.assign(peak_mib=uni["peak_mem_bytes"] / 2 ** 20,
                                       reading=reading.fillna(uni["peak_mem_source"])),
                       x="seq_len", y="peak_mib", hue="cell", palette=CELL_PALETTE, style="backend", col="hidden_size",
                       row="reading", kind="line", marker="o", errorbar=None, height=3, aspect=1.2,
                       facet_kws={"sharey": False})
    grid.set_titles("{row_name}, hidden {col_name}")
    grid.set_axis_labels("sequence length", "peak memory (MiB)")
    lstm = uni[uni["cell"] == "lstm"].pivot_table(index=["hidden_size", "seq_len", "batch_size"], columns="backend",
                                                  values="peak_mem_bytes", aggfunc="median")
    fused = [b for b in ("onednn", "cudnn") if b in lstm.columns]
    if fused and "native" in lstm.columns:
        m = (lstm[fused[0]] / lstm["native"]).dropna()
        grid.figure.suptitle(f"Peak memory grows with seq_len; the fused LSTM ({fused[0]}) holds {m.min():.2f}x to "
                             f"{m.max():.2f}x the native loop's", y=1.02)
    return report.figure("memory", grid.figure, "peak memory of a training step against seq_len "
                            "(1 layer, unidirectional); one row per reading (CPU: peak of live bytes "
                            "allocated during the step, from torch's allocation events; CUDA: "
                            "max_memory_allocated), never mixed on one axis")


def evidence(r: pd.DataFrame) -> dict:
    """What the claims judge (analysis/report/verdicts.py): per configuration, the LSTM/RNN and
    the bidirectional/unidirectional LSTM step-time ratios with their intervals; the headline is
    the native backend at hidden 256, seq_len 100 where measured."""
    if r.empty:
        return {}

    def frame(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.copy()
        rows["scope"] = [f"{b}, H={h}, T={t}, B={n}" for b, h, t, n in
                         zip(rows["measure_backend"], rows["hidden_size"], rows["seq_len"], rows["batch_size"])]
        rows["headline"] = (rows["measure_backend"] == "native") & (rows["hidden_size"] == 256) & (rows["seq_len"] == 100)
        return rows[["scope", "ratio", "ratio_lo", "ratio_hi", "interval_covers", "headline"]]

    out = {}
    lr = r[r["ratio_kind"].str.startswith("lstm/rnn") & ~r["bidirectional"].astype(bool)]
    if not lr.empty:
        out["slower"] = frame(lr)
    bi = r[r["ratio_kind"].str.startswith("bidirectional") & (r.get("cell", pd.Series(index=r.index)) == "lstm")]
    if not bi.empty:
        out["bidir"] = frame(bi)
    return out


BACKEND_NAMES = {"auto": "default: oneDNN LSTM, native RNN", "native": "native loop for both"}
PATH_STYLE = {"onednn": "-", "cudnn": "-", "native": ":", "loop": "--", "scan": "-.",
              "fused_loop": (0, (5, 1)), "chunked": (0, (3, 1, 1, 1, 1, 1)), "cpp": (0, (1, 1)),
              "compiled": (0, (8, 2, 1, 2))}


def crossover_figure(g: pd.DataFrame, report, title: str, caption: str) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, d in g.sort_values("seq_len").groupby("path"):
        cell, kind = name.split(" ", 1)
        style = dict(color=CELL_PALETTE.get(cell), ls=PATH_STYLE.get(kind, "-"), marker=CELL_MARKERS.get(cell, "o"),
                     ms=4, label=name)
        axes[0].plot(d["seq_len"], d["median_step_ms"], **style)
        axes[1].plot(d["seq_len"], d["peak_mem_bytes"] / 2 ** 20, **style)
    for ax, ylabel in zip(axes, ["training step, ms (median)", "peak memory, MiB (measured)"]):
        ax.set(xscale="log", yscale="log", xlabel="sequence length", ylabel=ylabel)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small")
    fig.suptitle(f"Training step against sequence length: {title}")
    return report.figure("crossover", fig, caption)


def crossover(p: pd.DataFrame, report, claims: dict) -> tuple:
    """Step time and memory against seq_len per cell and path (fused kernel, native loop; a
    diagonal cell's `model.path`: parallel scan, sequential loop, the linear-space kernels), per
    thread count: the ratios, who overtakes whom from which length (analysis/reduce/crossover.py),
    and what memory it pays. Returns (markdown, evidence for the claims)."""
    groups = reduce_crossover(p)
    if not groups:
        return "", {}
    ratios = pd.concat([g[3] for g in groups], ignore_index=True)
    lengths = pd.concat([g[4] for g in groups], ignore_index=True)
    refs = groups[0][2]
    md = [report.table("crossover_ratios", ratios, "step-time ratios at equal seq_len and thread count (below 1: "
                       "the first is faster), with the 95% interval [ratio_lo, ratio_hi] (interval_covers: over "
                       "interleaved rounds, the two sides timed in one group of each round, or one run's "
                       "repetitions); every point is kept, also those the noise check flags: a noisy round "
                       "widens the interval over rounds, where leaving it out would leave too few rounds "
                       "for any interval at the longest lengths; memory_ratio: measured peak memory, first over second; the torch.nn cells "
                       f"on their fastest backend here ({', '.join(refs.values())})")]
    if not lengths.empty:
        shown = lengths.assign(verdict=[length_text(r) for r in lengths.itertuples()],
                               at_longest=[f"{r.ratio:.2f} [{r.ratio_lo:.2f}, {r.ratio_hi:.2f}] at T={r.longest}"
                                           for r in lengths.itertuples()])
        md.append(report.table("crossover_lengths", lengths, "who overtakes whom from which length: the shortest "
                               "seq_len from which the first side's interval lies wholly below 1 at that and every "
                               "longer length measured (faster_from), or the second's (slower_from)",
                               shown=shown[["threads", "comparison", "lengths", "verdict", "at_longest"]]))
    g = groups[0][1]
    first = g.iloc[0]
    device = str(first["device_name"]) if "device_name" in g else str(first["device"])
    threads = int(first["threads"])
    against = lengths[lengths["comparison"].str.endswith(refs.get("lstm", "-")) & lengths["faster_from"].notna()
                      & (lengths["threads"] == threads)]
    cells = sorted(set(" ".join(c.split()[:2]) for c in against["comparison"]))
    title = f"{', '.join(cells)} overtake the fused LSTM" if cells else "no diagonal cell's path overtakes the fused LSTM"
    md.insert(0, crossover_figure(by_config(g), report, f"{title} ({device}, {first['dtype']}, {threads} thread)",
                                  f"step time and memory against seq_len, hidden {first['hidden_size']}, batch "
                                  f"{first['batch_size']}, {first['dtype']}, {threads} thread: colour = cell, line = "
                                  "path (solid: fused kernel; dotted: native loop of torch.nn; dashed: the cell's own "
                                  "sequential loop; dash-dot: parallel scan; the finer dashes: the linear-space "
                                  "kernels fused_loop, chunked, cpp, compiled)"))
    return "\n".join(md), all_evidence(groups)
