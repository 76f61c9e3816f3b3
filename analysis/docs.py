"""`python -m analysis.docs [--check]`: the README's generated blocks and the figures it shows,
from the committed stores (docs/architecture.md, "Report").

Each block sits in README.md between `<!-- docs:NAME -->` and `<!-- /docs:NAME -->` and is
rewritten from the report of its store; the figures the README shows are copied into
docs/figures/. `--check` writes nothing and exits 1 naming every block that differs from what
the stores give (tests/test_docs.py), so no number in those blocks is typed by hand.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pandas as pd

from analysis.report import build

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures"
# store -> the figures of its report that the README shows
SOURCES = {"results/modern": ["crossover", "parity_length_generalisation"],
           "results/cpu_cost": ["cost_per_token"]}


def md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False)


def crossover(report: Path) -> str:
    r = pd.read_csv(report / "tables" / "crossover_ratios.csv")
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
    s = pd.read_csv(report / "tables" / "modern_summary.csv").fillna("-")
    return md(s.drop(columns=[c for c in s.columns if c.startswith("ms per")]))


def modern_half_lives(report: Path) -> str:
    h = pd.read_csv(report / "tables" / "half_lives.csv")
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


BLOCKS: Dict[str, tuple] = {  # name -> (store, render)
    "crossover": ("results/modern", crossover),
    "modern-tasks": ("results/modern", modern_tasks),
    "modern-half-lives": ("results/modern", modern_half_lives),
    "cpu-advice": ("results/cpu_cost", cpu_advice),
}


def generate(workdir: Path, figures: bool) -> Dict[str, str]:
    """Build each store's report under workdir; copy the README's figures if asked; the blocks."""
    reports: Dict[str, Path] = {}
    for store, names in SOURCES.items():
        out = workdir / store.replace("/", "_")
        build(ROOT / store, out, warn=lambda msg: None)
        reports[store] = out
        if figures:
            FIGURES.mkdir(parents=True, exist_ok=True)
            for name in names:
                shutil.copyfile(out / "figures" / f"{name}.png", FIGURES / f"{name}.png")
    return {name: render(reports[store]) for name, (store, render) in BLOCKS.items()}


def splice(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- docs:{name} -->\n)(.*?)(<!-- /docs:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"analysis.docs: README.md has no block <!-- docs:{name} --> ... <!-- /docs:{name} -->")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(3), text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.docs", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block differs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        blocks = generate(Path(tmp), figures=not args.check)
    text = README.read_text()
    new = text
    for name, body in blocks.items():
        new = splice(new, name, body)
    if args.check:
        stale = [n for n, b in blocks.items() if splice(text, n, b) != text]
        if stale:
            print(f"analysis.docs: README blocks differ from the stores: {', '.join(stale)} "
                  "(run `make docs`)", file=sys.stderr)
            return 1
        print("analysis.docs: README blocks match the stores")
        return 0
    README.write_text(new)
    print(f"analysis.docs: rewrote {len(blocks)} README blocks and {sum(map(len, SOURCES.values()))} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
