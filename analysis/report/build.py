"""The report: every section on one store, the scorecard at the top, the provenance at the end.
Reads only the store (docs/architecture.md, "Report")."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import pandas as pd

from analysis.load import load_store, version_warnings
from analysis.report.page import Report, SectionResult, atomic, style, write_text
from analysis.report.sections import SECTIONS
from analysis.report.verdicts import Scorecard, judge_all


def scorecard(results: List[SectionResult], report: Report) -> str:
    """The verdict of every claim by its rule (analysis/report/verdicts.py), from the evidence the
    sections gathered; also tables/verdicts.csv, which `make docs` gathers from every reference
    store (analysis/readme/docs.py)."""
    evidence = {k: v for r in results for k, v in r.evidence.items()}
    card = Scorecard(judge_all(evidence)).frame()
    with atomic(report.out / "tables" / "verdicts.csv") as tmp:
        card.to_csv(tmp, index=False)
    lines = ["| claim | verdict | measured [95% interval] | where |", "|---|---|---|---|"]
    for row in card.itertuples():
        if row.verdict == "not measured":
            where = (f"not in this store: `make bench EXP={row.preset}`; committed verdict: "
                     f"`results/reference/{row.study}`")
        else:
            where = row.scope
        label = " (by construction: a consistency check)" if row.by_construction else ""
        lines.append(f"| {row.statement}{label} | **{row.verdict}** | {row.figure} | {where} |")
    rules = [f"{i}. **{row.claim}**: {row.rule}." for i, row in enumerate(card.itertuples(), start=1)]
    return "\n".join(lines + ["", "Rules (a configuration whose interval cannot decide counts neither for the claim nor against it):",
                              "", *rules])


def provenance(df: pd.DataFrame) -> str:
    cols = ["torch_version", "device_name", "threads", "git_sha"]
    env = df[[c for c in cols if c in df.columns]].drop_duplicates().astype(str)
    stamps = df["timestamp"].dropna().astype(str) if "timestamp" in df else pd.Series(dtype=str)
    span = f"{stamps.min()} to {stamps.max()}" if len(stamps) else "unknown"
    status = df.groupby("config_hash")["status"].first().value_counts().to_dict()
    return (f"{df['config_hash'].nunique()} points ({', '.join(f'{v} {k}' for k, v in status.items())}), "
            f"measured {span}.\n\n" + env.to_markdown(index=False) + "\n")


def build(store: Path, out: Path, warn=None) -> Path:
    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    df = load_store(store, warn=warn)
    mixed = version_warnings(df)
    for line in mixed:
        warn(f"warning: {line}")
    style()
    report = Report(out)
    results: List[SectionResult] = []
    for section in SECTIONS:
        result: Optional[SectionResult] = section.build(df, report)
        if result is not None:
            results.append(result)
    parts = ["# rnn-bench report: LSTM against a plain RNN and the modern recurrent cells, measured", ""]
    parts += [f"> **Warning:** {line}" for line in mixed] + ([""] if mixed else [])
    parts += ["## Scorecard", "", scorecard(results, report), ""]
    for r in results:
        parts += [f'<a id="{r.anchor}"></a>', "", f"## {r.title}", "", r.markdown, ""]
    parts += ["## Provenance", "", provenance(df)]
    path = out / "report.md"
    write_text(path, "\n".join(parts))
    return path
