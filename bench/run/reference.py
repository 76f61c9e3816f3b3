"""`python -m bench.run.reference STUDY` (`make reference STUDY=...`): re-measure a committed
reference study from a clean commit.

A study is the preset `reference_<study>` of conf/experiment/; its store is
results/reference/<study>/. The run refuses a tree with uncommitted changes to tracked files (the
records would name a commit that does not hold the code that measured them), measures into
`<study>.new/` (an interrupted run resumes there; stored points are skipped) and swaps it in only
when every point succeeded, so a failed re-measure never loses the committed store.
`--baseline STORE` (`make baseline`) records the CI regression check's stored baseline the same way.
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


def record(preset: str, store: Path, extra: List[str], command: str) -> int:
    """Measure `preset` from a clean commit into `store`.new/ and swap it in for `store` only when
    every point succeeded (the same call resumes an interrupted run); 2 on a dirty tree."""
    changed = dirty()
    if changed:
        print(f"{command}: the tree has uncommitted changes ({', '.join(changed[:5])}"
              f"{', ...' if len(changed) > 5 else ''}): commit them first, so that every record names "
              "the commit that measured it", file=sys.stderr)
        return 2
    new = store.with_name(store.name + ".new")
    rc = subprocess.call([sys.executable, "-m", "bench.run.suite", preset, f"results_dir={new}", *extra], cwd=ROOT)
    if rc != 0:
        print(f"{command}: not every point succeeded (exit {rc}); {store} is kept, the new store stays "
              f"in {new} (the same command resumes)", file=sys.stderr)
        return rc
    shutil.rmtree(store, ignore_errors=True)
    new.rename(store)
    print(f"{command}: swapped in {store}", file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--baseline"]:  # `make baseline`: the ci preset into the stored baseline
        if len(argv) != 2:
            print("make baseline: usage: python -m bench.run.reference --baseline STORE", file=sys.stderr)
            return 2
        return record("ci", Path(argv[1]), [], "make baseline")
    if not argv or argv[0] not in studies():
        print(f"make reference: STUDY={argv[0] if argv else ''} is not a reference study "
              f"({', '.join(studies())})", file=sys.stderr)
        return 2
    return record(f"reference_{argv[0]}", REFERENCE / argv[0], argv[1:], f"make reference: {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
