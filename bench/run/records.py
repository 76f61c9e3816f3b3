"""Records: one tidy, long-form schema. Every row carries its configuration and provenance."""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd
import torch

from bench.cells.recurrence import DEFAULT_CHUNK, LEGACY_PATHS
from bench.cells.registry import REGISTRY, family
from bench.config.schema import HASH_DEFAULTS
from bench.tasks.registry import TASK_KEYS, TASKS

STATUSES = ("ok", "overflow", "oom", "failed")


def point_config(cfg: Dict[str, Any], device: str, dtype: str, version: int) -> Dict[str, Any]:
    """The configuration that identifies a measured point, flat, with device and dtype resolved.
    How to run (results_dir, force, progress) is left out, so it never changes the hash; what
    decides the numbers besides the configuration (the measure's `version`, the torch version)
    is in, so that a stored point is reused only when it would be measured the same way.

    Columns: the DESIGN's configuration keys (`cell`, `hidden_size`, `seq_len`, ...), then the
    measure's own settings prefixed `measure_` (e.g. `measure_backend`), then `measure`.
    """
    flat: Dict[str, Any] = {}
    flat.update(cfg["model"])
    flat.update(cfg["data"])
    measure = dict(cfg["measure"])
    flat["measure"] = measure.pop("name")
    flat.update({f"measure_{k}": v for k, v in sorted(measure.items())})
    flat.update(device=device, dtype=dtype, seed=cfg["seed"], threads_requested=cfg["threads"],
                measure_version=version, torch_version=torch.__version__)
    if flat["measure"] == "long_range":  # keys the task decides or ignores are not the user's
        task = TASKS[flat["measure_task"]]
        flat["input_size"] = task.inputs
        for key in TASK_KEYS:  # e.g. copy_symbols only for copy; solve_mse only for an MSE
            if key not in task.keys:
                flat.pop(f"measure_{key}", None)
    if flat["forget_bias"] is None and flat["cell"] in family("lstm") and flat.get("init") != "chrono":
        flat["forget_bias"] = 0.0  # the ladder's first rung is PyTorch's default init
    if REGISTRY[flat["cell"]].scan is not None:  # the path that runs is recorded and hashed
        resolve_path(flat, REGISTRY[flat["cell"]].scan)
    if flat.get("init") == "chrono" and flat.get("chrono_tmax") is None:
        flat["chrono_tmax"] = flat["seq_len"]  # chrono's T_max defaults to the sequence length
    return flat


def resolve_path(flat: Dict[str, Any], default_scan: bool) -> None:
    """Fill a diagonal cell's `path` (and `scan` for the two paths it names, `chunk` for the
    chunked path) with what runs, in place: every point records its path."""
    path = flat.get("path")
    if path is None or path in LEGACY_PATHS:
        scan = flat.get("scan")
        scan = (LEGACY_PATHS[path] if path else default_scan) if scan is None else scan
        flat["scan"], flat["path"] = scan, "scan" if scan else "loop"
    else:
        flat["scan"] = None  # model.scan names neither of the other paths
        if path == "chunked" and flat.get("chunk") is None:
            flat["chunk"] = DEFAULT_CHUNK


def config_hash(point: Dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a point's configuration (names the record file). Keys
    added later (`HASH_DEFAULTS`: model and measure keys) are left out at their default values, so that points stored
    before they existed keep their hashes; at any other value they are hashed. `path` is left
    out where it is the one `scan` names (loop, scan), which stored points hash already."""
    point = {k: v for k, v in point.items() if not (k in HASH_DEFAULTS and v == HASH_DEFAULTS[k])}
    if point.get("path") in LEGACY_PATHS and point.get("scan") == LEGACY_PATHS[point["path"]]:
        del point["path"]
    blob = json.dumps(point, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def changed_code(root: Path) -> Optional[List[str]]:
    """Tracked files with uncommitted changes, outside results/ (records are what the code
    measures, not code: a re-measured reference store swapped in does not make the next study's
    records dirty); None where `root` is not a git tree."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, text=True,
                         capture_output=True, timeout=10)
    if out.returncode != 0:
        return None
    return [p for p in (line[3:] for line in out.stdout.splitlines()) if not p.startswith("results/")]


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, text=True,
                             capture_output=True, timeout=5).stdout.strip()
        dirty = changed_code(root)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


# CPU flags that decide which kernels oneDNN, MKL and aten pick (the rest of /proc/cpuinfo's
# list does not change a number this suite measures).
SIMD_FLAGS = re.compile(r"^(sse4_2|avx|avx2|fma|f16c|avx512\w*|amx\w*|avx_vnni\w*)$")


@functools.lru_cache(maxsize=1)
def environment() -> Dict[str, Any]:
    """What besides the code decides a timing: the libraries torch was built with, the CPU
    and its vector extensions, the interpreter. Compared by `analysis.compare`, never hashed."""
    config = torch.__config__.show()
    onednn = re.search(r"(?:MKL-DNN|oneDNN) (v[\d.]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([\w.-]+)", config)
    flags: List[str] = []
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and not cpu_model:
                    cpu_model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = sorted(f for f in line.split(":", 1)[1].split() if SIMD_FLAGS.match(f))
                    break
    except OSError:
        pass
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {**cache_sizes(),
        "python_version": platform.python_version(),
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "cpu_flags": " ".join(flags),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_version": onednn.group(1) if onednn else "",
        "mkl_version": mkl.group(1) if mkl else "",
        "cuda_version": torch.version.cuda or "",
        "cudnn_version": str(cudnn or ""),
    }


def cache_sizes() -> Dict[str, int]:
    """The CPU's data and unified cache sizes per level, bytes, as the kernel reports them for
    CPU 0 (`cache_l1d_bytes`, `cache_l2_bytes`, `cache_l3_bytes`; 0 where unknown)."""
    sizes = {"cache_l1d_bytes": 0, "cache_l2_bytes": 0, "cache_l3_bytes": 0}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        if kind == "Instruction" or not text:
            continue
        scale = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}.get(text[-1], 1)
        value = int(text.rstrip("KMG")) * scale
        key = "cache_l1d_bytes" if level == "1" else f"cache_l{level}_bytes"
        if key in sizes:
            sizes[key] = value
    return sizes


def scheduler() -> Dict[str, Any]:
    """The SLURM job a point ran in, from the job's environment; empty outside SLURM. A timed
    point measured in a cluster job is never mistaken for one measured on a shared machine:
    `slurm_job_id` (array jobs: <array job>_<task>), `slurm_node`, `slurm_cpus` (the job's CPU
    allocation per task, which also sets torch's threads when `threads` is not given)."""
    env = os.environ
    job = env.get("SLURM_JOB_ID", "")
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return {"slurm_job_id": job, "slurm_node": env.get("SLURMD_NODENAME", "") if job else "",
            "slurm_cpus": slurm_cpus() or 0}


def slurm_cpus() -> Optional[int]:
    """CPUs allocated per task in the current SLURM job, or None outside one."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_JOB_CPUS_PER_NODE"):
        value = os.environ.get(var, "").split("(")[0]
        if value.isdigit():
            return int(value)
    return None


def provenance(device_name: str, backend: str, threads: int) -> Dict[str, Any]:
    return {
        "torch_version": torch.__version__,
        "device_name": device_name,
        "backend": backend,
        "threads": threads,
        "git_sha": git_sha(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **environment(),
        **scheduler(),
    }


def to_frame(rows: List[Dict[str, Any]], point: Dict[str, Any], prov: Dict[str, Any],
             chash: str, status: str = "ok", error: str = "") -> pd.DataFrame:
    """Measure rows + configuration + provenance -> the record DataFrame of one point.

    A point that failed before producing rows is stored as one row with its status and error.
    """
    if status not in STATUSES:
        raise ValueError(f"status={status}: allowed {STATUSES}")
    rows = rows or [{}]
    frame = pd.DataFrame(rows)
    # A measure may set some of these on its own rows (long_range stores gradients rows with
    # measure=gradients, an overflow sets status on its rows): fill only what it left empty.
    for key, value in {**point, **prov, "config_hash": chash, "status": status, "error": error}.items():
        if key not in frame.columns:
            frame[key] = value
        elif value is not None:
            frame[key] = frame[key].where(frame[key].notna(), value)
    return frame
