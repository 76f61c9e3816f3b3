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
from analysis.reduce.long_lag import budget_checks as budget_checks_of
from analysis.reduce.long_lag import continued, continued_text
from analysis.reduce.runs import runs
from analysis.reduce.survival import curves, median_steps
from analysis.select import REPORTED_FROM, RULES, choice_text, choose, chosen_runs, continued_runs
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


def per(frame: pd.DataFrame) -> list:
    """The keys that make a group of the rule recipe (cell, length, hidden size, ...): never pooled."""
    return [c for c in RULES["recipe"].per if c in frame]


def summary(rep: pd.DataFrame, longer: pd.DataFrame) -> pd.DataFrame:
    """Per group of the rule (cell, length, ...), from its `reported` runs: seeds solved [Wilson],
    final recall accuracy median [min, max], median steps to solve, the budget, and how its
    unsolved seeds did when continued (`longer`, analysis/reduce/long_lag.py::continued); in
    registry order."""
    if rep.empty:
        return pd.DataFrame()
    rows = []
    for _, d in rep.groupby(per(rep), sort=False, dropna=False):
        cell, T = d["cell"].iloc[0], d["seq_len"].iloc[0]
        k, n = int(d["solved"].sum()), int(d["seed"].nunique())
        first = d.iloc[0]
        med, med_lo, med_hi = median_steps(curves(d, ["cell"])[(cell,)])
        rows.append({"cell": cell, "seq_len": int(T), "lr": first["measure_lr"],
                     "median_steps": med, "median_lo": med_lo, "median_hi": med_hi,
                     "on_edge": bool(first.get("on_edge", False)),
                     "by_solve": bool(first.get("by_solve", True)), "seeds": n, "solved": k,
                     "solved_lo": wilson(k, n)[0], "solved_hi": wilson(k, n)[1],
                     "recall_median": d["final_test_acc"].median(), "recall_min": d["final_test_acc"].min(),
                     "recall_max": d["final_test_acc"].max(),
                     "budget": int(d["budget"].max()), **continued(longer, ("selective_copy", cell, T), d)})
    return pd.DataFrame(rows).sort_values("cell", key=lambda c: c.map(cell_rank), kind="stable").reset_index(drop=True)


def choice(r: pd.DataFrame) -> pd.DataFrame:
    """Each group's learning rate chosen on the tuning seeds (analysis/select.py::choose, rule recipe)."""
    return choose(r, RULES["recipe"]) if not r.empty else pd.DataFrame()


def tuning(r: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The tuning seeds (never reported), per cell, length and learning rate: seeds solved and
    their median final recall accuracy (what the choice read, beside the chosen row); wide, one
    column per learning rate; the chosen one marked, runs that diverged counted."""
    t = r[r["seed"].astype(int) < REPORTED_FROM] if not r.empty else r
    if t.empty:
        return pd.DataFrame()
    g = t.groupby(["cell", "seq_len", "measure_lr"], sort=False).agg(
        solved=("solved", "sum"), seeds=("seed", "nunique"), recall=("final_test_acc", "median"),
        diverged=("diverged", "sum")).reset_index()
    picked = {(c.cell, c.seq_len, float(c.measure_lr)) for c in chosen.itertuples()}
    g["entry"] = [f"{int(x.solved)}/{int(x.seeds)}, {x.recall:.2f}" + (f", {int(x.diverged)} diverged" if x.diverged else "")
                  + (" (chosen)" if (x.cell, x.seq_len, float(x.measure_lr)) in picked else "") for x in g.itertuples()]
    wide = g.pivot_table(index=["cell", "seq_len"], columns="measure_lr", values="entry", aggfunc="first")
    wide.columns = [f"lr {float(c):g}" for c in wide.columns]
    wide = wide.reset_index().rename(columns={"seq_len": "sequence length"}).fillna("-")
    return wide.sort_values("cell", key=lambda c: c.map(cell_rank), kind="stable").reset_index(drop=True)


def budget_checks(s: pd.DataFrame) -> dict:
    """Per length: the long-lag studies' budget check (analysis/reduce/long_lag.py::budget_checks:
    at least twice the slowest solving cell's median steps to solve, a cell that reaches its
    median only when continued counting with that median)."""
    t = budget_checks_of(s.assign(protocol="selection", task="selective_copy"))
    return {int(c.seq_len): c._asdict() for c in t.itertuples(index=False)}


def steps_text(r) -> str:
    """Median steps to solve (Kaplan-Meier over the reported seeds, censored at the budget) [95%]."""
    if pd.isna(r.median_steps):
        return f"> {r.budget} (under half solved)"
    hi = "inf" if r.median_hi == float("inf") else f"{r.median_hi:.0f}"
    lo = "-" if pd.isna(r.median_lo) else f"{r.median_lo:.0f}"
    return f"{r.median_steps:.0f} [{lo}, {hi}]"


def table(s: pd.DataFrame) -> pd.DataFrame:
    """The summary as the report and docs/results.md print it."""
    return pd.DataFrame({
        "cell": [c + (" (control)" if c == CONTROL else " (cannot, by construction)" if cannot(c) else "")
                 for c in s["cell"]],
        "sequence length": s["seq_len"],
        "lr (tuning seeds)": [choice_text(r.lr, r.on_edge, r.by_solve) for r in s.itertuples()],
        "solved, reported seeds [95% Wilson]": [fraction(r.solved, r.seeds) for r in s.itertuples()],
        "recall accuracy at stop, median [min, max]": [f"{r.recall_median:.3f} [{r.recall_min:.3f}, {r.recall_max:.3f}]"
                                                     for r in s.itertuples()],
        "median steps to solve [95%]": [steps_text(r) for r in s.itertuples()],
        "budget (steps)": s["budget"],
        "unsolved seeds continued": [continued_text(r) for r in s.itertuples()]})


def cannot(cell: str) -> bool:
    """A diagonal cell: with one layer it cannot order its recall (tests/test_selection.py)."""
    return cell in REGISTRY and REGISTRY[cell].family == CANNOT


def unreported(c: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """The groups chosen on the tuning seeds (`c`, from choice) whose reported runs are not in the
    store (cell, seq_len, the chosen lr): shown and judged "cannot tell", never dropped."""
    if c.empty:
        return pd.DataFrame(columns=["cell", "seq_len", "measure_lr"])
    have = set(zip(s["cell"], s["seq_len"].astype(int))) if not s.empty else set()
    c = c[[(x.cell, int(x.seq_len)) not in have for x in c.itertuples()]]
    return c[["cell", "seq_len", "measure_lr"]].assign(seq_len=c["seq_len"].astype(int)).reset_index(drop=True)


def evidence(s: pd.DataFrame, missing: pd.DataFrame, checks: dict) -> dict:
    """`selects`: per cell whose transition depends on its state, whether it solves where the
    control does not (succeeds_where_other_does_not on the two Wilson intervals: against where its
    interval lies wholly below 1/2 or the control's wholly above 1/2), within the budget at which
    the recipe was chosen; what the unsolved seeds did when continued is quoted beside. A cell or
    control chosen but without reported runs (`missing`, from unreported) cannot tell. `checks`:
    budget_checks(s)."""
    rows = []
    lengths = sorted(set(s["seq_len"].astype(int) if not s.empty else []) | set(missing["seq_len"].astype(int)))
    for T in lengths:
        at = s[s["seq_len"] == T] if not s.empty else s
        gone = set(missing.loc[missing["seq_len"] == T, "cell"])
        where = f", T={T}" if len(lengths) > 1 else ""
        c = at.set_index("cell").loc[CONTROL] if not at.empty and CONTROL in set(at["cell"]) else None
        for cell in sorted(gone - {CONTROL}, key=cell_rank):
            if not cannot(cell):
                rows.append({"scope": f"{cell} vs {CONTROL}{where}", "holds": None, "why": "its reported runs are not stored",
                             "figure": f"{cell}: learning rate chosen on the tuning seeds; its reported runs are not stored"})
        if at.empty:
            continue
        short = "" if checks[T]["long_enough"] else f" (budget shorter than the rule asks: {checks[T]['why']})"
        for r in at[~at["cell"].map(cannot)].itertuples():
            if c is None:
                rows.append({"scope": f"{r.cell} vs {CONTROL}{where}", "holds": None,
                             "why": "the control's reported runs are not stored",
                             "figure": f"the control's reported runs are not stored ({r.cell} {fraction(r.solved, r.seeds)})"})
                continue
            later = continued_text(r, brief=True)
            rows.append({"scope": f"{r.cell} vs {CONTROL}{where}",
                         "holds": succeeds_where_other_does_not(r.solved_lo, r.solved_hi, c["solved_lo"], c["solved_hi"]),
                         "figure": f"solved within {r.budget} steps: {r.cell} {fraction(r.solved, r.seeds)} against "
                                   f"{CONTROL} {fraction(int(c['solved']), int(c['seeds']))}; median recall "
                                   f"{r.recall_median:.2f} against {c['recall_median']:.2f}" + short
                                   + ("" if later == "-" else f"; continued: {later}")})
    if not rows:
        return {}
    return {"selects": pd.DataFrame(rows).assign(headline=headline(s, checks))}


def headline(s: pd.DataFrame, checks: dict) -> str:
    """The verdict's figure: every judged cell's reported fraction against the control's, the budget
    check where it fails, and what the continued seeds reached (no control was continued)."""
    if s.empty:
        return ""
    parts = []
    for T, at in s.groupby("seq_len", sort=True):
        judged = at[~at["cell"].map(cannot) | (at["cell"] == CONTROL)]
        cells = ", ".join(f"{r.cell} {fraction(r.solved, r.seeds)}" for r in judged.itertuples() if r.cell != CONTROL)
        ctrl = judged[judged["cell"] == CONTROL]
        text = f"solved within {int(at['budget'].max())} steps" + (f" (T={T})" if s["seq_len"].nunique() > 1 else "")
        text += f": {cells}" + (f" against {CONTROL} {fraction(int(ctrl['solved'].iloc[0]), int(ctrl['seeds'].iloc[0]))}"
                                 if len(ctrl) else "")
        if not checks[int(T)]["long_enough"]:
            text += f" (budget shorter than the rule asks: {checks[int(T)]['why']})"
        went = [f"{r.cell} {int(r.continued_solved)} of {int(r.continued_seeds)}"
                + ("" if pd.isna(r.continued_median) else f" (median {r.continued_median:.0f} steps)")
                for r in judged.itertuples() if pd.notna(getattr(r, "continued_budget", float("nan")))]
        if went:
            budget = int(judged["continued_budget"].max())
            text += f"; unsolved seeds continued to {budget} steps (the control was not): solved " + ", ".join(went)
        parts.append(text)
    return ". ".join(parts)
