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
from omegaconf import DictConfig

from bench.config.errors import ConfigError, one_line
from bench.config.schema import register_configs

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def app(cfg: DictConfig) -> str:
    from bench.run.runner import run_point

    hc = HydraConfig.get()
    label = " ".join(o for o in hc.overrides.task
                     if not o.startswith(("results_dir=", "force=", "progress="))) or "defaults"
    try:
        status = run_point(cfg, label=label)
    except ConfigError as exc:
        print(f"bench: error: {exc}; nothing was run", file=sys.stderr)
        sys.exit(2)
    if hc.mode == RunMode.RUN:
        print(f"bench: {label}: {status}", file=sys.stderr)
        if status in ("failed", "oom"):
            sys.exit(1)
    return status


# Hydra's command-line flags; with any but -m/--multirun the pre-flight leaves Hydra alone.
HYDRA_FLAGS = ("--", "-c", "-p", "-i", "-cp", "-cn", "-cd", "-h")


def preflight(argv: List[str]) -> Optional[str]:
    """Compose the non-sweep overrides once before Hydra starts, so that an unknown key, a
    wrong type or a value outside an Enum is one line naming the key, not Hydra's page."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(a.startswith(HYDRA_FLAGS) and a not in ("-m", "--multirun") for a in argv):
        return None
    args = [a for a in argv if a not in ("-m", "--multirun")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
        plain = [o.input_line for o in parsed
                 if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            compose(config_name="config", overrides=plain)
    except (HydraException, OmegaConfBaseException) as exc:
        return one_line(exc)
    finally:
        GlobalHydra.instance().clear()
    return None


def main() -> None:
    register_configs()
    problem = preflight(sys.argv[1:])
    if problem:
        print(f"bench: error: {problem}; nothing was run", file=sys.stderr)
        sys.exit(2)
    app()
