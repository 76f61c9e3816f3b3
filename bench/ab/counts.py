"""`python -m bench.ab.counts --base REF | --base-python PY`: instruction counts, head against base.

The deterministic CI signal beside the interleaved timing (`bench.ab`): every registered cell's
training step (forward, loss, backward at bench/ab/counts_worker.py's tiny fixed shape) counted in
instructions under valgrind's callgrind, for base and head in the same job. Base is another
commit (checked out into a temporary git worktree, as `bench.ab` does) or the same code under
another interpreter (another torch). Each side is one valgrind process running head's worker
over that side's registry: torch is imported once, uninstrumented, and instrumentation and
collection are switched on around the counted steps only (callgrind's client requests, compiled
here into a tiny C helper; where no C compiler is found, torch's own toggles with the whole run
instrumented, about 3x slower). The two sides run at the same time: counts do not depend on the
machine's load.

What would change the code path is pinned, for both sides alike (`PINNED`): one thread, aten's
CPU capability and oneDNN's ISA at AVX2 (valgrind cannot run AVX-512: with the pin, the path
counted is the path an AVX2 machine runs), the hash seed; the worker pins the torch seed.
OUT/counts.json holds both sides' per-step counts (REPEATS per cell) with their environment;
OUT/<side>/<cell>.callgrind keeps each cell's median dump (`callgrind_annotate` shows where the
instructions went); `python -m analysis.ci.counts OUT` judges them. Exit 2, in one line, where
valgrind is missing or a side could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from bench.ab.callgrind import DumpError, step_counts
from bench.ab.runner import ABError, base_worktree, check_python, git

ROOT = Path(__file__).resolve().parents[2]
PINNED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
          "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": ""}
HOOKS_C = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cg_toggle_dump(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; }
"""


def valgrind() -> str:
    """valgrind's version line, or ABError saying it is missing (`make ci-counts` installs it)."""
    exe = shutil.which("valgrind")
    if exe is None:
        raise ABError("valgrind not found on PATH (Debian: apt-get install valgrind; `make ci-counts` "
                      "installs it where it can)")
    return subprocess.run([exe, "--version"], text=True, capture_output=True).stdout.strip()


def build_hooks(out: Path) -> Optional[Path]:
    """The callgrind client requests as a shared library (cc, valgrind's own header), or None
    where it cannot be built (then the worker uses torch's toggles, instrumenting throughout)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    include = Path(shutil.which("valgrind")).resolve().parent.parent / "include"
    if cc is None or not (include / "valgrind" / "callgrind.h").exists():
        return None
    src, lib = out / "callgrind_hooks.c", out / "libcallgrind_hooks.so"
    src.write_text(HOOKS_C)
    done = subprocess.run([cc, "-O1", "-shared", "-fPIC", f"-I{include}", str(src), "-o", str(lib)],
                          capture_output=True, text=True)
    return lib if done.returncode == 0 else None


def head_sha() -> str:
    """HEAD's short hash, marked -dirty when tracked files differ (as bench.run.records.git_sha)."""
    sha = git("rev-parse", "--short=12", "HEAD")
    return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def start_side(name: str, python: str, code: Path, out: Path, hooks: Optional[Path],
               cells: Optional[List[str]]) -> subprocess.Popen:
    """One valgrind process counting one side's cells into OUT/<name>/ (dumps and manifest)."""
    side = out / name
    side.mkdir()
    request = {"code": str(code), "manifest": str(side / "manifest.json"), "hooks": str(hooks or ""),
               "cells": cells}
    bootstrap = ("import runpy, sys; sys.argv = ['counts_worker', sys.argv[1]]; "
                 f"runpy.run_path({str(ROOT / 'bench' / 'ab' / 'counts_worker.py')!r}, run_name='__main__')")
    cmd = ["valgrind", "--tool=callgrind", f"--instr-atstart={'no' if hooks else 'yes'}",
           "--collect-atstart=no", "--dump-line=no", f"--callgrind-out-file={side / 'callgrind.out'}",
           python, "-c", bootstrap, json.dumps(request)]
    env = dict(os.environ, **PINNED, PYTHONPATH=str(code))
    with open(out / f"{name}.log", "w") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, cwd=code, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def collect(name: str, out: Path) -> Dict:
    """One side's manifest with each cell's dump numbers replaced by their counts: `counts`
    (instructions per step, in all) and `malloc` (the part inside glibc's malloc internals,
    bench.ab.callgrind). Keeps each cell's median dump as OUT/<name>/<cell>.callgrind (for
    `callgrind_annotate`) and removes the rest."""
    side = out / name
    try:
        manifest = json.loads((side / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise ABError(f"the {name} side wrote no readable manifest ({exc}); see {out / (name + '.log')}") from exc
    for cell, entry in manifest["cells"].items():
        dumps = entry.pop("dumps", None)
        if dumps is None:
            continue
        try:
            counts = [step_counts(side / f"callgrind.out.{d}") for d in dumps]
        except (OSError, DumpError) as exc:
            raise ABError(f"the {name} side's dumps of {cell} cannot be read: {exc}") from exc
        entry["counts"], entry["malloc"] = [t for t, _ in counts], [m for _, m in counts]
        median = sorted(zip([t - m for t, m in counts], dumps))[len(dumps) // 2][1]
        os.replace(side / f"callgrind.out.{median}", side / f"{cell}.callgrind")
    for stale in side.glob("callgrind.out*"):
        stale.unlink()
    return manifest


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab.counts", description=__doc__.split("\n")[0])
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--base", help="git ref of the base commit (e.g. origin/main, HEAD~1)")
    side.add_argument("--base-python", help="another interpreter running the same code")
    parser.add_argument("--out", default="results/ci/counts", help="where the counts go (emptied first)")
    parser.add_argument("--cells", help="comma-separated cells to count (default: every registered cell)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a CI timeout: clean up as on Ctrl-C
    try:
        return run(args)
    except ABError as exc:
        print(f"bench.counts: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    version = valgrind()
    out = Path(args.out).resolve()
    head_py, worktree = sys.executable, None
    if args.base:
        worktree, sha = base_worktree(args.base, "rnn-bench-counts-")
        base_py, base_code, base_label, base_sha = head_py, worktree, f"{args.base} ({sha[:12]})", sha[:12]
    else:
        base_py, base_code = check_python(args.base_python), ROOT
        base_label, base_sha = f"{base_py} (same code)", head_sha()
    procs: Dict[str, subprocess.Popen] = {}
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        hooks = build_hooks(out)
        cells = args.cells.split(",") if args.cells else None
        start = time.perf_counter()
        procs = {"base": start_side("base", base_py, base_code, out, hooks, cells),
                 "head": start_side("head", head_py, ROOT, out, hooks, cells)}
        seconds: Dict[str, float] = {}
        while len(seconds) < len(procs):
            for name, proc in procs.items():
                if name not in seconds and proc.poll() is not None:
                    if proc.returncode != 0:
                        raise ABError(f"the {name} side could not run (valgrind exit {proc.returncode}); "
                                      f"see {out / (name + '.log')}")
                    seconds[name] = round(time.perf_counter() - start, 1)
            time.sleep(0.5)
        sides = {name: collect(name, out) for name in procs}
        meta = {"base": base_label, "head": f"working tree ({head_sha()})", "base_sha": base_sha,
                "head_sha": head_sha(), "base_python": base_py, "head_python": head_py,
                "valgrind": version, "pinned": PINNED,
                "hooks": "callgrind client requests (cc)" if hooks else "torch._C._valgrind_toggle",
                "seconds": round(time.perf_counter() - start, 1), "side_seconds": seconds,
                "sides": sides}
        (out / "counts.json").write_text(json.dumps(meta, indent=1))
        for name, m in sides.items():
            counted = {c: statistics.median(t - a for t, a in zip(e["counts"], e["malloc"]))
                       for c, e in m["cells"].items() if "counts" in e}
            medians = ", ".join(f"{c} {n / 1e6:.2f}M" for c, n in counted.items())
            print(f"bench.counts: {name}: {len(counted)} cells counted in {seconds[name]:.0f} s (median "
                  f"instructions per step outside malloc's internals: {medians}); "
                  f"{len(m['cells']) - len(counted)} failed", file=sys.stderr)
        print(f"bench.counts: counts in {out / 'counts.json'}", file=sys.stderr)
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
