"""LSTM against the modern recurrent cells: the tasks that separate the families.

Running parity (state tracking: trained at length L, tested at 2L..10L) and selective copying
(content-based selection), from the `long_range` measure's rows of those tasks and its
`length_generalisation` rows. Where LSTM loses, training time at long sequences, is the throughput
section's crossover study; the scorecard links both.
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd

from analysis.load import of
from analysis.reduce.fits import fraction, wilson
from analysis.reduce.runs import runs
from analysis.report.page import SectionResult
from analysis.report.palette import CELL_MARKERS, CELL_PALETTE
from bench.cells.registry import REGISTRY, cell_rank
from bench.tasks.registry import TASKS as TASK_REGISTRY

TITLE, ANCHOR = "LSTM against modern recurrent cells", "modern"
GENERALISES = 0.99   # final-step accuracy at which a seed counts as right at a test length
# running parity (length factors) and selective copying; the final-step state tasks are state.py's
TASKS = tuple(name for name, t in TASK_REGISTRY.items()
              if t.kind == "selection" or (t.kind == "state" and t.generalise == "factors"))


def per_seed_generalisation(df: pd.DataFrame, r: pd.DataFrame) -> pd.DataFrame:
    """One row per parity run and test length: the run's configuration and its accuracies."""
    gen = of(df, "length_generalisation")
    if gen.empty:
        return gen
    cols = ["config_hash", "test_len", "test_factor", "test_acc", "test_acc_beyond", "test_sequences"]
    return gen[cols].merge(r, on="config_hash")


def parity_tables(g: pd.DataFrame, report) -> tuple:
    """(detail table, per-cell figures at the longest test length)."""
    rows = []
    for (cell, T, factor), d in g.groupby(["cell", "test_len", "test_factor"], sort=False):
        right = int((d["test_acc"] >= GENERALISES).sum())
        lo, hi = wilson(right, len(d))
        # pooled over sequences (within seeds, so it shows the test batch's sampling error only)
        k = int(round((d["test_acc"] * d["test_sequences"]).sum()))
        n = int(d["test_sequences"].sum())
        plo, phi = wilson(k, n)
        rows.append({"cell": cell, "test_len": int(T), "test_factor": int(factor), "seeds": len(d),
                     "median_acc": d["test_acc"].median(), "min_acc": d["test_acc"].min(),
                     "max_acc": d["test_acc"].max(), "pooled_acc_lo": plo, "pooled_acc_hi": phi,
                     "median_acc_beyond_L": d["test_acc_beyond"].median(),
                     "seeds_generalising": right, "generalising_lo": lo, "generalising_hi": hi})
    detail = pd.DataFrame(rows)
    shown = pd.DataFrame({
        "cell": detail["cell"], "test length": detail["test_len"],
        "final-step accuracy, median [min, max] over seeds": [
            f"{r.median_acc:.3f} [{r.min_acc:.3f}, {r.max_acc:.3f}]" for r in detail.itertuples()],
        f"seeds right on >= {GENERALISES:.0%} [95% Wilson]": [
            fraction(int(r.seeds_generalising), int(r.seeds)) for r in detail.itertuples()],
        "accuracy beyond L, per step (median)": detail["median_acc_beyond_L"].map("{:.3f}".format)})
    return detail, report.table("parity_length_generalisation", detail,
                                "running parity: final-step accuracy per test length over seeds; "
                                f"seeds right on >= {GENERALISES:.0%} of the test sequences with their "
                                "95% Wilson interval (the csv adds the interval pooled over all test "
                                "sequences, which shows the sampling error within seeds only)",
                                shown=shown)


def figure(g: pd.DataFrame, train_len: int, report) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for cell, d in g.groupby("cell", sort=False):
        s = d.groupby("test_len")["test_acc"].agg(["median", "min", "max"]).sort_index()
        ax.plot(s.index, s["median"], marker=CELL_MARKERS.get(cell, "o"), color=CELL_PALETTE.get(cell),
                label=cell)
        ax.fill_between(s.index, s["min"], s["max"], color=CELL_PALETTE.get(cell), alpha=0.15, lw=0)
    ax.axhline(0.5, color="k", ls="--", lw=1, label="chance")
    ax.axvline(train_len, color="grey", ls=":", lw=1)
    ax.set(xscale="log", xlabel="test sequence length (dotted: the training length)",
           ylabel="final-step accuracy", ylim=(0.3, 1.03),
           title="Running parity: nonlinear recurrences keep counting, diagonal ones guess")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return report.figure("parity_length_generalisation", fig,
                         "running parity, final-step accuracy against test length per cell; line: "
                         "median over seeds, band: range over seeds; dashed: chance (0.5)")


def selective_figure(lr: pd.DataFrame, report, name: str = "selective_copy_learning_curves") -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for (cell, seed), d in lr.sort_values("step").groupby(["cell", "seed"], sort=False):
        ax.plot(d["step"], d["test_acc"], color=CELL_PALETTE.get(cell), alpha=0.8, lw=1.2,
                label=cell if seed == lr.loc[lr["cell"] == cell, "seed"].min() else None)
    ax.axhline(1 / 8, color="k", ls="--", lw=1, label="chance (1/8)")
    ax.set(xlabel="training step", ylabel="recall accuracy (held-out batch)", ylim=(0, 1.02),
           title="Selective copying: recall accuracy during training")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return report.figure(name, fig,
                         "selective copying, recall accuracy on the held-out batch during training, "
                         "one line per seed; dashed: chance")


def diverged(runs_of_cell: pd.DataFrame) -> str:
    """`, k diverged (at step ...)` for runs whose loss went non-finite or stayed blown up to their end."""
    d = runs_of_cell[runs_of_cell["diverged"].astype(bool)]
    if d.empty:
        return ""
    return f", {len(d)} diverged (at step {', '.join(f'{s:.0f}' for s in d['diverged_step'].dropna())})"


def summary(r: pd.DataFrame, detail: pd.DataFrame) -> pd.DataFrame:
    """At most 8 columns, one row per cell: the figures the claims quote."""
    rows = []
    longest = detail["test_factor"].max() if not detail.empty else None
    for cell in [c for c in REGISTRY if c in set(r["cell"])]:
        row = {"cell": cell, "family": REGISTRY[cell].family}
        par, sel = r[(r["cell"] == cell) & (r["task"] == "parity")], r[(r["cell"] == cell) & (r["task"] == "selective_copy")]
        if not par.empty:
            row["parity: seeds solved at L"] = fraction(int(par["solved"].sum()), len(par)) + diverged(par)
            d = detail[(detail["cell"] == cell) & (detail["test_factor"] == longest)] if longest else detail
            if not d.empty:  # none where every run diverged: a diverged model is not tested further
                d = d.iloc[0]
                row[f"parity at {longest}L: accuracy, median [min, max]"] = (
                    f"{d.median_acc:.3f} [{d.min_acc:.3f}, {d.max_acc:.3f}]")
        if not sel.empty:
            row["selective copy: seeds solved"] = fraction(int(sel["solved"].sum()), len(sel)) + diverged(sel)
            row["selective copy: final recall accuracy, median"] = f"{sel['final_test_acc'].median():.3f}"
            row["ms per training step (selective copy), median"] = f"{(1e3 * sel['train_seconds'] / sel['steps']).median():.1f}"
        rows.append(row)
    return pd.DataFrame(rows).fillna("-")


def task_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The `long_range` rows of this section's tasks; one-layer selective copying is the selection
    study's (sections/selection.py)."""
    lr = of(df, "long_range")
    lr = lr[lr["task"].isin(TASKS)] if "task" in lr else lr.iloc[0:0]
    if "num_layers" in lr and "task" in lr:
        lr = lr[~((lr["task"] == "selective_copy") & (lr["num_layers"].astype(float) == 1))]
    return lr


def build(df: pd.DataFrame, report) -> Optional["SectionResult"]:

    lr = task_rows(df)
    if lr.empty:
        return None
    r = runs(lr)
    last = lr.sort_values("step").groupby("config_hash")["test_acc"].last()
    r["final_test_acc"] = r["config_hash"].map(last)
    md, claims = [], {}
    md.append("Two tasks that separate the recurrent families, each trained with the long-lag "
              "recipe (Adam, clipping, a held-out test batch from its own seed), every cell at the "
              "same hidden size (parameter counts differ: the table's csv has them). "
              "**Running parity**: one-hot bits, the parity so far at every step; trained at length L "
              "(every prefix supervised), solved at 99% per-step accuracy on the held-out batch; then "
              "tested at 2L, 5L and 10L on fresh sequences, judged at the final step; chance is 0.5, "
              "the memoryless loss ln 2. Theory (Grazzi et al. 2024; Merrill et al. 2024): a diagonal "
              "recurrence with positive eigenvalues (minGRU, minLSTM; the LRU's lambda does not "
              "depend on the input) cannot track parity at any length with finite precision; RNN, "
              "LSTM, GRU and sLSTM can. **Selective copying** (Gu & Dao 2023): 4 tokens of 8 at "
              "random, ordered positions among blanks, recalled in order after the delimiter; "
              "solved at 99% recall accuracy; chance 1/8. Fractions carry 95% Wilson intervals over "
              "seeds. The cost side, training time against sequence length, is the throughput "
              "section's crossover study.\n")
    detail = pd.DataFrame()
    g = per_seed_generalisation(df, r)
    if not g.empty:
        g = g.sort_values(["cell", "test_len"], key=lambda s: s.map(cell_rank) if s.name == "cell" else s)
        detail, table = parity_tables(g, report)
    table_md = report.table("modern_summary", summary(r, detail), "per cell: parity solved at the training "
                            "length and accuracy at the longest test length; selective copying solved "
                            "and its final recall; [95% Wilson interval]")
    md.append(table_md)
    if not g.empty:
        md.append(table)
        md.append(figure(g, int(g["seq_len"].iloc[0]), report))
        longest = int(detail["test_factor"].max())
        at = detail[detail["test_factor"] == longest]
        claims["state"] = (f"running parity at {longest}x the training length, final-step accuracy median "
                           "over seeds; seeds right on >= 99% [95% Wilson]: " + "; ".join(
                               f"{row.cell} {row.median_acc:.2f}, {fraction(int(row.seeds_generalising), int(row.seeds))}"
                               for row in at.itertuples()))
    sel = r[r["task"] == "selective_copy"]
    if not sel.empty:
        sel = sel.sort_values(["cell", "seed"], key=lambda s: s.map(cell_rank) if s.name == "cell" else s)
        keep = ["cell", "num_layers", "hidden_size", "seq_len", "seed", "solved", "steps_to_solve",
                "seconds_to_solve", "final_test_acc", "train_seconds", "steps"]
        keep += ["diverged", "diverged_step"] if sel["diverged"].any() else []
        md.append(report.table("selective_copy_runs", sel[[c for c in keep if c in sel]],
                               "selective copying, one row per run"))
        md.append(selective_figure(lr[lr["task"] == "selective_copy"], report))
        parts = []
        for cell in [c for c in REGISTRY if c in set(sel["cell"])]:
            s = sel[sel["cell"] == cell]
            parts.append(f"{cell} {fraction(int(s['solved'].sum()), len(s))}, recall {s['final_test_acc'].median():.2f}")
        steps = int(sel["steps"].max())
        claims["selective"] = (f"selective copying (T={int(sel['seq_len'].iloc[0])}, {steps}-step budget), "
                               "seeds solved [95% Wilson], median final recall: " + "; ".join(parts))
    return SectionResult(TITLE, ANCHOR, "\n".join(md), claims)
