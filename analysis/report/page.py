"""Where a report section writes (Report: tables as csv and a markdown digest, figures as png and
svg, reproducibly) and what it returns (SectionResult: its markdown and its claim figures)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


@dataclass
class SectionResult:
    title: str
    anchor: str
    markdown: str
    claims: Dict[str, str] = field(default_factory=dict)  # claim key -> measured figure (prose)
    evidence: Dict[str, object] = field(default_factory=dict)  # claim key -> what its rule judges


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
    """Fixed style and seeds so that the same store gives the same figures; a file backend (Agg),
    set here rather than at import."""
    matplotlib.use("Agg")
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"svg.hashsalt": "rnn-bench", "figure.max_open_warning": 0})
