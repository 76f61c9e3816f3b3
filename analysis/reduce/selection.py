"""Selective copying that tests selection (conf/experiment/selection.yaml): one layer and a linear
readout, where the time-invariant LRU is a control that cannot select (docs/architecture.md,
"Selective copying: why one layer"). Per cell: the learning rate chosen on tuning seeds, the
reported seeds' solved fraction (Wilson) and final recall accuracy; the claim `selects`: a
recurrence whose transition depends on its state solves it where the control does not. The other
diagonal cells (transition from the input only) cannot order their recall in one layer either (a
proof, the same section): they are measured and shown, and no claim is made for them."""
from __future__ import annotations

import pandas as pd

from analysis.load import of
from analysis.reduce.fits import fraction, succeeds_where_other_does_not, wilson
from analysis.reduce.long_lag import continued, continued_text
from analysis.reduce.runs import runs
from analysis.select import RULES, choice_text, chosen_runs, continued_runs
from bench.cells.registry import REGISTRY, cell_rank

CONTROL = "lru"   # time-invariant: with one layer its output cannot select (a proof, not a measurement)
CANNOT = "diagonal"  # registry family whose one-layer output cannot order its recall (a proof)


def one_layer_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The selection study's runs: selective copying with one layer (tuning and reported seeds)."""
    lr = of(df, "long_range")
    if lr.empty or "task" not in lr or "num_layers" not in lr:
        return pd.DataFrame()
    lr = lr[(lr["task"] == "selective_copy") & (lr["num_layers"].astype(float) == 1)]
    return runs(lr) if not lr.empty else pd.DataFrame()


def reported(r: pd.DataFrame) -> pd.DataFrame:
    """The reported runs at each cell's chosen learning rate (nested selection, rule recipe)."""
    return chosen_runs(r, RULES["recipe"]) if not r.empty else r


def more(r: pd.DataFrame) -> pd.DataFrame:
    """The reported runs unsolved within the budget and continued past it (selection_continued)."""
    return continued_runs(r, RULES["recipe"]) if not r.empty else r


def summary(rep: pd.DataFrame, longer: pd.DataFrame) -> pd.DataFrame:
    """Per cell and length, from its `reported` runs: seeds solved [Wilson], final recall accuracy
    median [min, max], median steps to solve, the budget, and how its unsolved seeds did when
    continued (`longer`, analysis/reduce/long_lag.py::continued); in registry order."""
    if rep.empty:
        return pd.DataFrame()
    rows = []
    for (cell, T), d in rep.groupby(["cell", "seq_len"], sort=False):
        k, n = int(d["solved"].sum()), int(d["seed"].nunique())
        first = d.iloc[0]
        rows.append({"cell": cell, "seq_len": int(T), "lr": first["measure_lr"],
                     "on_edge": bool(first.get("on_edge", False)),
                     "by_solve": bool(first.get("by_solve", True)), "seeds": n, "solved": k,
                     "solved_lo": wilson(k, n)[0], "solved_hi": wilson(k, n)[1],
                     "recall_median": d["final_test_acc"].median(), "recall_min": d["final_test_acc"].min(),
                     "recall_max": d["final_test_acc"].max(), "steps_to_solve_median": d["steps_to_solve"].median(),
                     "budget": int(d["budget"].max()), **continued(longer, ("selective_copy", cell, T), d)})
    return pd.DataFrame(rows).sort_values("cell", key=lambda c: c.map(cell_rank), kind="stable").reset_index(drop=True)


def table(s: pd.DataFrame) -> pd.DataFrame:
    """The summary as the report and docs/results.md print it."""
    return pd.DataFrame({
        "cell": [c + (" (control)" if c == CONTROL else " (cannot, by construction)" if cannot(c) else "")
                 for c in s["cell"]],
        "sequence length": s["seq_len"],
        "lr (tuning seeds)": [choice_text(r.lr, r.on_edge, r.by_solve) for r in s.itertuples()],
        "solved, reported seeds [95% Wilson]": [fraction(r.solved, r.seeds) for r in s.itertuples()],
        "final recall accuracy, median [min, max]": [f"{r.recall_median:.3f} [{r.recall_min:.3f}, {r.recall_max:.3f}]"
                                                     for r in s.itertuples()],
        "budget (steps)": s["budget"],
        "unsolved seeds continued": [continued_text(r) for r in s.itertuples()]})


def cannot(cell: str) -> bool:
    """A diagonal cell: with one layer it cannot order its recall (tests/test_selection.py)."""
    return cell in REGISTRY and REGISTRY[cell].family == CANNOT


def evidence(s: pd.DataFrame) -> dict:
    """`selects`: per cell whose transition depends on its state, whether it solves where the
    control does not (succeeds_where_other_does_not on the two Wilson intervals: against where its
    interval lies wholly below 1/2 or the control's wholly above 1/2), within the budget at which
    the recipe was chosen; what the unsolved seeds did when continued is quoted beside."""
    if s.empty:
        return {}
    rows = []
    for T, at in s.groupby("seq_len", sort=True):
        if CONTROL not in set(at["cell"]):
            continue
        c = at.set_index("cell").loc[CONTROL]
        for r in at[~at["cell"].map(cannot)].itertuples():
            later = continued_text(r, brief=True)
            rows.append({"scope": f"{r.cell} vs {CONTROL}" + (f", T={T}" if s["seq_len"].nunique() > 1 else ""),
                         "holds": succeeds_where_other_does_not(r.solved_lo, r.solved_hi, c["solved_lo"], c["solved_hi"]),
                         "figure": f"solved within {r.budget} steps: {r.cell} {fraction(r.solved, r.seeds)} against "
                                   f"{CONTROL} {fraction(int(c['solved']), int(c['seeds']))}; median recall "
                                   f"{r.recall_median:.2f} against {c['recall_median']:.2f}"
                                   + ("" if later == "-" else f"; continued: {later}")})
    return {"selects": pd.DataFrame(rows)} if rows else {}
