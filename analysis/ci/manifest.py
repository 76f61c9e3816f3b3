"""`python -m analysis.ci.manifest STORE [--preset NAME]`: the list of points a recorded baseline
holds (`STORE/manifest.json`, written by `make baseline`), so that the stored-baseline check can
tell a baseline that lost a file (deleted, truncated, emptied) from one that never had the point:
a point the manifest lists must be in the store, readable and a record, or the check refuses to
judge (exit 2) rather than judge fewer points and pass."""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import List, Optional

from analysis.load import StoreError, read_records, record_files

MANIFEST = "manifest.json"


def write_manifest(store: Path, preset: str) -> Path:
    """Write STORE/manifest.json listing every point stored there; StoreError when any record
    file cannot be used (a baseline is recorded whole, or not at all)."""
    frames, bad = read_records(store)
    if bad:
        raise StoreError(f"{len(bad)} record file(s) cannot be used: {'; '.join(bad)}; re-record with `make baseline`")
    if not frames:
        raise StoreError(f"no record files in {store}: run `make baseline` first")
    points = sorted(p.stem for p in record_files(store))
    body = {"preset": preset, "points": points,
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = Path(store) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    tmp.replace(path)
    return path


def manifest_problems(store: Path) -> List[str]:
    """Why a baseline store is not the one its manifest lists: no manifest, an unreadable one,
    or listed points whose files are missing (the files' contents are load_store's to check)."""
    path = Path(store) / MANIFEST
    if not path.exists():
        return [f"{path} is missing (a baseline recorded by `make baseline` lists its points there; "
                f"for an existing store: `python -m analysis.ci.manifest {store}`)"]
    try:
        points = json.loads(path.read_text())["points"]
        if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
            raise TypeError("`points` is not a list of names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{path} cannot be read ({type(exc).__name__}: {exc})"]
    missing = [p for p in points if not (Path(store) / f"{p}.parquet").exists()]
    return [f"{Path(store) / (p + '.parquet')} (listed in {MANIFEST}) is missing" for p in missing]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.ci.manifest", description=__doc__.split("\n")[0])
    parser.add_argument("store", help="the baseline store (e.g. results/baseline)")
    parser.add_argument("--preset", default="ci", help="the preset it was recorded with (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        path = write_manifest(Path(args.store), args.preset)
    except StoreError as exc:
        print(f"manifest: {exc}", file=sys.stderr)
        return 2
    print(f"manifest: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
