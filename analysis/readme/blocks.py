"""The README's generated blocks (`make docs`, analysis/readme/docs.py): one render function per block,
from the tables of one reference study's report (or, for the scorecard, of every study's)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pandas as pd

from analysis.reduce.fits import fraction
from analysis.reduce.gradients import ladder_rows
from analysis.report.claims import CLAIM_STUDY, CLAIMS


def reference_command(study: str) -> str:
    """The command that re-measures a reference study (the Makefile's `reference` target)."""
    return "make reference" if study == "classic" else f"make reference STUDY={study}"


def md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False)


def tables(report: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv")


def scorecard(reports: Dict[str, Path]) -> str:
    rows = []
    for key, wording in CLAIMS.items():
        study = CLAIM_STUDY[key]
        card = tables(reports[study], "scorecard").set_index("claim")
        measured = card.at[key, "measured"] if key in card.index else "not measured in this store"
        rows.append({"claim": wording, "measured [95% interval]": measured,
                     "study": f"`results/reference/{study}` (`{reference_command(study)}`)"})
    return md(pd.DataFrame(rows))


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


def classic_long_lag(report: Path) -> str:
    s = tables(report, "long_range_success")
    s = s[s["forget_bias"].isna() | (s["forget_bias"] == 0)] if "forget_bias" in s else s
    s["solved"] = [fraction(int(k), int(n)) for k, n in zip(s["solved"], s["seeds"])]
    s["steps"] = s["median_steps_to_solve"].map(lambda v: "" if pd.isna(v) else f", {v:.0f} steps")
    s["entry"] = s["solved"] + s["steps"]
    wide = s.pivot_table(index=["task", "seq_len"], columns="cell", values="entry", aggfunc="first").fillna("-")
    return md(pd.DataFrame({"task": [t for t, _ in wide.index], "lag": [T for _, T in wide.index],
                            **{f"{c}: seeds solved [95% Wilson], median steps": wide[c].values for c in wide.columns}}))


def classic_trained(report: Path) -> str:
    t = tables(report, "trained_half_lives")
    t = t[(t["loss_kind"] == "random_projection") & (t["forget_bias"].isna() | (t["forget_bias"] == 0))]
    t = t[t["seq_len"] == (100 if (t["seq_len"] == 100).any() else t["seq_len"].min())]  # the figure's lag
    wide = t.pivot_table(index=["task", "seq_len", "cell"], columns="condition", values="half_life", aggfunc="first")
    return md(pd.DataFrame({"task": [k[0] for k in wide.index], "lag": [k[1] for k in wide.index],
                            "cell": [k[2] for k in wide.index],
                            "half-life at init, steps [95% CI]": wide["init"].values,
                            "after training": wide["trained"].values}))


def fair(report: Path) -> str:
    f = tables(report, "fair_comparison")
    f["proto"] = f["protocol"].str.split(":").str[0]
    f["entry"] = f.apply(lambda r: r["solved [95% Wilson]"] + (
        "" if r.cell != "rnn" or r.proto == "A" else (" IRNN" if r.init == "identity" else f" {r.init}+{r.nonlinearity}")), axis=1)
    wide = f.pivot_table(index="seq_len", columns=["proto", "cell"], values="entry", aggfunc="first")
    return md(pd.DataFrame({"lag": wide.index, **{f"{p}: {c}": wide[(p, c)].values for p, c in wide.columns}}))


def throughput(report: Path) -> str:
    r = tables(report, "cost_ratios")
    p = tables(report, "throughput_points")
    lines = []
    lr = r[(r["ratio_kind"].str.startswith("lstm/rnn")) & (r["measure_backend"] == "native") & ~r["bidirectional"].astype(bool)]
    at = lr[(lr["hidden_size"] == 256) & (lr["seq_len"] == 100)]
    if not at.empty:
        a = at.iloc[0]
        lines.append(f"- LSTM/RNN step time, native backend, hidden 256, seq_len 100, batch {a.batch_size}: "
                     f"{a.ratio:.2f}x [{a.ratio_lo:.2f}, {a.ratio_hi:.2f}] (FLOP ratio 4x by construction); "
                     f"over all {len(lr)} native unidirectional sizes that passed the noise check, median {lr['ratio'].median():.2f}x "
                     f"({lr['ratio'].min():.2f} to {lr['ratio'].max():.2f}).")
    lo = r[(r["ratio_kind"].str.startswith("lstm/rnn")) & (r["measure_backend"] == "auto") & ~r["bidirectional"].astype(bool)]
    if not lo.empty:
        lines.append(f"- The same on the default backend (nn.LSTM on oneDNN, nn.RNN on the native loop): median "
                     f"{lo['ratio'].median():.2f}x ({lo['ratio'].min():.2f} to {lo['ratio'].max():.2f}, {len(lo)} sizes).")
    bi = r[r["ratio_kind"].str.startswith("bidirectional")]
    if not bi.empty:
        lines.append(f"- Bidirectional over unidirectional step time: median {bi['ratio'].median():.2f}x "
                     f"({bi['ratio'].min():.2f} to {bi['ratio'].max():.2f}, {len(bi)} configurations; "
                     "parameters 2x by construction).")
    m = p[(p["cell"] == "lstm") & (p["hidden_size"] == 256) & (p["seq_len"] == 100) & ~p["bidirectional"].astype(bool)
          & (p["num_layers"] == 1) & (p["input_size"] == 64)]
    if {"auto", "native"} <= set(m["measure_backend"]):
        mib = m.set_index("measure_backend")["peak_mem_bytes"] / 2 ** 20
        lines.append(f"- Peak memory of a training step, nn.LSTM at input 64, hidden 256, seq_len 100, batch "
                     f"{int(m['batch_size'].iloc[0])}: oneDNN {mib['auto']:.0f} MiB, native loop {mib['native']:.0f} MiB "
                     "(torch's allocation events).")
    return "\n".join(lines)


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


def crossover(report: Path) -> str:
    r = tables(report, "crossover_ratios")
    keep = ["mingru scan / mingru loop", "mingru scan / lstm onednn", "mingru loop / lstm onednn",
            "minlstm scan / lstm onednn", "lru scan / lru loop", "lru loop / lstm onednn"]
    r = r[r["comparison"].isin(keep) & r["seq_len"].isin([256, 1024, 4096])]
    cell = r.apply(lambda x: f"{x.ratio:.2f} [{x.ratio_lo:.2f}, {x.ratio_hi:.2f}]", axis=1)
    wide = r.assign(cell=cell).pivot(index="comparison", columns="seq_len", values="cell").reindex(keep).dropna(how="all")
    mem = r[r["seq_len"] == r["seq_len"].max()].set_index("comparison")["memory_ratio"]
    out = pd.DataFrame({"step-time ratio [95% CI]": wide.index,
                        **{f"T={T}": wide[T].fillna("-").values for T in wide.columns},
                        f"memory ratio at T={int(r['seq_len'].max())}": [f"{mem.get(c, float('nan')):.2f}" for c in wide.index]})
    return md(out)


def modern_tasks(report: Path) -> str:
    s = tables(report, "modern_summary").fillna("-")
    return md(s.drop(columns=[c for c in s.columns if c.startswith("ms per")]))


def modern_half_lives(report: Path) -> str:
    h = tables(report, "half_lives")
    h = h[(h["condition"] == "init")] if "condition" in h else h
    out = pd.DataFrame({"cell": h["cell"], "T": h["seq_len"], "seeds": h["seeds"],
                        "half-life at init, steps [95% CI]": h["half_life"],
                        "measured decay, log10 per step": h["decay_per_step"].map("{:.3g}".format),
                        "gate theory": h["gate_decay_per_step"].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")})
    return md(out)


def cpu_advice(report: Path) -> str:
    text = (report / "report.md").read_text()
    part = text.split("**Advice, from the numbers below:**", 1)[1].strip().split("\n\n", 1)[0]
    return part.strip()


# name -> (study, render); a render of None takes every study's report (the scorecard).
BLOCKS: Dict[str, tuple] = {
    "scorecard": (None, scorecard),
    "half-lives": ("classic", classic_half_lives),
    "ladder": ("classic", classic_ladder),
    "init": ("classic", classic_init),
    "long-lag": ("classic", classic_long_lag),
    "trained": ("classic", classic_trained),
    "fair": ("fair", fair),
    "throughput": ("classic", throughput),
    "anchors": ("classic", anchors),
    "crossover": ("modern", crossover),
    "modern-tasks": ("modern", modern_tasks),
    "modern-half-lives": ("modern", modern_half_lives),
    "cpu-advice": ("cpu_cost", cpu_advice),
}
