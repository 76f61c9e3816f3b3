"""`python -m bench.ab --base REF | --base-python PY`: measure head against base, interleaved.

Head is the working tree under this interpreter. Base is another commit (checked out into a
temporary git worktree, run under this interpreter) or the same code under another interpreter
(another torch build, another oneDNN). Round 1 runs the full preset (`ci`: the exact float64
gradient checks and the timings) on both sides; every further round runs the timed preset only.
Both sides run head's presets (conf/experiment/ is copied into
the base worktree, as asv runs the current benchmarks against every commit). Each side runs in its own process, and the order alternates (base-head, head-base, ...) so that a
drift of the machine during a round falls on both sides alike. The stores land in
OUT/{base,head}/r<k>/ with OUT/ab.json describing the run; `python -m analysis.compare --ab OUT`
judges them (docs/architecture.md, "Regression tracking").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent


class ABError(Exception):
    """The A/B run cannot start or a side cannot run at all; the message says why."""


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True)
    if out.returncode != 0:
        raise ABError(f"git {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def check_python(python: str) -> str:
    """The interpreter's path if it can import what the suite needs, else ABError naming it."""
    exe = shutil.which(python)
    if exe is None:
        raise ABError(f"--base-python {python}: cannot run the suite there (no such executable)")
    probe = subprocess.run([exe, "-c", "import torch, hydra, pandas, pyarrow; print(torch.__version__)"],
                           text=True, capture_output=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["not found"])[-1]
        raise ABError(f"--base-python {python}: cannot run the suite there ({last}); install the "
                      "suite's requirements into that environment (pip install -e . and its torch)")
    return exe


def run_side(python: str, code: Path, preset: str, store: Path, log: Path) -> int:
    """One run of `preset` by `python` on the code in `code`, into `store`; returns its exit code."""
    env = dict(os.environ, PYTHONPATH=str(code))
    store.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"$ {python} -m bench.suite {preset} results_dir={store}  (in {code})\n")
        fh.flush()
        return subprocess.call([python, "-m", "bench.suite", preset, f"results_dir={store}",
                                "progress=false"], cwd=code, env=env, stdout=fh, stderr=subprocess.STDOUT)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--base", help="git ref of the base commit (e.g. origin/main, HEAD~1)")
    side.add_argument("--base-python", help="another interpreter running the same code")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the timed preset (>= 3)")
    parser.add_argument("--preset", default="ci", help="preset of round 1 (all checks)")
    parser.add_argument("--timed-preset", default="ci_throughput", help="preset of the later rounds")
    parser.add_argument("--out", default="results/ci/ab", help="where the stores go (emptied first)")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: an interval needs several paired rounds")
    try:
        return run(args)
    except ABError as exc:
        print(f"bench.ab: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    head_py = sys.executable
    worktree = None
    if args.base:
        sha = git("rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}")
        worktree = Path(tempfile.mkdtemp(prefix="rnn-bench-base-"))
        git("worktree", "add", "--detach", "--force", str(worktree), sha)
        # As asv does, the benchmark definitions are head's: both sides measure the same points
        # the same way, and a change to the presets is not mistaken for a change to the code.
        shutil.rmtree(worktree / "conf" / "experiment", ignore_errors=True)
        shutil.copytree(ROOT / "conf" / "experiment", worktree / "conf" / "experiment")
        base_py, base_code, base_label = head_py, worktree, f"{args.base} ({sha[:12]})"
    else:
        base_py, base_code = check_python(args.base_python), ROOT
        base_label = f"{base_py} (same code)"
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        sides = {"base": (base_py, base_code), "head": (head_py, ROOT)}
        meta = {"base": base_label, "head": f"working tree ({git('rev-parse', '--short=12', 'HEAD')})",
                "base_python": base_py, "head_python": head_py, "rounds": args.rounds,
                "preset": args.preset, "timed_preset": args.timed_preset, "runs": []}
        log = out / "ab.log"
        start = time.perf_counter()
        for k in range(1, args.rounds + 1):
            preset = args.preset if k == 1 else args.timed_preset
            order = ["base", "head"] if k % 2 else ["head", "base"]
            for name in order:
                py, code = sides[name]
                t0 = time.perf_counter()
                rc = run_side(py, code, preset, out / name / f"r{k}", log)
                seconds = time.perf_counter() - t0
                meta["runs"].append({"round": k, "side": name, "preset": preset, "rc": rc, "seconds": round(seconds, 1)})
                print(f"bench.ab: round {k}/{args.rounds} {name:4s} {preset}: exit {rc}, {seconds:.0f} s",
                      file=sys.stderr, flush=True)
                if rc == 2:  # refused before any work (unknown preset, bad config): nothing to compare
                    raise ABError(f"the {name} side refused to run {preset} (exit 2); see {log}")
        meta["seconds"] = round(time.perf_counter() - start, 1)
        (out / "ab.json").write_text(json.dumps(meta, indent=2))
        print(f"bench.ab: {args.rounds} rounds in {meta['seconds']:.0f} s; stores in {out}", file=sys.stderr)
        return 0
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
