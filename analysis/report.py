"""`python -m analysis.report [STORE] [--out DIR]`: tables, seaborn figures and report.md.

Reads only the store. Each measure's section lives in `analysis/sections/` and is listed in
SECTIONS; a section returns its markdown and its lines for the scorecard at the top.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis.load import StoreError, load_store, version_warnings  # noqa: E402

# The tutorial's claims, in scorecard order: key -> wording.
CLAIMS = {
    "gates": "The gates and cell state follow the textbook formulas (`ref_lstm` reproduces `nn.LSTM`)",
    "reach": "LSTM gradients reach further back in time than a plain RNN's",
    "init": "...and not only because PyTorch's default init makes the RNN contract (the RNN at its best init)",
    "long_lag": "Long-lag tasks that a plain RNN fails are learnable by an LSTM",
    "fair": "...also against a well-initialised RNN of equal parameter count, each cell's lr chosen on validation",
    "slower": "LSTM trains slower than a plain RNN on the same hardware",
    "bidir": "A bidirectional LSTM doubles parameters and compute",
    "scan": "Cells that train by parallel scan (minGRU, minLSTM, LRU) outrun a fused LSTM at long sequences",
    "state": "LSTM tracks state (running parity) at lengths it never saw; the diagonal cells cannot",
    "selective": "Selective copying: which cells learn it within the same training budget",
    "subnormal": "On a CPU, vanishing gradients cost time: subnormal floats slow a step until flushed",
}


# The reference study (results/reference/<study>, analysis/docs.py) whose report measures each
# claim for the README.
CLAIM_STUDY = {"gates": "classic", "reach": "classic", "init": "classic", "long_lag": "classic",
               "fair": "fair", "slower": "classic", "bidir": "classic", "scan": "modern",
               "state": "modern", "selective": "modern", "subnormal": "cpu_cost"}

# The preset that measures a claim the default suite does not.
MEASURED_BY = {"init": "gradients_init", "fair": "long_range_fair", "scan": "throughput_crossover",
               "state": "modern_tasks", "selective": "modern_tasks", "subnormal": "cpu_cost"}


@dataclass
class SectionResult:
    title: str
    anchor: str
    markdown: str
    claims: Dict[str, str] = field(default_factory=dict)  # claim key -> measured figure


class Report:
    """Where a section writes: tables (csv + md) and figures (png + svg), reproducibly."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "figures").mkdir(parents=True, exist_ok=True)

    def table(self, name: str, df: pd.DataFrame, caption: str, floatfmt: str = ".4g",
              shown: Optional[pd.DataFrame] = None) -> str:
        """The full table as csv; in the report `shown` (a readable digest) where given, else df."""
        df.to_csv(self.out / "tables" / f"{name}.csv", index=False)
        md = (df if shown is None else shown).to_markdown(index=False, floatfmt=floatfmt)
        (self.out / "tables" / f"{name}.md").write_text(md + "\n")
        return f"**Table: {caption}** ([csv](tables/{name}.csv))\n\n{md}\n"

    def figure(self, name: str, fig: plt.Figure, caption: str) -> str:
        for ext in ("png", "svg"):
            fig.savefig(self.out / "figures" / f"{name}.{ext}", dpi=110, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else {"Software": None})
        plt.close(fig)
        return f"![{name}](figures/{name}.png)\n\n*Figure: {caption}* ([svg](figures/{name}.svg))\n"


def style() -> None:
    """Fixed style and seeds so that the same store gives the same figures."""
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"svg.hashsalt": "rnn-bench", "figure.max_open_warning": 0})


def scorecard(results: List[SectionResult], report: Report) -> str:
    """The claims table; also tables/scorecard.csv (claim, wording, measured, section), which
    `make docs` gathers from every reference store (analysis/docs.py)."""
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
    pd.DataFrame(rows, columns=["claim", "wording", "measured", "section"]).to_csv(
        report.out / "tables" / "scorecard.csv", index=False)
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
    from analysis.sections import SECTIONS

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
    path.write_text("\n".join(parts))
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    parser.add_argument("store", nargs="?", default="results/store", help="record store (default: %(default)s)")
    parser.add_argument("--out", default="results/report", help="report folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        path = build(Path(args.store), Path(args.out))
    except StoreError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
