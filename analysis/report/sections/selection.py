"""Selective copying that tests selection (analysis/reduce/selection.py): the per-cell table at
each chosen learning rate, the reported seeds' learning curves, and the claim `selects`."""
from __future__ import annotations

from typing import Optional

import pandas as pd

from analysis.load import of
from analysis.reduce import selection
from analysis.report.page import SectionResult
from analysis.report.sections.modern import selective_figure

TITLE, ANCHOR = "Selective copying that tests selection", "selection"
FIGURE = "selection_learning_curves"


def build(df: pd.DataFrame, report) -> Optional[SectionResult]:
    r = selection.one_layer_runs(df)
    rep = selection.reported(r)
    s = selection.summary(rep, selection.more(r))
    chosen = selection.choice(r)
    missing = selection.unreported(chosen, s)
    checks = selection.budget_checks(s) if not s.empty else {}
    if s.empty and missing.empty:
        return None
    budget = int((s if not s.empty else r)["budget"].max())
    md = ["Selective copying (Gu & Dao 2023) with one layer and a linear readout: 4 tokens of 8 at random, "
          "ordered positions among the first 31 steps, a delimiter, then 4 recall steps in order; solved at 99% "
          f"recall accuracy on the held-out batch within {budget} steps; chance 1/8 for a guess among the tokens (a "
          "model that outputs the blank or the delimiter at the recall steps scores 0). The learning rate is "
          "chosen per cell on tuning seeds 0-1; the table counts the reported seeds only. The LRU is the "
          "control: with one layer its output is a sum over positions of a function of (distance, "
          "token), which cannot name the middle one of three tokens (a proof, true by construction: "
          "docs/architecture.md); how far it gets is measured. A diagonal cell whose transition depends "
          "on the input only (minGRU, minLSTM) cannot order its recall in one layer either: its output at "
          "recall step j, less that at step j - 1 for the same tokens one step earlier, does not depend on "
          "their order (a proof, the same place). A cell shows it recalls in order only where it solves the task "
          "where the control does not, within the budget; a state-dependent cell's reported seeds unsolved "
          "within it are continued (selection_continued), and what they reach is shown beside: within the "
          "budget such a seed is \"not learnt in N steps\", never \"cannot\".\n",
          report.table("selection_summary", selection.table(s), "per cell at its chosen learning rate: "
                       "reported seeds solved [95% Wilson], recall accuracy when the run stopped (solved, or at the budget), median steps "
                       "to solve (Kaplan-Meier, censored at the budget)") if not s.empty else "",
          "" if missing.empty else "Chosen on the tuning seeds, reported runs not stored (judged \"cannot tell\"): "
          + ", ".join(f"{m.cell} at T={m.seq_len} (lr {float(m.measure_lr):g})" for m in missing.itertuples()) + "\n",
          "Budget check (at least twice the slowest solving cell's median steps to solve, as in the long-lag "
          "studies):\n\n" + "\n".join(f"- T={T}: {c['why']}" for T, c in checks.items()) + "\n",
          report.table("selection_tuning", selection.tuning(r, chosen), "the tuning seeds (what the choice read; never "
                       "reported as a result): per cell and learning rate, seeds solved within the budget and their "
                       "median final recall accuracy; a cell's grid ends where it is written")]
    lr = of(df, "long_range")
    md.append(selective_figure(lr[lr["config_hash"].isin(set(rep["config_hash"]))], report, FIGURE))
    return SectionResult(TITLE, ANCHOR, "\n".join(md), evidence=selection.evidence(s, missing, checks))
