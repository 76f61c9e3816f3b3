"""`python -m bench.run.suite NAME [overrides]`: run a preset from conf/experiment/.

A preset that lists `suite: [a, b, ...]` runs each named preset in turn, each as its own
`python -m bench -m experiment=...` (a fresh Hydra sweep); any other preset runs as itself.
A preset with `rounds: R` runs its points in R interleaved rounds in one process
(bench/run/rounds.py). A preset with a `select:` block is a nested-selection stage: its tuning presets (`select.tune`)
run first (stored points are skipped), then `python -m analysis.select` chooses each group's
configuration by `select.rule` on those tuning seeds, and every chosen configuration runs at the
reported seeds (`select.seeds`); with `select.unsolved: true` and `select.overrides`, only the chosen
configurations with an unsolved reported seed, again, with those overrides (a budget continued).
The exit code is the worst of the sweeps'.
"""
from __future__ import annotations

import difflib
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import yaml

EXPERIMENTS = Path(__file__).resolve().parents[2] / "conf" / "experiment"
# overrides that say how to run, not what: passed to the sweeps but not to the selection's hashes
HOW = ("results_dir=", "force=", "progress=", "hydra/", "hydra.")


def load(name: str) -> dict:
    path = EXPERIMENTS / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise SystemExit(f"bench.run.suite: no preset {name!r} in conf/experiment/{hint} "
                         "(`python -m bench --help` lists them)")
    return yaml.safe_load(path.read_text()) or {}


def members(name: str, whole_rounds: bool = True) -> List[str]:
    """The presets a name runs, in order: a suite's members (recursively), a selection stage's
    tuning presets then the stage itself, or the preset alone. A preset with `rounds` is one
    member (measured as a whole, round by round: bench/run/rounds.py) unless `whole_rounds` is
    false (its points: the members of its suite)."""
    preset = load(name)
    if preset.get("rounds") and whole_rounds:
        return [name]
    if preset.get("suite"):
        return [m for s in preset["suite"] for m in members(s, whole_rounds)]
    if preset.get("select"):
        return [m for s in preset["select"].get("tune", []) for m in members(s, whole_rounds)] + [name]
    return [name]


def points(preset: str) -> List[List[str]]:
    """The override lists of every point of `preset` (a suite: of each member), as Hydra's
    sweeper would expand them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # late: Hydra's parser is heavy

    from bench.cells.registry import sweep_value

    out = []
    for member in members(preset, whole_rounds=False):
        if load(member).get("select"):  # a selection stage has no points of its own to expand
            continue
        params = (yaml.safe_load((EXPERIMENTS / f"{member}.yaml").read_text()) or {}).get("hydra", {}) \
            .get("sweeper", {}).get("params", {}) or {}
        parsed = OverridesParser.create().parse_overrides([f"{k}={sweep_value(k, v)}" for k, v in params.items()])
        axes = [[f"{o.key_or_group}={v}" for v in (o.sweep_string_iterator() if o.is_sweep_override()
                                                   else [o.get_value_element_as_str()])] for o in parsed]
        out += [[f"experiment={member}", *combo] for combo in itertools.product(*axes)]
    return out


def call(cmd: List[str]) -> int:
    """Run a child to its end. On Ctrl-C the child (same process group) got the SIGINT too: wait
    for it to say how many of its points are stored (subprocess.call would kill it after 0.25 s),
    then end as interrupted."""
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
        raise


def sweep(args: List[str]) -> int:
    return call([sys.executable, "-m", "bench", "-m", *args])


def run_selection(name: str, argv: List[str]) -> int:
    """Choose on the tuning seeds, then run every chosen configuration at the reported seeds."""
    select = load(name)["select"]
    seeds = [int(s) for s in select["seeds"]]
    store = next((a.split("=", 1)[1] for a in argv if a.startswith("results_dir=")), "results/store")
    what = [a for a in argv if not a.startswith(HOW)]
    # `unsolved: true`: only the chosen configurations with a reported seed unsolved under the chosen
    # budget, at those seeds only, run again with `overrides` (e.g. a longer measure.steps: training is seeded, so the
    # longer run is the reported run continued; analysis/select.py::continued_runs)
    unsolved = ["--unsolved", *map(str, seeds)] if select.get("unsolved") else []
    out = subprocess.run([sys.executable, "-m", "analysis.select", store, "--rule", select["rule"],
                          "--from", *select["tune"], *unsolved, "--", *what], text=True, stdout=subprocess.PIPE)
    if out.returncode != 0:
        return out.returncode
    chosen = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    print(f"bench.run.suite: {name}: {len(chosen)} configurations chosen by rule {select['rule']}"
          + ("; each at its unsolved seeds" if unsolved else f"; each at seeds {seeds[0]}..{seeds[-1]}"),
          file=sys.stderr, flush=True)
    worst = 0
    for overrides in chosen:  # with `unsolved`, the choice names its own seeds (its unsolved ones)
        own = [o for o in overrides if o.startswith("seed=")] or [f"seed={','.join(map(str, seeds))}"]
        overrides = [o for o in overrides if not o.startswith("seed=")]
        rc = sweep([*overrides, *select.get("overrides", []), *own, *argv])
        if rc == 2:
            return rc
        worst = max(worst, rc)
    return worst


def main(argv: List[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    worst, start, presets = 0, time.monotonic(), members(argv[0])
    for preset in presets:
        print(f"bench.run.suite: experiment={preset}", file=sys.stderr, flush=True)
        if load(preset).get("select"):
            rc = run_selection(preset, argv[1:])
        elif load(preset).get("rounds"):  # timed side by side: every point once a round, in one process
            rc = call([sys.executable, "-m", "bench.run.rounds", preset, "--rounds", str(load(preset)["rounds"]),
                       *argv[1:]])
        else:
            rc = sweep([f"experiment={preset}", *argv[1:]])
        if rc == 2:  # refused before any work: the remaining presets would be refused too
            return rc
        worst = max(worst, rc)
    print(f"bench.run.suite: {argv[0]}: {len(presets)} presets in {(time.monotonic() - start) / 60:.1f} min, "
          f"exit {worst}", file=sys.stderr)
    return worst


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # the sweep it ran has said how many of its points are stored
        print("bench.run.suite: interrupted; the same command resumes (stored points are skipped)",
              file=sys.stderr)
        sys.exit(130)
