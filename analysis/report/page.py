"""Where a report section writes (Report: tables as csv and a markdown digest, figures as png and
svg, reproducibly) and what it returns (SectionResult: its markdown and its claim figures).
Every file is written atomically (`atomic`): a full disk or a kill leaves the previous file or
none, never a truncated table or a 0-byte figure."""
from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional

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


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yields a temp path beside `path` to write; renamed onto `path` only when the block ends
    without an error (then the temp file is removed and `path` left as it was)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # named by the file being written, not by its temp file
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    with atomic(path) as tmp:
        tmp.write_text(text)


class Report:
    """Where a section writes: tables (csv + md) and figures (png + svg), reproducibly."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "figures").mkdir(parents=True, exist_ok=True)

    def table(self, name: str, df: pd.DataFrame, caption: str, floatfmt: str = ".4g",
              shown: Optional[pd.DataFrame] = None) -> str:
        """The full table as csv; in the report `shown` (a readable digest) where given, else df."""
        with atomic(self.out / "tables" / f"{name}.csv") as tmp:
            df.to_csv(tmp, index=False)
        md = (df if shown is None else shown).to_markdown(index=False, floatfmt=floatfmt)
        write_text(self.out / "tables" / f"{name}.md", md + "\n")
        return f"**Table: {caption}** ([csv](tables/{name}.csv))\n\n{md}\n"

    def figure(self, name: str, fig: plt.Figure, caption: str) -> str:
        try:
            for ext in ("png", "svg"):
                with atomic(self.out / "figures" / f"{name}.{ext}") as tmp:
                    fig.savefig(tmp, format=ext, dpi=110, bbox_inches="tight",
                                metadata={"Date": None} if ext == "svg" else {"Software": None})
        finally:
            plt.close(fig)
        return f"![{name}](figures/{name}.png)\n\n*Figure: {caption}* ([svg](figures/{name}.svg))\n"


def style() -> None:
    """Fixed style and seeds so that the same store gives the same figures; a file backend (Agg),
    set here rather than at import."""
    matplotlib.use("Agg")
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"svg.hashsalt": "rnn-bench", "figure.max_open_warning": 0})
