"""The generated blocks of README.md and docs/results.md (`make docs`, analysis/readme/docs.py): one
render function per block, from the tables of one reference study's report (or, for the verdicts
and the papers, of several). A study whose store is not there yet renders as not measured."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict

import pandas as pd

from analysis.reduce.crossover import length_text
from analysis.reduce.gradients import ladder_rows
from analysis.reduce.long_lag import continued_text
from analysis.report.verdicts import CLAIMS
from analysis.select import choice_text


def reference_command(study: str) -> str:
    """The command that re-measures a reference study (bench/run/reference.py)."""
    return f"make reference STUDY={study}"


def missing(study: str) -> str:
    return f"Not measured yet: `{reference_command(study)}`."


def figure(report: Path, name: str, alt: str, folder: str = "figures") -> str:
    """A link to one of the report's figures (copied into docs/figures/ by `make docs`), or
    nothing where the report did not draw it."""
    return f"\n\n![{alt}]({folder}/{name}.png)" if (report / "figures" / f"{name}.png").exists() else ""


def md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False)


def tables(report: Path, name: str) -> pd.DataFrame:
    path = report / "tables" / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def verdict_rows(reports: Dict[str, Path]) -> pd.DataFrame:
    """Each claim's verdict from the report of the study that measures it."""
    rows = []
    for c in CLAIMS:
        card = tables(reports[c.study], "verdicts") if c.study in reports else pd.DataFrame()
        card = card.set_index("claim") if not card.empty else card
        if c.key in card.index:
            rows.append(card.loc[c.key].to_dict() | {"claim": c.key})
        else:
            rows.append({"claim": c.key, "statement": c.statement, "verdict": "not measured", "figure": "-",
                         "scope": missing(c.study), "rule": c.rule, "study": c.study})
    return pd.DataFrame(rows)


def verdicts(reports: Dict[str, Path]) -> str:
    """The front page's table: claim, verdict, the one number behind it."""
    v = verdict_rows(reports)
    # a mixed verdict's figure is one configuration of several: say how many hold (docs/results.md: which)
    held = v["scope"].astype(str).str.extract(r"^(holds in \d+ of \d+)", expand=False)
    verdict = "**" + v["verdict"] + "**" + held.map(lambda h: f" ({h})" if isinstance(h, str) else "")
    return md(pd.DataFrame({"claim": v["statement"], "verdict": verdict, "measured [95% interval]": v["figure"]}))


def verdict_details(reports: Dict[str, Path]) -> str:
    """Every claim with where it holds, its rule and the study that measures it."""
    v = verdict_rows(reports)
    return md(pd.DataFrame({"claim": v["claim"], "verdict": v["verdict"], "where": v["scope"], "rule": v["rule"],
                            "study": [f"`results/reference/{s}` (`{reference_command(s)}`)" for s in v["study"]]}))


def classic_half_lives(report: Path) -> str:
    h = tables(report, "half_lives")
    h = h[(h["condition"] == "init") & (h["seq_len"] == 200) & (h["num_layers"] == 1)
          & ~h["bidirectional"].astype(bool) & (h["hidden_size"] == 128)
          & (h["forget_bias"].isna() | (h["forget_bias"] == 0))]
    for col, want in (("init", "default"), ("nonlinearity", "tanh"), ("gain", 1.0)):
        if col in h:
            h = h[h[col].isna() | (h[col] == want)]
    h = h.drop_duplicates("cell").sort_values("cell")
    num = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
    return md(pd.DataFrame({
        "cell": h["cell"], "T": h["seq_len"], "seeds": h["seeds"],
        "half-life at init, steps [95% CI]": h["half_life"],
        "measured decay, log10 per step": h["decay_per_step"].map(num),
        "gate theory (slowest unit)": h["gate_decay_per_step"].map(num),
        "Jacobian product (consistency check)": h["jacobian_decay_per_step"].map(num)}))


def classic_ladder(report: Path) -> str:
    h = ladder_rows(tables(report, "half_lives"))
    h = h[h["cell"] == "lstm"].drop_duplicates(["forget_bias", "seq_len"])
    wide = h.pivot(index="forget_bias", columns="seq_len", values="half_life")
    return md(pd.DataFrame({"forget-gate bias": [f"{b:g}" for b in wide.index],
                            **{f"half-life at T={T}, steps [95% CI]": wide[T].values for T in wide.columns}}))


def classic_init(report: Path) -> str:
    b = tables(report, "half_life_by_init")
    b["row"] = b.apply(lambda r: f"{r.cell}, {r.nonlinearity}" if r.cell == "rnn" else r.cell, axis=1)
    order = ["default", "orthogonal", "identity", "xavier", "chrono"]
    wide = b.pivot_table(index="row", columns="init", values="half_life", aggfunc="first")
    wide = wide[[c for c in order if c in wide.columns]].fillna("-")
    T = int(b["seq_len"].max())
    return md(pd.DataFrame({"cell": wide.index, **{("PyTorch default" if c == "default" else
                            f"chrono (T_max = {T})" if c == "chrono" else c): wide[c].values for c in wide.columns}}))


def anchors(report: Path) -> str:
    p = tables(report, "throughput_points")
    a = p[(p["input_size"] == 512) & (p["hidden_size"] == 512) & (p["num_layers"] == 1)
          & ~p["bidirectional"].astype(bool)].sort_values(["seq_len", "batch_size", "cell", "measure_backend"],
                                                          ascending=[False, False, True, True])
    name = a.apply(lambda r: "fastrnns (T=100, B=64)" if r.seq_len == 100 else f"DeepBench (T={r.seq_len}, B={r.batch_size})", axis=1)
    return md(pd.DataFrame({
        "anchor": name.values, "cell": a["cell"].values,
        "backend: asked -> ran": (a["measure_backend"] + " -> " + a["backend"]).values,
        "step, ms (median, IQR)": [f"{m:.3g} ({q:.2g})" for m, q in zip(a["median_step_ms"], a["iqr_step_ms"])],
        "tokens/s": a["tokens_per_s"].map("{:.3g}".format).values,
        "GFLOP/s (of matmul peak)": [f"{f / 1e9:.3g} ({x:.0%})" for f, x in zip(a["achieved_flops_per_s"], a["fraction_of_peak"])],
        "peak memory, MiB": (a["peak_mem_bytes"] / 2 ** 20).map("{:.3g}".format).values}))


def modern_half_lives(report: Path) -> str:
    h = tables(report, "half_lives")
    h = h[(h["condition"] == "init")] if "condition" in h else h
    out = pd.DataFrame({"cell": h["cell"], "T": h["seq_len"], "seeds": h["seeds"],
                        "half-life at init, steps [95% CI]": h["half_life"],
                        "measured decay, log10 per step": h["decay_per_step"].map("{:.3g}".format),
                        "gate theory": h["gate_decay_per_step"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")})
    return md(out)


def fair(report: Path) -> str:
    f = tables(report, "fair_comparison")
    if f.empty:
        return missing("fair")
    steps = [f"> {r.budget}" if pd.isna(r.median_steps) else f"{r.median_steps:.0f}" for r in f.itertuples()]
    return md(pd.DataFrame({
        "protocol": f["protocol"].str.split(":").str[0], "lag": f["seq_len"], "cell": f["cell"],
        "recipe (tuning seeds)": f["recipe"] + f["on_edge"].map({True: " (edge of grid)", False: ""})
        + f["by_solve"].map({True: "", False: " (no tuning seed solved: chosen on validation loss)"}),
        "solved, reported seeds [95% Wilson]": [f"{r.solved}/{r.seeds} [{r.lo:.2f}, {r.hi:.2f}]"
                                                + (f"; {r.diverged} diverged" if r.diverged else "") for r in f.itertuples()],
        "median steps to solve": steps, "budget": f["budget"],
        "unsolved seeds continued past the budget": [continued_text(r) for r in f.itertuples()]})) + figure(
        report, "long_range_survival", "solved fraction against training steps")


def budget(report: Path) -> str:
    text = (report / "report.md").read_text() if (report / "report.md").exists() else ""
    if "Budget check" not in text:
        return missing("fair")
    return text.split("Budget check", 1)[1].split("\n\n", 1)[1].split("\n\n", 1)[0].strip()


def papers(reports: Dict[str, Path]) -> str:
    frames = [tables(reports[s], "papers") for s in ("papers", "fair") if s in reports]
    p = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(not f.empty for f in frames) else pd.DataFrame()
    if p.empty:
        return missing("papers")
    return md(p[["paper", "stated", "configuration", "protocol", "figure", "outcome"]].drop_duplicates())


def throughput(report: Path) -> str:
    r = tables(report, "cost_ratios")
    if r.empty:
        return missing("classic")
    lines = []
    for kind, label in (("lstm/rnn", "LSTM/RNN step time"), ("bidirectional", "bidirectional/unidirectional"),
                        ("gru/rnn", "GRU/RNN step time")):
        k = r[r["ratio_kind"].str.startswith(kind)]
        if k.empty:
            continue
        covers = "over interleaved rounds" if (k["interval_covers"] == "rounds").all() else "one run's repetitions"
        for backend, g in k.groupby("measure_backend"):
            lines.append(f"- {label}, backend {backend}: median {g['ratio'].median():.2f}x over {len(g)} sizes "
                         f"(from {g['ratio'].min():.2f}x to {g['ratio'].max():.2f}x; the widest interval "
                         f"[{g.loc[(g['ratio_hi'] - g['ratio_lo']).idxmax(), 'ratio_lo']:.2f}, "
                         f"{g.loc[(g['ratio_hi'] - g['ratio_lo']).idxmax(), 'ratio_hi']:.2f}], {covers}).")
    return "\n".join(lines)


def crossover(report: Path) -> str:
    """One thread (the fewest measured): each path's ratio to the fastest LSTM at the three longest
    lengths, with memory; then who overtakes whom from which length, at every thread count."""
    r = tables(report, "crossover_ratios")
    if r.empty:
        return missing("crossover")
    if "threads" not in r:
        r = r.assign(threads=1)
    r = r[r["threads"] == r["threads"].min()]
    fused = r["comparison"].str.split(" / ").str[1]
    at = r[fused.str.startswith("lstm ")]
    at = at[at["seq_len"].isin(sorted(at["seq_len"].unique())[-3:])]
    cell = at.apply(lambda x: f"{x.ratio:.2f} [{x.ratio_lo:.2f}, {x.ratio_hi:.2f}]", axis=1)
    wide = at.assign(cell=cell).pivot(index="comparison", columns="seq_len", values="cell")
    mem = at[at["seq_len"] == at["seq_len"].max()].set_index("comparison")["memory_ratio"]
    out = md(pd.DataFrame({f"step-time ratio [95%], {int(r['threads'].min())} thread": wide.index,
                           **{f"T={T}": wide[T].fillna("-").values for T in wide.columns},
                           f"memory ratio at T={int(at['seq_len'].max())}":
                               ["-" if math.isnan(mem.get(c, math.nan)) else f"{mem.get(c, math.nan):.2f}"
                                for c in wide.index]}))
    lengths = tables(report, "crossover_lengths")
    if lengths.empty:
        return out
    shown = pd.DataFrame({"threads": lengths["threads"], "comparison": lengths["comparison"],
                          "lengths": lengths["lengths"],
                          "who overtakes whom": [length_text(x) for x in lengths.itertuples()]})
    return out + "\n\n" + md(shown)


def state(report: Path) -> str:
    s = tables(report, "state_horizons")
    if s.empty:
        return missing("modern")
    h = lambda v: "> 256" if v == math.inf or (isinstance(v, str) and v == "inf") else f"{float(v):.0f}"
    return md(pd.DataFrame({
        "task": s["task"], "cell": s["cell"],
        "lr (tuning seeds)": [choice_text(r.lr, r.on_edge, getattr(r, "by_solve", True)) for r in s.itertuples()],
        "solved at training lengths [95% Wilson]": [f"{r.solved}/{r.seeds} [{r.solved_lo:.2f}, {r.solved_hi:.2f}]"
                                                    for r in s.itertuples()],
        "state horizon, median [min, max]": [f"{h(r.horizon_median)} [{h(r.horizon_min)}, {h(r.horizon_max)}]"
                                             for r in s.itertuples()],
        "seeds tracking to 256 [95% Wilson]": [f"{r.tracking}/{r.seeds} [{r.tracking_lo:.2f}, {r.tracking_hi:.2f}]"
                                               for r in s.itertuples()]})) + figure(
        report, "state_tracking_lengths", "state tracking beyond the training length")


def front_figures(reports: Dict[str, Path]) -> str:
    """The front page's two figures, from the studies that drew them."""
    links = [figure(reports[s], name, alt, "docs/figures") for s, name, alt in (
        ("fair", "long_range_survival", "Solved fraction against training steps, fair comparison"),
        ("modern", "state_tracking_lengths", "State tracking beyond the training length")) if s in reports]
    return "".join(links).strip() or "(The figures appear once the fair and state-tracking studies are measured.)"


def state_quoted(report: Path) -> str:
    q, ours = tables(report, "state_quoted"), tables(report, "state_parity_here")
    if q.empty:
        return missing("modern")
    return md(q) + "\n\nMeasured here (parity, mean scaled accuracy over test lengths 40 to 256):\n\n" + md(ours)


def selection(report: Path) -> str:
    t = tables(report, "selection_summary")
    if t.empty:
        return missing("selection")
    v = tables(report, "verdicts")
    v = v[v["claim"] == "selects"] if not v.empty else v
    verdict = "" if v.empty else (f"\n\nVerdict (`selects`, computed): **{v['verdict'].iloc[0]}**; "
                                  f"{v['scope'].iloc[0]}. {v['figure'].iloc[0]}.")
    return md(t) + verdict + figure(report, "selection_learning_curves",
                                    "selective copying with one layer: recall accuracy during training, reported seeds")


def cpu_advice(report: Path) -> str:
    text = (report / "report.md").read_text()
    part = text.split("**Advice, from the numbers below:**", 1)[1].strip().split("\n\n", 1)[0]
    return part.strip()


# name -> (file, study, render); a study of None renders from every study's report.
BLOCKS: Dict[str, tuple] = {
    "verdicts": ("README.md", None, verdicts),
    "figures": ("README.md", None, front_figures),
    "verdict-details": ("docs/results.md", None, verdict_details),
    "half-lives": ("docs/results.md", "classic", classic_half_lives),
    "ladder": ("docs/results.md", "classic", classic_ladder),
    "init": ("docs/results.md", "classic", classic_init),
    "throughput": ("docs/results.md", "classic", throughput),
    "anchors": ("docs/results.md", "classic", anchors),
    "fair": ("docs/results.md", "fair", fair),
    "budget": ("docs/results.md", "fair", budget),
    "papers": ("docs/results.md", None, papers),
    "state": ("docs/results.md", "modern", state),
    "state-quoted": ("docs/results.md", "modern", state_quoted),
    "crossover": ("docs/results.md", "crossover", crossover),
    "modern-half-lives": ("docs/results.md", "modern", modern_half_lives),
    "selection": ("docs/results.md", "selection", selection),
    "cpu-advice": ("docs/results.md", "cpu_cost", cpu_advice),
}
