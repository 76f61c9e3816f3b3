"""`python -m bench [hydra overrides]`: measure one point, or a sweep with `-m`.

The task function lives here, not in __main__, so that parallel and cluster launchers pickle
it by reference."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bench.config import ConfigError, register_configs


CONF = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="config")
def app(cfg: DictConfig) -> str:
    from bench.run import run_point

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


def main() -> None:
    register_configs()
    app()
