"""Hydra's basic sweeper, plus: every point is validated before any is measured, a progress
bar runs over the sweep, and the sweep ends with a count of failed points and the exit code.

(No `from __future__ import annotations` here: Hydra imports plugins outside sys.modules,
where dataclasses cannot resolve string annotations.)"""

import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from bench import progress
from bench.config import ConfigError


@dataclass
class BenchSweeperConf:
    _target_: str = "hydra_plugins.rnn_bench.sweeper.BenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


class BenchSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from bench.cli import one_line  # late: keeps torch out of Hydra's plugin scan
        from bench.run import resolve

        loader = self.hydra_context.config_loader
        measures = set()
        for overrides in batch:
            try:
                cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
                measures.add(resolve(cfg).cfg.measure.name)
            except (ConfigError, HydraException, OmegaConfBaseException) as exc:
                problem = str(exc) if isinstance(exc, ConfigError) else one_line(exc)
                print(f"bench: error: {problem} (sweep point: {' '.join(overrides) or 'defaults'}); "
                      "nothing was run", file=sys.stderr)
                sys.exit(2)
        self.check_launcher(measures)
        if self.config.get("progress", True):
            progress.start(len(batch), desc=f"sweep {self.config.measure.name}")

    def check_launcher(self, measures: set) -> None:
        """Timed measures are refused under launchers that run points side by side on one
        machine (their clocks would measure each other); a cluster launcher is fine. Judged on
        every point's measure, so a sweep over `measure=...` cannot slip a timed one through."""
        target = str(self.config.hydra.launcher.get("_target_", ""))
        local_parallel = "Joblib" in target or "LocalLauncher" in target
        if local_parallel and "throughput" in measures:
            print(f"bench: error: measure=throughput is timed and {target.rsplit('.', 1)[-1]} runs "
                  "points in parallel on this machine, which distorts the timings; use the basic "
                  "launcher (drop hydra/launcher=...) or a cluster launcher; nothing was run",
                  file=sys.stderr)
            sys.exit(2)
        if local_parallel and "long_range" in measures:
            print("bench: warning: long_range runs in parallel: its elapsed_s (seconds to solve) "
                  "will be inflated; losses and steps are unaffected", file=sys.stderr)

    def sweep(self, arguments: List[str]) -> Any:
        returns = super().sweep(arguments)
        progress.close()
        statuses = [r.return_value for batch in returns for r in batch
                    if isinstance(r, JobReturn)]
        failed = [s for s in statuses if s in ("failed", "oom")]
        overflow = statuses.count("overflow")
        print(f"bench: {len(statuses)} points: {statuses.count('ok')} measured, "
              f"{statuses.count('skipped')} already stored, {overflow} overflow, "
              f"{len(failed)} failed", file=sys.stderr)
        if failed:
            sys.exit(1)
        return returns
