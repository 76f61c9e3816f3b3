"""`python -m bench.run.reference STUDY` (`make reference STUDY=...`): re-measure a committed
reference study from a clean commit.

A study is the preset `reference_<study>` of conf/experiment/; its store is
results/reference/<study>/. The run refuses a tree with uncommitted changes to tracked files (the
records would name a commit that does not hold the code that measured them), measures into
`<study>.new/` (an interrupted run resumes there; stored points are skipped) and swaps it in only
when every point succeeded, so a failed re-measure never loses the committed store.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from bench.run.records import changed_code
from bench.run.suite import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"


def studies() -> List[str]:
    """The reference studies: one preset `reference_<study>` each."""
    return sorted(p.stem.removeprefix("reference_") for p in EXPERIMENTS.glob("reference_*.yaml"))


def dirty() -> List[str]:
    """Tracked code with uncommitted changes (empty: the tree is its commit; results/ is not code,
    bench/run/records.py::changed_code)."""
    changed = changed_code(ROOT)
    return ["(not a git tree)"] if changed is None else changed


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in studies():
        print(f"make reference: STUDY={argv[0] if argv else ''} is not a reference study "
              f"({', '.join(studies())})", file=sys.stderr)
        return 2
    study, extra = argv[0], argv[1:]
    changed = dirty()
    if changed:
        print(f"make reference: the tree has uncommitted changes ({', '.join(changed[:5])}"
              f"{', ...' if len(changed) > 5 else ''}): commit them first, so that every record names "
              "the commit that measured it", file=sys.stderr)
        return 2
    new, old = REFERENCE / f"{study}.new", REFERENCE / study
    rc = subprocess.call([sys.executable, "-m", "bench.run.suite", f"reference_{study}",
                          f"results_dir={new}", *extra], cwd=ROOT)
    if rc != 0:
        print(f"make reference: {study}: not every point succeeded (exit {rc}); the committed store is "
              f"kept, the new one stays in {new} (the same command resumes)", file=sys.stderr)
        return rc
    shutil.rmtree(old, ignore_errors=True)
    new.rename(old)
    print(f"make reference: {study}: swapped in {old}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
