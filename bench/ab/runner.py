"""`python -m bench.ab --base REF | --base-python PY`: measure head against base, interleaved.

Head is the working tree under this interpreter. Base is another commit (checked out into a
temporary git worktree, run under this interpreter) or the same code under another interpreter
(another torch build, another oneDNN). Both sides run head's presets (conf/experiment/ is copied
into the base worktree, as asv runs the current benchmarks against every commit).

Each side is one long-lived process of its own (bench/ab/worker.py running that side's code),
and the two measure **point by point, alternately**: point 1 base then head, point 2 head then
base, and so on, the order flipping again every round. A co-tenant's burst lasts seconds; two
measurements of a point a second apart share it, two runs of a whole preset half a minute apart
do not. Round 1 measures every point of the full preset (`ci`: the exact float64 gradient checks
and the timings); every further round the timed preset's points only. The stores land in
OUT/{base,head}/r<k>/ with OUT/ab.json describing the run; `python -m analysis.compare --ab OUT`
judges them (docs/architecture.md, "Regression tracking").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

from bench.run.suite import points

ROOT = Path(__file__).resolve().parents[2]


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


class Side:
    """A worker process measuring points with one side's code (bench/ab/worker.py)."""

    def __init__(self, name: str, python: str, code: Path, log: Path) -> None:
        self.name, self.log = name, open(log, "a")
        bootstrap = ("import runpy, sys; sys.argv = ['ab_worker', sys.argv[1]]; "
                     f"runpy.run_path({str(ROOT / 'bench' / 'ab' / 'worker.py')!r}, run_name='__main__')")
        self.proc = subprocess.Popen([python, "-c", bootstrap, str(code)], cwd=code, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(code)), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log)

    def measure(self, overrides: List[str]) -> str:
        self.log.write(f"[{self.name}] {' '.join(overrides)}\n")
        self.log.flush()
        self.proc.stdin.write(json.dumps({"overrides": overrides}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise ABError(f"the {self.name} worker died (exit {self.proc.wait()}); see {self.log.name}")
        answer = json.loads(line)
        if answer["status"] == "refused":  # this side's code cannot compose the point (a new cell, key)
            self.log.write(f"[{self.name}] refused: {answer['error']}\n")
        return answer["status"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


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
    # A CI job's timeout sends SIGTERM: exit through the `finally` that removes the worktree and
    # stops the workers, as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except ABError as exc:
        print(f"bench.ab: {exc}", file=sys.stderr)
        return 2


def base_worktree(ref: str, prefix: str, head_presets: bool = False) -> Tuple[Path, str]:
    """(folder, sha): the commit `ref` checked out in a temporary git worktree (the caller
    removes it); with `head_presets`, head's conf/experiment/ replaces the base's."""
    sha = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    worktree = Path(tempfile.mkdtemp(prefix=prefix))
    git("worktree", "add", "--detach", "--force", str(worktree), sha)
    if head_presets:
        shutil.rmtree(worktree / "conf" / "experiment", ignore_errors=True)
        shutil.copytree(ROOT / "conf" / "experiment", worktree / "conf" / "experiment")
    return worktree, sha


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    head_py = sys.executable
    worktree = None
    if args.base:
        # As asv does, the benchmark definitions are head's: both sides measure the same points
        # the same way, and a change to the presets is not mistaken for a change to the code.
        worktree, sha = base_worktree(args.base, "rnn-bench-base-", head_presets=True)
        base_py, base_code, base_label = head_py, worktree, f"{args.base} ({sha[:12]})"
    else:
        base_py, base_code = check_python(args.base_python), ROOT
        base_label = f"{base_py} (same code)"
    sides = {}
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        full, timed = points(args.preset), points(args.timed_preset)
        meta = {"base": base_label, "head": f"working tree ({git('rev-parse', '--short=12', 'HEAD')})",
                "base_python": base_py, "head_python": head_py, "rounds": args.rounds,
                "preset": args.preset, "timed_preset": args.timed_preset, "interleave": "point",
                "rounds_seconds": []}
        log = out / "ab.log"
        sides = {"base": Side("base", base_py, base_code, log), "head": Side("head", head_py, ROOT, log)}
        start, refused = time.perf_counter(), {}
        for k in range(1, args.rounds + 1):
            t0, failed = time.perf_counter(), 0
            batch = [p for p in (full if k == 1 else timed) if tuple(p) not in refused]
            for i, overrides in enumerate(batch):
                order = ["base", "head"] if (i + k) % 2 else ["head", "base"]
                for name in order:
                    status = sides[name].measure([*overrides, f"results_dir={out / name / f'r{k}'}", "force=true"])
                    if status == "refused":  # e.g. a cell added since base: head's point is new, not judged
                        refused[tuple(overrides)] = name
                    failed += status not in ("ok", "skipped", "refused")
            seconds = time.perf_counter() - t0
            meta["rounds_seconds"].append(round(seconds, 1))
            print(f"bench.ab: round {k}/{args.rounds}: {len(batch)} points on each side, alternating; "
                  f"{failed} not ok; {seconds:.0f} s", file=sys.stderr, flush=True)
            if refused and len(refused) == len(full):
                raise ABError(f"every point was refused (see {log}): the sides cannot run the same preset")
        meta["refused"] = [{"side": side, "point": " ".join(p)} for p, side in refused.items()]
        meta["seconds"] = round(time.perf_counter() - start, 1)
        (out / "ab.json").write_text(json.dumps(meta, indent=2))
        print(f"bench.ab: {args.rounds} rounds in {meta['seconds']:.0f} s; stores in {out}", file=sys.stderr)
        return 0
    finally:
        for side in sides.values():
            side.close()
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
