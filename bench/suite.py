"""`python -m bench.suite NAME [overrides]`: run a preset from conf/experiment/.

A preset that lists `suite: [a, b, ...]` runs each named preset in turn, each as its own
`python -m bench -m experiment=...` (a fresh Hydra sweep); any other preset runs as itself.
The exit code is the worst of the sweeps'.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import List

import yaml

EXPERIMENTS = Path(__file__).resolve().parent.parent / "conf" / "experiment"


def members(name: str) -> List[str]:
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
        raise SystemExit(f"bench.suite: no preset {name!r} in conf/experiment/ (known: {', '.join(known)})")
    suite = (yaml.safe_load(path.read_text()) or {}).get("suite")
    return [m for s in suite for m in members(s)] if suite else [name]


def main(argv: List[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    worst, start, presets = 0, time.monotonic(), members(argv[0])
    for preset in presets:
        print(f"bench.suite: experiment={preset}", file=sys.stderr, flush=True)
        rc = subprocess.call([sys.executable, "-m", "bench", "-m", f"experiment={preset}", *argv[1:]])
        if rc == 2:  # refused before any work: the remaining presets would be refused too
            return rc
        worst = max(worst, rc)
    print(f"bench.suite: {argv[0]}: {len(presets)} presets in {(time.monotonic() - start) / 60:.1f} min, "
          f"exit {worst}", file=sys.stderr)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
