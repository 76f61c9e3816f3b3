"""Hydra's basic sweeper, plus: every point is validated, and its store probed for writing,
before any is measured; a 0-point sweep is an error; a progress bar runs over the sweep; a point
that fails (or whose record cannot be written) does not stop the others, and the sweep ends
naming every failed point, where the records are, and the exit code. Ctrl-C ends it with the
count of points stored (the same command resumes).

Under a launcher that runs points in other processes (joblib, submitit, SLURM) the bar counts
points as their records land in the store; a failed point or a cluster job that did not complete
is named, with where its logs are, and a re-run resumes (stored points are skipped).

(No `from __future__ import annotations` here: Hydra imports plugins outside sys.modules,
where dataclasses cannot resolve string annotations.)"""

import _thread
import glob
import os
import signal
import subprocess
import sys
import threading
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from bench.config.errors import ConfigError, one_line
from bench.run import progress


class BenchSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from bench.measures.registry import MEASURES  # late: keeps torch out of Hydra's plugin scan
        from bench.run import interrupt
        from bench.run.runner import resolve
        from bench.run.store import point_path

        loader = self.hydra_context.config_loader
        measures = set()
        self.paths = []  # where each point's record will land, in batch order
        for overrides in batch:
            try:
                cfg = loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
                r = resolve(cfg)
                measures.add(r.cfg.measure.name)
                self.paths.append(str(point_path(r.cfg.results_dir, r.chash)))
            except Exception as exc:
                if interrupt.fired():  # Ctrl-C while Hydra composed the point (bench/run/interrupt.py)
                    raise KeyboardInterrupt from exc
                if not isinstance(exc, (ConfigError, HydraException, OmegaConfBaseException)):
                    raise
                problem = str(exc) if isinstance(exc, ConfigError) else one_line(exc)
                print(f"bench: error: {problem} (sweep point: {' '.join(overrides) or 'defaults'}); "
                      "nothing was run", file=sys.stderr)
                sys.exit(2)
        self.check_launcher({m for m in measures if MEASURES[m].timed}, measures)
        self.check_stores()
        if self.config.get("progress", True):
            progress.start(len(batch), desc=f"sweep {self.config.measure.name}")
        if not self.in_process():
            self.watch()

    def check_stores(self) -> None:
        """Every store the sweep writes to takes a file (bench/run/store.py write_problem), checked
        before any point is measured."""
        from bench.run.store import write_problem

        for folder in sorted({os.path.dirname(p) for p in self.paths}):
            problem = write_problem(folder)
            if problem:
                print(f"bench: error: {problem}; nothing was run", file=sys.stderr)
                sys.exit(2)

    def in_process(self) -> bool:
        """Whether the launcher runs points in this process (then run_point moves the bar)."""
        return "BasicLauncher" in str(self.config.hydra.launcher.get("_target_", ""))

    def watch(self) -> None:
        """Move the bar as records land: a point's file appears atomically (bench/run/store.py).
        On SLURM, also notice jobs that left the queue without a record (cancelled, timed out,
        node lost): without accounting (sacct) submitit cannot see that and would wait forever."""
        self._stop, self.jobs_gone = threading.Event(), False
        paths, name = list(self.paths), self.slurm_job_name()
        if name is not None and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # started with SIGINT ignored (nohup, a background job of a script): interrupt_main
            # would do nothing and the sweep would wait forever; the key stays ignored
            signal.signal(signal.SIGINT, self.interrupt_if_jobs_gone)

        def loop() -> None:
            seen, empty_polls, tick = False, 0, 0
            while not self._stop.wait(0.5):
                landed = sum(os.path.exists(p) for p in paths)
                progress.set_done(landed)
                tick += 1
                if name is None or tick % 10:
                    continue
                queued = queued_jobs(name)
                if queued is None:        # squeue did not answer: say nothing
                    continue
                seen = seen or bool(queued)
                empty_polls = empty_polls + 1 if seen and not queued and landed < len(paths) else 0
                if empty_polls >= 3:      # 15 s with no job of this sweep queued or running
                    self.jobs_gone = True
                    _thread.interrupt_main()
                    return
        self._watcher = threading.Thread(target=loop, daemon=True)
        self._watcher.start()

    def interrupt_if_jobs_gone(self, signum, frame) -> None:
        if self.jobs_gone:
            raise KeyboardInterrupt

    def slurm_job_name(self) -> Optional[str]:
        launcher = self.config.hydra.launcher
        if "Slurm" not in str(launcher.get("_target_", "")):
            return None
        try:
            return str(launcher.name)
        except Exception:  # an unresolvable name: no queue watch, the bar still moves
            return None

    def stop_watching(self) -> None:
        if getattr(self, "_watcher", None) is not None and self._watcher is not threading.current_thread():
            self._stop.set()
            self._watcher.join()
            progress.set_done(sum(os.path.exists(p) for p in self.paths))
            self._watcher = None

    def check_launcher(self, timed: set, measures: set) -> None:
        """Timed measures are refused under launchers that run points side by side on one
        machine (their clocks would measure each other); a cluster launcher is fine. Judged on
        every point's measure, so a sweep over `measure=...` cannot slip a timed one through."""
        target = str(self.config.hydra.launcher.get("_target_", ""))
        local_parallel = "Joblib" in target or "LocalLauncher" in target
        if local_parallel and timed:
            print(f"bench: error: measure={', '.join(sorted(timed))} is timed and {target.rsplit('.', 1)[-1]} runs "
                  "points in parallel on this machine, which distorts the timings; use the basic "
                  "launcher (drop hydra/launcher=...) or a cluster launcher; nothing was run",
                  file=sys.stderr)
            sys.exit(2)
        if local_parallel and "long_range" in measures:
            print("bench: warning: long_range runs in parallel: its elapsed_s (seconds to solve) "
                  "will be inflated; losses and steps are unaffected", file=sys.stderr)

    def _parse_config(self) -> List[str]:
        """The preset's sweep params, `model.cell: registered` spelt out (bench/cells/registry.py)."""
        from bench.cells.registry import sweep_value  # late: keeps the plugin scan light
        return [f"{k}={sweep_value(k, v)}" for k, v in self.params.items()]

    def sweep(self, arguments: List[str]) -> Any:
        """BasicSweeper.sweep, but every point is validated before the first batch is launched,
        a failed job does not end the sweep, and nothing is written to the sweep folder."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(self._parse_config() + list(arguments)),
                                       self.max_batch_size)
        points = [p for batch in batches for p in batch]
        if not points:
            print(f"bench: error: the sweep has no points ({' '.join(arguments) or 'no overrides'}: an "
                  "empty range or list); nothing was run", file=sys.stderr)
            sys.exit(2)
        try:
            self.validate_batch_is_legal(points)
        except KeyboardInterrupt:
            print("bench: interrupted while the sweep's points were checked; nothing was run", file=sys.stderr)
            sys.exit(130)
        returns: List[Sequence[JobReturn]] = []
        try:
            for batch in batches:
                returns.append(self.launcher.launch(batch, initial_job_idx=sum(map(len, returns))))
        except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C, or a cluster job died
            self.stopped(exc)
        finally:
            self.remove_empty_folders()
        self.stop_watching()
        progress.close()
        return self.summarise(returns)

    def stopped(self, exc: BaseException) -> None:
        """A sweep that cannot go on: how many points are stored, and that the command resumes."""
        self.stop_watching()
        progress.close()
        from bench.run import interrupt  # late: keeps the plugin scan light
        if interrupt.is_interrupt(exc) and not getattr(self, "jobs_gone", False):
            print(f"bench: interrupted: {self.stored()} of {len(self.paths)} points are stored; the "
                  "same command resumes (stored points are skipped, nothing is measured twice)", file=sys.stderr)
            sys.exit(130)
        if self.in_process():
            raise exc
        if interrupt.is_interrupt(exc):
            interrupt.clear()  # the queue watch's interrupt: the jobs are gone, no key was pressed
            exc = RuntimeError("every job of the sweep left the queue with points unstored "
                               "(cancelled, timed out or lost)")
        self.job_died(exc)
        sys.exit(1)

    def summarise(self, returns: List[Sequence[JobReturn]]) -> Any:
        """The counts, every point that failed or was not stored, where the records are; exit 1
        when any point failed."""
        jobs = [r for batch in returns for r in batch if isinstance(r, JobReturn)]
        statuses = [outcome_status(r) for r in jobs]
        failed = [r for r, s in zip(jobs, statuses) if s in ("failed", "oom", "unstored", "error")]
        print(f"bench: {len(statuses)} points: {statuses.count('ok')} measured, "
              f"{statuses.count('skipped')} already stored, {statuses.count('overflow')} overflow, "
              f"{len(failed)} failed", file=sys.stderr)
        for job in failed:
            print(f"bench: failed: {' '.join(job.overrides) or 'defaults'}{self.why(job)}", file=sys.stderr)
        folders = sorted({os.path.dirname(p) for p in self.paths})
        print(f"bench: records: {', '.join(folders)} ({self.stored()} of {len(self.paths)} points stored)",
              file=sys.stderr)
        if failed:
            sys.exit(1)
        return returns

    def why(self, job: JobReturn) -> str:
        """What became of a failed point: not stored (the path and OS error), the job's own
        exception, or what its record says (with the SLURM job's logs)."""
        if job.status == JobStatus.FAILED:
            exc = job._return_value
            return f" ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''})"
        problem = getattr(job.return_value, "problem", "")
        return f" (not stored: {problem})" if problem else self.logs_of(job)

    def stored(self) -> int:
        return sum(os.path.isfile(p) for p in getattr(self, "paths", []))

    def remove_empty_folders(self) -> None:
        """Hydra makes its sweep folder (under results_dir, conf/config.yaml); the basic launcher
        leaves it empty, and an empty folder is not kept (a cluster launcher's logs are)."""
        try:
            os.rmdir(str(self.config.hydra.sweep.dir))
        except OSError:
            pass

    def submitit_folder(self) -> Optional[str]:
        folder = self.config.hydra.launcher.get("submitit_folder")
        return str(folder).replace("%j", "*") if folder else None

    def logs_of(self, job: JobReturn) -> str:
        """Where a failed point's job logs are: its record names the SLURM job (bench.records)."""
        folder = self.submitit_folder()
        if not folder:
            return ""
        import pandas as pd  # late: keeps the plugin scan light

        from bench.run.runner import resolve
        from bench.run.store import point_path
        try:
            path = point_path(job.cfg.results_dir, resolve(job.cfg).chash)
            row = pd.read_parquet(path, columns=["slurm_job_id", "error"]).iloc[0]
        except Exception:  # the logs are a convenience; the record says the error
            return f" (logs under {folder})"
        logs = sorted(glob.glob(os.path.join(folder, f"{row.slurm_job_id}*_log.*"))) if row.slurm_job_id else []
        where = ", ".join(logs) if logs else f"under {folder}"
        job_id = f"job {row.slurm_job_id}: " if row.slurm_job_id else ""
        return f" ({job_id}{row.error}; logs: {where})"

    def job_died(self, exc: BaseException) -> None:
        stored = self.stored()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"bench: error: a job did not complete ({type(exc).__name__}: {first[:400]})", file=sys.stderr)
        if self.submitit_folder():
            print(f"bench: job logs: {self.submitit_folder()}", file=sys.stderr)
        print(f"bench: {stored} of {len(self.paths)} points are stored; the same command resumes "
              "(stored points are skipped, nothing is measured twice)", file=sys.stderr)


def outcome_status(job: JobReturn) -> str:
    """A job's status: its Outcome's (bench/run/runner.py), or `error` when the job raised."""
    if job.status == JobStatus.FAILED:
        return "error"
    value = job.return_value
    return getattr(value, "status", value)


def queued_jobs(name: str) -> Optional[List[str]]:
    """This user's SLURM jobs named `name`, pending or running; None when squeue cannot say."""
    try:
        out = subprocess.run(["squeue", "-h", "--me", "-n", name, "-o", "%i"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 else None
