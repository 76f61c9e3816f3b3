"""One point, end to end: config -> model -> measure -> records -> store."""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Optional

import torch
from omegaconf import DictConfig, OmegaConf

from bench.cells.registry import spec
from bench.config.validate import validate, validate_on_device
from bench.measures.point import Point
from bench.measures.registry import MEASURES
from bench.run import interrupt, progress
from bench.run.device import (
    DTYPES,
    backend_context,
    check_memory,
    denormal_context,
    device_name,
    effective_backend,
    resolve_device,
    resolve_dtype,
    threads_context,
)
from bench.run.records import config_hash, point_config, provenance, slurm_cpus, to_frame
from bench.run.store import clean_orphans, is_done, os_error, point_path, write_point, write_problem
from bench.tasks.registry import TASKS


@dataclass
class Resolved:
    cfg: DictConfig  # plain values (Enums as their strings), without Hydra's node
    device: str
    dtype: str
    backend: str
    point: dict
    chash: str


def resolve(cfg: DictConfig) -> Resolved:
    """Validate and resolve a composed config; raises ConfigError before any work."""
    cfg = OmegaConf.create(plain(cfg))
    validate(cfg)
    if cfg.model.param_budget is not None:  # equal parameters: the budget decides the width
        m = cfg.model
        inp = TASKS[cfg.measure.task].inputs if cfg.measure.name == "long_range" else m.input_size
        m.hidden_size = spec(m.cell).hidden_for_budget(m.param_budget, inp, m.num_layers, m.bidirectional)
    device = resolve_device(cfg.device)
    validate_on_device(cfg, device)
    dtype = resolve_dtype(cfg.dtype, cfg.measure.name)
    backend = effective_backend(cfg.model.cell, device, dtype, cfg.measure.get("backend", "auto"))
    check_memory(cfg, MEASURES[cfg.measure.name].memory(cfg, dtype, device), device)
    point = point_config(OmegaConf.to_container(cfg), device, dtype, MEASURES[cfg.measure.name].version)
    return Resolved(cfg, device, dtype, backend, point, config_hash(point))


def plain(cfg: DictConfig) -> dict:
    """The job's configuration as plain Python values, without Hydra's own node."""
    keys = [k for k in cfg if k != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, keys), resolve=True, enum_to_str=True)


OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def classify(exc: BaseException) -> str:
    """Exception inside a point -> the status stored for it. Out of memory on either device
    (torch's CUDA OutOfMemoryError, the CPU allocator's "can't allocate memory", a MemoryError)
    is `oom`; only an arithmetic overflow (FloatingPointError, OverflowError) is `overflow`; an
    error whose text merely says "overflow" (e.g. a failed conversion) is a failure."""
    text = str(exc).lower()
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or any(t in text for t in OOM_TEXT):
        return "oom"
    if isinstance(exc, (FloatingPointError, OverflowError)):
        return "overflow"
    return "failed"


@dataclass
class Outcome:
    """What became of a point: its status (a stored one, `skipped`, or `unstored` when its
    record could not be written), where its record is, and why it was not stored."""
    status: str
    path: str
    problem: str = ""


def run_point(cfg: DictConfig, label: Optional[str] = None) -> str:
    """Measure and store one point; returns its status (`skipped` when already stored ok,
    `unstored` when its record could not be written)."""
    return measure_point(cfg, label).status


def measure_point(cfg: DictConfig, label: Optional[str] = None) -> Outcome:
    """run_point's work, with where the record went: a results_dir that cannot be written is
    found before the measure runs, and a write that fails after it is one line naming the
    point, the path and the OS error (the sweep goes on)."""
    r = resolve(cfg)
    cfg, name = r.cfg, label or r.chash
    path = point_path(cfg.results_dir, r.chash)
    if path.parent.is_dir():
        clean_orphans(path.parent)
    progress.point(name)
    if not cfg.force and is_done(path):
        progress.done("skipped")
        return Outcome("skipped", str(path))
    problem = write_problem(cfg.results_dir)
    if problem is None:
        frame = measure_frame(r, name)
        try:
            write_point(path, frame)
        except (OSError, ValueError, TypeError) as exc:  # a full disk, a folder gone read-only, ...
            problem = f"cannot write {path}: {os_error(exc)}"
    if problem:
        progress.write(f"bench: point {name}: not stored: {problem}")
        progress.done("unstored")
        return Outcome("unstored", str(path), problem)
    final = "ok" if (frame["status"] == "ok").all() else frame.loc[frame["status"] != "ok", "status"].iloc[0]
    progress.done(final)
    return Outcome(final, str(path))


def measure_frame(r: Resolved, name: str):
    """Measure a resolved point: its record frame (a failure is a row with its status)."""
    cfg = r.cfg
    status, error, rows = "ok", "", []
    # in a SLURM job without `threads`, torch uses the job's allocation, not the node's CPU count
    with threads_context(cfg.threads if cfg.threads is not None else slurm_cpus()) as threads, \
            backend_context(r.backend, cfg.measure.get("tf32", False)), \
            denormal_context(cfg.measure.get("flush_denormal", False)):
        point = Point(cfg=cfg, device=r.device, dtype=DTYPES[r.dtype], backend=r.backend)
        try:
            injected_failure(r.point)
            rows = MEASURES[cfg.measure.name].measure(point)
        except Exception as exc:
            if interrupt.fired():  # Ctrl-C that a clean-up turned into another error: not a failure
                raise KeyboardInterrupt from exc
            status = classify(exc)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            progress.write(f"point {name} {status}: {error}")
            progress.write("".join(traceback.format_exception(exc, limit=-3)).rstrip())
        finally:
            if r.device == "cuda":
                torch.cuda.empty_cache()
        prov = provenance(device_name(r.device), r.backend, threads)
    return to_frame(rows, r.point, prov, r.chash, status, error)


def injected_failure(point: dict) -> None:
    """Fault injection for the launcher tests (tests/test_slurm.py): with RNN_BENCH_FAIL_CELL=<cell>
    in the environment, every point of that cell fails inside its job, as a real failure would."""
    cell = os.environ.get("RNN_BENCH_FAIL_CELL")
    if cell and point.get("cell") == cell:
        raise RuntimeError(f"injected failure for cell {cell} (RNN_BENCH_FAIL_CELL)")
