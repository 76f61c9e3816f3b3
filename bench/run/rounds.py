"""`python -m bench.run.rounds PRESET [--rounds R] [overrides]`: a timed preset measured in R
interleaved rounds in one process, so that every ratio of two of its timings is taken from the two
sides timed alternately (docs/architecture.md, "Ratios timed side by side").

Round r measures every point of the preset once, with `measure.round=r` (a key of the point: each
round is its own record); torch stays loaded between points. Within a round the points that a
ratio compares (the same shape, differing only in a SIDES key: cell, path, backend, threads, ...)
run together, one group after the other, so that the two sides of every ratio are timed within one
group (seconds apart at short lengths, a few minutes within the largest group, not the whole
round); the order is reversed every other round so that no side always runs first. A machine
state that outlasts a group differs between rounds, and the analysis' interval over rounds
(analysis/reduce/ratios.py) covers it. A preset with `rounds: R` runs this way under
`python -m bench.run.suite` too. Untimed points (not MeasureSpec.timed) are measured once,
in round 1. Before a group's first round in a process, its timed points run once unstored (a
warm-up round, into a temporary folder), so that what a process pays the first time it meets a
shape is not in round 1. It evened out the crossover's T=1024 group but not all of T=4096 (the
closing note of issue 32): the interval over rounds, not the warm-up, is what covers round 1.
Stored rounds are skipped, so an interrupted run resumes; a group it stopped inside is measured
whole again, so that no ratio divides sides timed in two runs.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import List, Optional, Tuple

# The keys that tell the two sides of a published ratio apart (LSTM/RNN, a path against the fused
# LSTM, native/oneDNN, bidirectional/unidirectional, kept/flushed, 1/2 threads, TF32, bfloat16):
# points equal in every other key of their resolved configuration are one group, measured
# together (docs/architecture.md, "Ratios timed side by side").
SIDES = frozenset({"cell", "path", "scan", "chunk", "forget_gate", "forget_bias", "nonlinearity", "init", "gain",
                   "measure_backend", "measure_flush_denormal", "measure_tf32", "bidirectional",
                   "threads_requested", "dtype", "measure_round"})


def shape_groups(keyed: List[Tuple[List[str], dict]]) -> List[List[List[str]]]:
    """The points (overrides, resolved point) grouped by every key outside SIDES: the groups in
    the order first met, each group's points in preset order."""
    groups: dict = {}
    for overrides, point in keyed:
        shape = tuple(sorted((k, repr(v)) for k, v in point.items() if k not in SIDES))
        groups.setdefault(shape, []).append(overrides)
    return list(groups.values())


def side_by_side(keyed: List[Tuple[List[str], dict]]) -> List[List[str]]:
    """The points in measuring order: shape_groups, one group after the other."""
    return [o for g in shape_groups(keyed) for o in g]


def round_overrides(point: List[str], r: int, timed: bool) -> Optional[List[str]]:
    """The overrides of `point` in round r; None where an untimed point has nothing to do after
    round 1."""
    if not timed:
        return point if r == 1 else None
    return [*point, f"measure.round={r}"]


def run(preset: str, rounds: int, extra: List[str]) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bench.config.schema import register_configs
    from bench.measures.registry import MEASURES
    from bench.run.runner import resolve, run_point
    from bench.run.store import is_done, point_path
    from bench.run.suite import EXPERIMENTS, points

    register_configs()
    conf = str(EXPERIMENTS.parent)

    def compose_point(overrides: List[str], after: List[str] = ()):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            return compose(config_name="config", overrides=[*overrides, *extra, *after])

    # every point valid before the first is measured (a ConfigError: one line, exit 2)
    groups = shape_groups([(p, resolve(compose_point(p)).point) for p in points(preset)])
    timed = {tuple(p): MEASURES[compose_point(p).measure.name].timed for g in groups for p in g}
    failed, start, warmed = 0, time.monotonic(), set()
    scratch = tempfile.TemporaryDirectory(prefix="rnn-bench-warm-up-")
    for r in range(1, rounds + 1):
        order = groups if r % 2 else [g[::-1] for g in groups[::-1]]
        t0, done, warm = time.monotonic(), 0, 0
        for group in order:
            todo = [o for o in (round_overrides(p, r, timed[tuple(p)]) for p in group) if o is not None]
            # a group an earlier run stopped inside (Ctrl-C, a time limit) is measured whole again,
            # so that the sides of its ratios are timed together in this run
            resolved = [resolve(compose_point(o)) for o in todo]
            stored = [is_done(point_path(x.cfg.results_dir, x.chash)) for x in resolved]
            again = ["force=true"] if any(stored) and not all(stored) else []
            key = tuple(map(tuple, sorted(group)))
            if todo and not all(stored) and key not in warmed:
                warmed.add(key)
                for p in group:  # the warm-up round: measured, not stored (module docstring)
                    if timed[tuple(p)]:
                        warm += 1
                        run_point(compose_point(p, [f"results_dir={scratch.name}"]),
                                  label=" ".join(p) + " (warm-up, not stored)")
            for overrides in todo:
                status = run_point(compose_point([*overrides, *again]), label=" ".join(overrides))
                failed += status in ("failed", "oom")
                done += 1
        print(f"bench.run.rounds: {preset}: round {r}/{rounds}, {done} points"
              + (f" (and {warm} warm-up points, not stored)" if warm else "") + f", {time.monotonic() - t0:.0f} s",
              file=sys.stderr, flush=True)
    GlobalHydra.instance().clear()
    scratch.cleanup()
    print(f"bench.run.rounds: {preset}: {rounds} rounds in {(time.monotonic() - start) / 60:.1f} min, "
          f"{failed} failed", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run.rounds", description=__doc__.split("\n")[0])
    parser.add_argument("preset", help="a preset of conf/experiment/ (a suite: every member)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (>= 3: an interval needs several)")
    parser.add_argument("overrides", nargs="*", help="config overrides for every point (results_dir=...)")
    args = parser.parse_intermixed_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3: an interval over rounds needs several")
    from bench.config.errors import ConfigError
    from bench.run import interrupt
    interrupt.install()
    try:
        return run(args.preset, args.rounds, args.overrides)
    except ConfigError as exc:
        print(f"bench.run.rounds: error: {exc}; nothing was measured", file=sys.stderr)
        return 2
    except BaseException as exc:  # Ctrl-C, or a time limit's SIGINT: the point in progress is not stored
        if not interrupt.is_interrupt(exc):
            raise
        print(f"bench.run.rounds: {args.preset}: interrupted; the same command resumes (stored rounds "
              "are skipped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
