"""`python -m analysis.report [STORE] [--out DIR]`: tables, seaborn figures and report.md, from the
store alone (analysis/report/build.py); each section is a module of analysis/report/sections/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from analysis.load import StoreError
from analysis.report.build import build


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
    except OSError as exc:  # a full disk, a read-only folder: one line; the files already there stay whole
        where = f" {exc.filename}" if exc.filename else ""
        print(f"report: cannot write{where}: {exc.strerror or exc}; the report folder {args.out} keeps "
              "its previous files", file=sys.stderr)
        return 1
    print(f"report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
