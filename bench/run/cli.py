"""`python -m bench [hydra overrides]`: measure one point, or a sweep with `-m`.

The task function lives here, not in __main__, so that parallel and cluster launchers pickle
it by reference."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from bench.config.errors import ConfigError, one_line
from bench.config.schema import register_configs
from bench.run import interrupt

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def app(cfg: DictConfig):
    """One job: a single point (RUN: says where its record is, exits 1 when it failed) or one
    point of a sweep (returns its Outcome to the sweeper, which names every failure)."""
    from bench.run.runner import measure_point, resolve
    from bench.run.store import check_writable

    hc = HydraConfig.get()
    label = " ".join(o for o in hc.overrides.task
                     if not o.startswith(("results_dir=", "force=", "progress=", "max_memory_gb="))) or "defaults"
    single = hc.mode == RunMode.RUN
    try:
        if single:  # the sweeper checked a sweep's points and folder before any was measured
            check_writable(resolve(cfg).cfg.results_dir)
        outcome = measure_point(cfg, label=label)
    except ConfigError as exc:
        print(f"bench: error: {exc}; nothing was run", file=sys.stderr)
        sys.exit(2)
    except (Exception, KeyboardInterrupt) as exc:  # or a clean-up that failed after Ctrl-C
        if not interrupt.is_interrupt(exc):
            raise
        if not single:  # the sweeper counts what is stored
            raise KeyboardInterrupt from exc
        print("bench: interrupted: the point was not stored; the same command measures it", file=sys.stderr)
        sys.exit(130)
    if single:
        if outcome.status == "unstored":  # measure_point has said so, in one line
            sys.exit(1)
        print(f"bench: {label}: {outcome.status}; record: {outcome.path}", file=sys.stderr)
        if outcome.status in ("failed", "oom"):
            sys.exit(1)
    return outcome


# Hydra's command-line flags; with any but -m/--multirun the pre-flight leaves Hydra alone.
HYDRA_FLAGS = ("--", "-c", "-p", "-i", "-cp", "-cn", "-cd", "-h")


def preflight(argv: List[str]) -> Optional[str]:
    """Compose the non-sweep overrides once before Hydra starts, so that an unknown key (also one
    that `+` adds), a wrong type, a value outside an Enum, a missing group option or preset, or
    a sweep preset without -m, is one line naming the key, not Hydra's page."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.config.keys import unknown_key

    shown = [a for a in argv if a in ("-c", "--cfg", "-i", "--info")]
    if shown and {"-m", "--multirun"} & set(argv):  # Hydra would end in a ValueError's traceback
        return f"{shown[0]} shows one point's configuration: drop -m (and give one value per key)"
    if any(a.startswith(HYDRA_FLAGS) and a not in ("-m", "--multirun") for a in argv):
        return None
    args = [a for a in argv if a not in ("-m", "--multirun")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
        plain = [o.input_line for o in parsed
                 if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose(config_name="config", overrides=plain, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        return one_line(exc)
    finally:
        GlobalHydra.instance().clear()
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    if swept and not {"-m", "--multirun"} & set(argv):
        return f"{swept[0]} is a sweep: run it with `python -m bench -m {' '.join(argv)}`"
    with open_dict(cfg):
        hydra_node = cfg.pop("hydra")
    return unknown_key(cfg) or run_mode_problem(cfg, hydra_node, argv)


def run_mode_problem(cfg: DictConfig, hydra_node: DictConfig, argv: List[str]) -> Optional[str]:
    """A preset that is a sweep, given without -m, would run one default point and say ok: the
    command that runs it instead. A preset that is a suite: the suite runner."""
    name = next((a.split("=", 1)[1] for a in argv if a.startswith("experiment=")), "NAME")
    if cfg.get("suite"):
        return (f"experiment={name} is a suite of {', '.join(cfg.suite)}: run it with "
                f"`python -m bench.run.suite {name}` or `make bench EXP={name}`")
    params = hydra_node.sweeper.get("params") or {}
    if params and not {"-m", "--multirun"} & set(argv):
        swept = ", ".join(str(k) for k in params)
        return (f"experiment={name} is a sweep (over {swept}): run it with "
                f"`python -m bench -m {' '.join(argv)}` or `make bench EXP={name}`")
    return None


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        from bench.run.help import main as help_main
        help_main()
    register_configs()
    problem = preflight(sys.argv[1:])
    if problem:
        print(f"bench: error: {problem}; nothing was run", file=sys.stderr)
        sys.exit(2)
    interrupt.install()
    try:
        app()
    except SystemExit as exc:  # Hydra reports an error that Ctrl-C caused while it composed the point
        if interrupt.fired() and exc.code not in (None, 0, 130):
            print("bench: interrupted: the same command resumes (stored points are skipped)", file=sys.stderr)
            sys.exit(130)
        raise
