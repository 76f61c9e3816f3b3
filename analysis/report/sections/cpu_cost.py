"""What makes it slow on a CPU: subnormal floats, sequence length against the caches, threads,
and oneDNN against the native loop by size (`make bench EXP=cpu_cost`).

Reads the throughput points of the store; each part appears when the store holds its contrast
(the same configuration with subnormals kept and flushed, at several threads, on both backends).
Every ratio has its interval from analysis/reduce/ratios.py: over interleaved rounds where the
store holds them (bench/run/rounds.py), else over the repetitions of one run, and says which.
"""
from __future__ import annotations

from typing import List, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.load import as_text, of
from analysis.reduce.throughput import by_config, paired, points
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_MARKERS, CELL_PALETTE

TITLE, ANCHOR = "What makes it slow on a CPU", "cpu-cost"
SHAPE = ["input_size", "hidden_size", "num_layers", "bidirectional", "batch_size", "dtype"]
CACHES = [("L2", "cache_l2_bytes"), ("L3", "cache_l3_bytes")]


def ci(r) -> str:
    return f"{r.ratio:.2f}x [{r.ratio_lo:.2f}, {r.ratio_hi:.2f}]"


def subnormals(p: pd.DataFrame, report, advice: list, claims: dict) -> List[str]:
    keys = ["path", "measure_loss", "seq_len", "threads"] + SHAPE
    t = paired(p, "measure_flush_denormal", False, True, keys)
    if t.empty:
        return []
    t = t.rename(columns={"num_ms": "kept_ms", "den_ms": "flushed_ms"}).sort_values(["path", "measure_loss", "seq_len"])
    if "subnormal_dx_fraction" in p:
        one = by_config(p)
        frac = one[one["measure_flush_denormal"] == False].set_index(keys)["subnormal_dx_fraction"]  # noqa: E712
        t["subnormal_dx_fraction"] = [frac.get(tuple(r[k] for k in keys), np.nan) for _, r in t.iterrows()]
    else:
        t["subnormal_dx_fraction"] = np.nan
    shown = pd.DataFrame({"cell, backend": t["path"], "loss on": t["measure_loss"], "seq_len": t["seq_len"],
                          "step ms, subnormals kept": t["kept_ms"].map("{:.1f}".format),
                          "step ms, flushed": t["flushed_ms"].map("{:.1f}".format),
                          "kept / flushed [95% CI]": [ci(r) for r in t.itertuples()],
                          "subnormal share of dL/dx, kept": t["subnormal_dx_fraction"].map(
                              lambda v: "-" if pd.isna(v) else f"{v:.1%}")})
    md = [report.table("subnormal_cost", t, "training step with subnormal floats kept against flushed "
                       "to zero (torch.set_flush_denormal), the same configuration otherwise; ratio of "
                       "medians with its 95% interval (interval_covers: interleaved rounds or the "
                       "repetitions of one run)", shown=shown)]
    last, every = t[t["measure_loss"] == "last"], t[t["measure_loss"] == "every"]
    pool = last if len(last) else t  # the last-step loss is where gradients vanish into subnormals
    worst = pool.loc[pool["ratio"].idxmax()]
    md.append(subnormal_figure(t, worst, report))
    slow = last[last["ratio_lo"] > 1.5]
    if len(slow):
        first = slow.sort_values("seq_len").iloc[0]
        advice.append(f"Flush subnormals (`torch.set_flush_denormal(True)`) when the loss sits on the last "
                      f"step: from seq_len {int(first.seq_len)} on ({first.path}: {ci(first)}), up to "
                      f"{ci(last.loc[last['ratio'].idxmax()])} ({last.loc[last['ratio'].idxmax(), 'path']}, "
                      f"seq_len {int(last.loc[last['ratio'].idxmax(), 'seq_len'])}).")
    if not len(slow):
        present = last["subnormal_dx_fraction"].max()
        advice.append("On this CPU flushing subnormals does not pay: with the loss on the last step the "
                      f"step with subnormals kept is {last['ratio'].min():.2f}x to {last['ratio'].max():.2f}x "
                      "the flushed one" + (f", although up to {present:.1%} of the input gradient is "
                                           "subnormal (so the hardware handles them at speed)" if pd.notna(present) and present > 0 else "")
                      + ". Other CPUs may differ: measure yours (`make bench EXP=cpu_cost`).")
    if len(every):
        advice.append(f"With the loss on every step gradients stay normal and flushing changes the step by "
                      f"{every['ratio'].min():.2f}x to {every['ratio'].max():.2f}x (median {every['ratio'].median():.2f}x).")
    pool = pool.assign(scope=[f"{r.path}, T={int(r.seq_len)}, loss on the {r.measure_loss} step" for r in pool.itertuples()],
                       headline=pool.index == worst.name)
    claims["subnormal"] = pool[["scope", "ratio", "ratio_lo", "ratio_hi", "interval_covers", "headline"]]
    return md


def subnormal_figure(t: pd.DataFrame, worst, report) -> str:
    """Step time against seq_len, subnormals kept (solid) and flushed (dashed), per loss placement."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, loss in zip(axes, ["last", "every"]):
        for path, d in t[t["measure_loss"] == loss].groupby("path"):
            cell = path.split()[0]
            style = dict(color=CELL_PALETTE.get(cell), marker=CELL_MARKERS.get(cell, "o"), ms=4)
            ax.plot(d["seq_len"], d["kept_ms"], ls="-", label=f"{path}, kept", **style)
            ax.plot(d["seq_len"], d["flushed_ms"], ls="--", label=f"{path}, flushed", **style)
        ax.set(xscale="log", yscale="log", xlabel="sequence length", title=f"loss on the {loss} step"
               + ("" if loss == "last" else "s"))
    axes[0].set_ylabel("training step, ms (median)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small")
    fig.suptitle(f"With the loss on the {worst.measure_loss} step, keeping subnormals costs at most {worst.ratio:.2f}x a step "
                 f"(solid: kept, dashed: flushed)")
    return report.figure("subnormal_cost", fig, "training step against seq_len with subnormals kept "
                            "(solid) and flushed (dashed); left the loss on the last step only (gradients "
                            "decay through the subnormal range), right on every step")


def growth_rows(q: pd.DataFrame, caches: dict) -> pd.DataFrame:
    """Per path, the cost per token between successive seq_len: its growth with the interval of
    the step-time ratio (timed side by side where the store has rounds), and the smallest cache
    the working set fits in on each side."""
    rows = []
    rounds = q
    q = by_config(q)
    for (path, *_), d in q.sort_values("seq_len").groupby(["path", "threads"] + SHAPE, dropna=False):
        if not d["seq_len"].is_unique:  # points this section's keys cannot tell apart: no growth
            continue
        d = d.reset_index(drop=True)
        same = np.logical_and.reduce([as_text(rounds[c]) == as_text(d[c]).iloc[0] for c in ["threads"] + SHAPE])
        level = lambda b: next((n for n, size in caches.items() if b <= size), "memory")
        for i in range(1, len(d)):
            a, b = d.iloc[i - 1], d.iloc[i]
            # step-time ratio timed side by side where the store has rounds, per token
            r = paired(rounds[(rounds["path"] == path) & same], "seq_len", b.seq_len, a.seq_len, ["path", "threads"] + SHAPE)
            lo, hi = (r["ratio_lo"].iloc[0] * a.tokens / b.tokens, r["ratio_hi"].iloc[0] * a.tokens / b.tokens) \
                if len(r) else (np.nan, np.nan)
            rows.append({"path": path, "from_seq_len": int(a.seq_len), "to_seq_len": int(b.seq_len),
                         "us_per_token_from": a.us_per_token, "us_per_token_to": b.us_per_token,
                         "growth": b.us_per_token / a.us_per_token, "growth_lo": lo, "growth_hi": hi,
                         "working_set_from_mib": a.working_set_mib, "working_set_to_mib": b.working_set_mib,
                         "fits_from": level(a.peak_mem_bytes), "fits_to": level(b.peak_mem_bytes)})
    return pd.DataFrame(rows)


def per_token(p: pd.DataFrame, report, advice: list) -> List[str]:
    """Cost per token against seq_len (subnormals flushed, loss on the last step), beside the
    working set of one step (measured peak memory) and the cache sizes."""
    q = p[(p["measure_flush_denormal"] == True) & (p["measure_loss"] == "last")]  # noqa: E712
    q = q[q.groupby(["path", "threads"] + SHAPE)["seq_len"].transform("nunique") >= 3]
    if q.empty:
        return []
    q = q.assign(us_per_token=q["median_step_ms"] * 1e3 / q["tokens"], working_set_mib=q["peak_mem_bytes"] / 2 ** 20)
    caches = {name: float(q[col].dropna().iloc[0]) for name, col in CACHES if col in q and q[col].notna().any()}
    g = growth_rows(q, caches)
    if g.empty:  # no path with three lengths its keys tell apart (e.g. a cell's model.path variants)
        return []
    q = by_config(q)
    g["crosses_cache"] = g["fits_from"] != g["fits_to"]
    shown = pd.DataFrame({"cell, backend": g["path"], "seq_len": g["from_seq_len"].astype(str) + " -> " + g["to_seq_len"].astype(str),
                          "us per token": g["us_per_token_from"].map("{:.2f}".format) + " -> " + g["us_per_token_to"].map("{:.2f}".format),
                          "growth [95% CI]": [f"{r.growth:.2f}x [{r.growth_lo:.2f}, {r.growth_hi:.2f}]" for r in g.itertuples()],
                          "working set, MiB": g["working_set_from_mib"].map("{:.1f}".format) + " -> "
                          + g["working_set_to_mib"].map("{:.1f}".format),
                          "fits in": g["fits_from"] + " -> " + g["fits_to"]})
    cache_text = ", ".join(f"{n} {s / 2 ** 20:g} MiB" for n, s in caches.items()) or "unknown"
    md = [report.table("cost_per_token", g, f"cost per token between successive seq_len (subnormals flushed, "
                       f"loss on the last step), beside the working set of one step (measured peak memory: "
                       f"saved activations, oneDNN's workspace) and the smallest cache it fits in (this CPU: "
                       f"{cache_text}, read from /sys)", shown=shown)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path, d in q.sort_values("seq_len").groupby("path"):
        cell = path.split()[0]
        style = dict(color=CELL_PALETTE.get(cell), marker=CELL_MARKERS.get(cell, "o"),
                     ls="-" if "onednn" in path else ":", label=path)
        axes[0].plot(d["seq_len"], d["us_per_token"], **style)
        axes[1].plot(d["seq_len"], d["working_set_mib"], **style)
    for name, size in caches.items():
        axes[1].axhline(size / 2 ** 20, color="grey", lw=1, ls="--")
        axes[1].annotate(f"{name} {size / 2 ** 20:g} MiB", (q["seq_len"].min(), size / 2 ** 20), fontsize="small",
                         va="bottom", color="grey")
    axes[0].set(xscale="log", xlabel="sequence length", ylabel="us per token (median)")
    axes[1].set(xscale="log", yscale="log", xlabel="sequence length", ylabel="working set of a step, MiB (measured)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small")
    fig.suptitle("Cost per token against sequence length, beside the working set and the caches")
    md.append(report.figure("cost_per_token", fig, "left: microseconds per token (subnormals flushed); right: "
                            "the measured peak memory of one step against the cache sizes (dashed)"))
    grew = g[g["growth_lo"] > 1.05]
    if len(g):
        both = grew["crosses_cache"].sum()
        advice.append(f"Per-token cost grows with seq_len in {len(grew)} of {len(g)} steps of the sweep "
                      f"(interval above +5%); {both} of those {len(grew)} coincide with the working set "
                      f"leaving a cache level ({cache_text}), so "
                      + ("the growth follows the working set." if len(grew) and both == len(grew)
                         else "the caches do not explain all of it." if len(grew) else "there is none to explain."))
    return md


def threads(p: pd.DataFrame, report, advice: list) -> List[str]:
    t = paired(p, "threads", 1, 2, ["path", "seq_len", "measure_flush_denormal", "measure_loss"] + SHAPE)
    if t.empty:
        return []
    shown = pd.DataFrame({"cell, backend": t["path"], "hidden": t["hidden_size"], "seq_len": t["seq_len"],
                          "step ms, 1 thread": t["num_ms"].map("{:.1f}".format),
                          "step ms, 2 threads": t["den_ms"].map("{:.1f}".format),
                          "speed-up [95% CI]": [ci(r) for r in t.itertuples()]})
    md = [report.table("thread_scaling", t, "speed-up from 1 to 2 intra-op threads (step time with 1 over "
                       "step time with 2), 95% bootstrap interval", shown=shown)]
    best = t.loc[t["ratio"].idxmax()]
    advice.append(f"Two threads pay most for {best.path} ({ci(best)} at hidden {int(best.hidden_size)}); "
                  f"over the sweep the speed-up is {t['ratio'].min():.2f}x to {t['ratio'].max():.2f}x of an ideal 2x.")
    return md


def backends(p: pd.DataFrame, report, advice: list) -> List[str]:
    q = p[p["cell"] == "lstm"]
    t = paired(q, "backend", "onednn", "native", ["hidden_size", "batch_size", "seq_len", "threads",
                                                  "measure_flush_denormal", "measure_loss", "input_size",
                                                  "num_layers", "bidirectional", "dtype"])
    if t.empty:
        return []
    rest = ["seq_len", "threads", "measure_flush_denormal", "measure_loss", "input_size", "num_layers",
            "bidirectional", "dtype"]
    sizes = t.groupby(rest, dropna=False)[["hidden_size", "batch_size"]].apply(lambda d: len(d.drop_duplicates()))
    best = dict(zip(rest, sizes.idxmax()))  # the size grid: the configuration with the most sizes
    t = t[np.logical_and.reduce([as_text(t[c]) == as_text(pd.Series([v])).iloc[0] for c, v in best.items()])]
    if t["hidden_size"].nunique() < 2 or t["batch_size"].nunique() < 2:
        return []
    t["winner"] = np.where(t["ratio_hi"] < 1, "onednn", np.where(t["ratio_lo"] > 1, "native", "tie"))
    grid = t.pivot_table(index="hidden_size", columns="batch_size", values="ratio", aggfunc="first")
    cells = {(r.hidden_size, r.batch_size): f"{r.ratio:.2f} ({r.winner})" for r in t.itertuples()}
    shown = pd.DataFrame({"hidden": grid.index, **{f"batch {b}": [cells.get((h, b), "-") for h in grid.index]
                                                   for b in grid.columns}})
    md = [report.table("backend_by_size", t, "nn.LSTM step time on oneDNN over the native loop by hidden and "
                       "batch size (below 1: oneDNN is faster; the winner where the 95% interval excludes 1)",
                       shown=shown)]
    won = t[t["winner"] == "onednn"]
    lost = t[t["winner"] == "native"]
    advice.append(f"nn.LSTM: oneDNN wins in {len(won)} of {len(t)} sizes (best {won['ratio'].min():.2f}x at hidden "
                  f"{int(won.loc[won['ratio'].idxmin(), 'hidden_size'])}, batch {int(won.loc[won['ratio'].idxmin(), 'batch_size'])})"
                  + (f", the native loop in {len(lost)} (at hidden {', '.join(str(int(h)) for h in sorted(lost['hidden_size'].unique()))})"
                     if len(lost) else ", the native loop in none") + "." if len(won) else
                  f"nn.LSTM: oneDNN wins in none of {len(t)} sizes.")
    return md


def build(df: pd.DataFrame, report) -> Optional["SectionResult"]:

    tp = of(df, "throughput")
    if tp.empty or tp.get("device", pd.Series(dtype=str)).ne("cpu").all():
        return None
    tp = tp[tp["device"] == "cpu"]
    p = points(tp)
    for col in ("measure_flush_denormal", "measure_loss"):
        if col not in p:
            p[col] = True if col == "measure_flush_denormal" else "last"
    extra = tp.groupby("config_hash")[[c for c in [c for _, c in CACHES] + ["subnormal_dx_fraction"] if c in tp]].first()
    p = p.join(extra, on="config_hash")
    p["path"] = p["cell"].astype(str) + " " + p["backend"].astype(str)
    advice: list = []
    claims: dict = {}
    md = ["The costs a FLOP count does not predict, measured on this CPU: subnormal floats, the growth "
          "of the cost per token with sequence length, threads, and which backend to pick at which "
          "size. Ratios are medians over repetitions with 95% bootstrap intervals; timings from one run "
          "on one machine, never compared across runs.\n"]
    parts = subnormals(p, report, advice, claims) + per_token(p, report, advice) + threads(p, report, advice) \
        + backends(p, report, advice)
    if not parts:
        return None
    md.append("**Advice, from the numbers below:**\n\n" + "\n".join(f"- {a}" for a in advice) + "\n")
    md += parts
    return SectionResult(TITLE, ANCHOR, "\n".join(md), evidence=claims)
