"""`python -m analysis.compare BASELINE CANDIDATE | --ab DIR`: the CI regression verdict.

Two modes (docs/architecture.md, "Regression tracking"). A/B (`--ab`, after `bench.ab`): head
and base measured in interleaved rounds on the same machine in the same job, judged on paired
rounds (analysis/ci/paired.py, the verdict built in analysis/ci/ab.py); this is the mode that can tell a 10% slowdown from the machine's
weather. Stored baseline: a candidate store against one recorded earlier (results/baseline), for
machines that cannot build the base; its rules follow. Either prints a markdown verdict table,
also written to --out, and may append it to a history store (--history). Exit 0: no
regression; 1: a regression; 2: unusable input (missing store, nothing in common, another device).

The rules: analysis/ci/rules.py (shared), analysis/ci/baseline.py and analysis/ci/ab.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from analysis.ci import paired
from analysis.ci.baseline import compare
from analysis.ci.rules import emit


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.compare", description=__doc__.split("\n")[0])
    parser.add_argument("stores", nargs="*", metavar="STORE",
                        help="BASELINE CANDIDATE [CONFIRMATION ...]: a candidate run against a stored "
                             "baseline; more than one candidate: confirmation runs, a timing metric "
                             "regresses only if it regresses in every one")
    parser.add_argument("--ab", metavar="DIR", help="judge an A/B run of `python -m bench.ab` instead")
    parser.add_argument("--threshold", type=float, default=paired.THRESHOLD,
                        help="A/B: the relative slowdown an interval must wholly exceed (default %(default)s)")
    parser.add_argument("--out", help="also write the verdict table here (markdown)")
    parser.add_argument("--history", metavar="DIR", help="append this run's per-metric results here "
                        "(`python -m analysis.history DIR` draws them)")
    parser.add_argument("--on-other-device", choices=["refuse", "gradients", "all"], default="refuse",
                        help="when the device names differ: refuse (exit 2, default), compare "
                             "gradients only, or compare all")
    args = parser.parse_args(argv)
    if args.ab and args.stores or not args.ab and len(args.stores) < 2:
        parser.error("give either BASELINE CANDIDATE [CONFIRMATION ...] or --ab DIR")
    if args.ab:
        from analysis.ci.ab import compare_ab
        code, text, table = compare_ab(Path(args.ab), args.threshold)
    else:
        code, text, table = compare(Path(args.stores[0]), [Path(c) for c in args.stores[1:]], args.on_other_device)
        table["mode"], table["base_ref"] = "stored baseline", str(args.stores[0])
    return emit(code, text, table, args.out, args.history)


if __name__ == "__main__":
    sys.exit(main())
