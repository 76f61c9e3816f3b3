"""A small synthetic record store with known answers, written through the real store code."""
from __future__ import annotations

import math
from pathlib import Path

from bench.records import config_hash, to_frame
from bench.store import point_path, write_point

PROV = {"torch_version": "test", "device_name": "synthetic", "backend": "native", "threads": 1,
        "git_sha": "test", "timestamp": "2026-01-01T00:00:00+00:00"}


def _config(cell, seq_len, measure, seed=0, bidirectional=False, forget_bias=None, **extra):
    return {"cell": cell, "input_size": 8, "hidden_size": 16, "num_layers": 1,
            "bidirectional": bidirectional, "forget_bias": forget_bias, "seq_len": seq_len,
            "batch_size": 4, "measure": measure, "device": "cpu", "dtype": "float64", "seed": seed,
            "threads_requested": None, **extra}


def _write(store: Path, point: dict, rows: list, **prov) -> None:
    h = config_hash(point)
    write_point(point_path(store, h), to_frame(rows, point, {**PROV, **prov}, h))


DECAY = {"rnn": -0.3, "lstm": -0.1, "gru": -0.05}  # log10 per step, exactly


def samples(log10_mean: float) -> list:
    """Three per-sample log10 norms whose mean is `log10_mean` (each decays at the same rate)."""
    return [log10_mean - 0.1, log10_mean, log10_mean + 0.1]


def write_gradients(store: Path) -> None:
    for cell, decay in DECAY.items():
        for seed in (0, 1):
            for T in (20, 40, 80):
                point = _config(cell, T, "gradients", seed, forget_bias=0.0 if cell == "lstm" else None,
                                measure_fit_start=0.1, measure_fit_end=0.9)
                rows = [{"measure": "gradients", "condition": "init", "layer": 0, "t": t,
                         "distance": T - 1 - t, "grad_norm": 10 ** (decay * (T - 1 - t)),
                         "log10_grad_norm_samples": samples(decay * (T - 1 - t)),
                         "underflow": False, "gate_decay_per_step": decay * 1.5,
                         "jacobian_decay_per_step": decay * 1.1,
                         "mean_gate": math.nan, "spectral_radius": math.nan} for t in range(T)]
                _write(store, point, rows)


def write_throughput(store: Path) -> None:
    for cell, ms in {"rnn": 10.0, "lstm": 30.0, "gru": 24.0}.items():
        for bidir in (False, True):
            for T in (25, 50, 100):
                step = ms * T / 50 * (2 if bidir else 1)
                point = _config(cell, T, "throughput", bidirectional=bidir, dtype="float32",
                                measure_backend="native", measure_tf32=False)
                rows = [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": step * f,
                         "flops": 3e6, "peak_mem_bytes": 1000, "rel_iqr": 0.02, "noisy": False,
                         "calib_flops_per_s": 1e10, "calib_n": 512, "tokens": 4 * T, "attempt": 1,
                         "params": {"rnn": 1, "lstm": 4, "gru": 3}[cell] * (2 if bidir else 1) * 400}
                        for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
                _write(store, point, rows)


def write_long_range(store: Path) -> None:
    for cell, final in {"rnn": 0.166, "lstm": 0.004}.items():
        for seed in (0, 1, 2):
            point = _config(cell, 100, "long_range", seed, measure_task="adding")
            rows = [{"measure": "long_range", "task": "adding", "step": s, "train_loss": 0.2,
                     "test_loss": 0.167 if s < 200 else final, "test_acc": math.nan,
                     "solved": s >= 200 and final < 0.01, "elapsed_s": s / 100,
                     "baseline_loss": 1 / 6} for s in range(0, 301, 50)]
            rows += [{"measure": "gradients", "condition": cond, "layer": 0, "t": t,
                      "distance": 99 - t, "grad_norm": 10 ** (d * (99 - t)), "underflow": False,
                      "log10_grad_norm_samples": samples(d * (99 - t)),
                      "gate_decay_per_step": d, "jacobian_decay_per_step": d,
                      "mean_gate": 0.5}
                     for cond, d in (("init", -0.3), ("trained", -0.03 if cell == "lstm" else -0.25))
                     for t in range(100)]
            _write(store, point, rows)


def write_all(store: Path) -> Path:
    write_gradients(store)
    write_throughput(store)
    write_long_range(store)
    return store
