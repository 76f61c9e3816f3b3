"""The report: every section on one store, the scorecard at the top, the provenance at the end.
Reads only the store (docs/architecture.md, "Report")."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import pandas as pd

from analysis.load import load_store, version_warnings
from analysis.report.claims import CLAIM_STUDY, CLAIMS, MEASURED_BY
from analysis.report.page import Report, SectionResult, atomic, style, write_text
from analysis.report.sections import SECTIONS


def scorecard(results: List[SectionResult], report: Report) -> str:
    """The claims table; also tables/scorecard.csv (claim, wording, measured, section), which
    `make docs` gathers from every reference store (analysis/readme/docs.py)."""
    lines, rows = ["| claim | measured | section |", "|---|---|---|"], []
    for key, wording in CLAIMS.items():
        found = [(r, r.claims[key]) for r in results if key in r.claims]
        if not found:
            how = f"`make bench EXP={MEASURED_BY[key]}`" if key in MEASURED_BY else "`make bench`"
            lines.append(f"| {wording} | not in this store: measured by {how}; committed figures in "
                         f"`results/reference/{CLAIM_STUDY[key]}` | - |")
            continue
        figures = "; ".join(f for _, f in found)
        links = ", ".join(f"[{r.title}](#{r.anchor})" for r, _ in found)
        lines.append(f"| {wording} | {figures} | {links} |")
        rows.append({"claim": key, "wording": wording, "measured": figures,
                     "section": ", ".join(r.title for r, _ in found)})
    with atomic(report.out / "tables" / "scorecard.csv") as tmp:
        pd.DataFrame(rows, columns=["claim", "wording", "measured", "section"]).to_csv(tmp, index=False)
    return "\n".join(lines)


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
