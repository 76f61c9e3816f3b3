"""A small synthetic record store with known answers, written through the real store code (the
learning studies under nested selection: tests/synthetic_learning.py)."""
from __future__ import annotations

import math
from pathlib import Path

from bench.run.records import config_hash, to_frame
from bench.run.store import point_path, write_point

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


def write_init_study(store: Path) -> Path:
    """The initialisation study with known answers: an orthogonal tanh RNN whose decay per step
    is log10(gain) - 0.05 (grows from gain 1.2 on), and each cell at gain 1 under two schemes."""
    def profile(decay, T=60):
        return [{"measure": "gradients", "condition": "init", "layer": 0, "t": t, "distance": T - 1 - t,
                 "grad_norm": 10 ** (decay * (T - 1 - t)), "log10_grad_norm_samples": samples(decay * (T - 1 - t)),
                 "underflow": False, "gate_decay_per_step": math.nan, "jacobian_decay_per_step": decay,
                 "mean_gate": math.nan, "spectral_radius": math.nan} for t in range(T)]
    cases = [("rnn", "orthogonal", g, math.log10(g) - 0.05) for g in (0.6, 0.8, 1.0, 1.2, 1.4)]
    cases += [("rnn", "default", 1.0, -0.3), ("lstm", "default", 1.0, -0.2), ("lstm", "chrono", 1.0, -0.01)]
    for cell, init, gain, decay in cases:
        for seed in (0, 1):
            point = _config(cell, 60, "gradients", seed, forget_bias=0.0 if init == "default" and cell == "lstm" else None,
                            init=init, gain=gain, nonlinearity="tanh", measure_fit_start=0.1, measure_fit_end=0.9)
            _write(store, point, profile(decay))
    return store


def write_crossover(store: Path) -> Path:
    """Step time against seq_len: lstm on oneDNN at 0.1 ms/step; minGRU's loop at 0.2 ms/step,
    its scan at 2 ms + 0.01 ms/step, so the scan overtakes the fused LSTM from T=64 on (2.64 ms
    against 6.4 ms there) and its loop from T=16."""
    for T in (16, 64, 256, 1024):
        for cell, backend, scan, ms in (("lstm", "onednn", None, 0.1 * T), ("mingru", "native", True, 2 + 0.01 * T),
                                        ("mingru", "native", False, 0.2 * T)):
            point = _config(cell, T, "throughput", dtype="float32", measure_backend="auto",
                            measure_tf32=False, scan=scan)
            rows = [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": ms * f, "flops": 1e6,
                     "peak_mem_bytes": 1000 * T, "rel_iqr": 0.01, "noisy": False, "calib_flops_per_s": 1e10,
                     "calib_n": 512, "tokens": 4 * T, "attempt": 1, "params": 100}
                    for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
            _write(store, point, rows, backend=backend)
    return store


def write_modern(store: Path) -> Path:
    """Parity and selective copying with known answers, 3 seeds a cell. Parity (L=20): lstm
    solves and stays right at every test length; mingru never solves and sits at 0.5; slstm
    solves at L, keeps 0.995 at 2L and falls to 0.9 at 10L (right on >= 99% in 0 of 3 seeds
    there). Selective copying: mingru solves 2 of 3 seeds (recall 1.0, 1.0, 0.6), lstm none
    (recall 0.125). An adding run in the same store stays in the long-lag section."""
    parity_acc = {"lstm": {2: 1.0, 5: 1.0, 10: 1.0}, "mingru": {2: 0.5, 5: 0.5, 10: 0.5},
                  "slstm": {2: 0.995, 5: 0.95, 10: 0.9}}
    for cell, accs in parity_acc.items():
        for seed in (0, 1, 2):
            solved = cell != "mingru"
            rows = [{"measure": "long_range", "task": "parity", "step": s, "train_loss": 0.1,
                     "test_loss": 0.01 if solved and s == 100 else 0.69, "val_loss": 0.5,
                     "test_acc": 1.0 if solved and s == 100 else 0.5, "solved": solved and s == 100,
                     "elapsed_s": s / 100, "baseline_loss": math.log(2)} for s in (0, 50, 100)]
            rows += [{"measure": "length_generalisation", "task": "parity", "test_len": 20 * f,
                      "test_factor": f, "test_acc": a, "test_acc_beyond": a, "test_sequences": 512,
                      "baseline_acc": 0.5} for f, a in accs.items()]
            _write(store, _config(cell, 20, "long_range", seed, measure_task="parity", measure_version=3, measure_lr=0.003,
                                  forget_bias=0.0 if cell == "lstm" else None), rows)
    for cell, recall in {"lstm": (0.125,) * 3, "mingru": (1.0, 1.0, 0.6)}.items():
        for seed in (0, 1, 2):
            rows = [{"measure": "long_range", "task": "selective_copy", "step": s, "train_loss": 0.1,
                     "test_loss": 0.1, "val_loss": 0.1, "test_acc": recall[seed] if s == 300 else 0.125,
                     "solved": recall[seed] >= 0.99 and s == 300, "elapsed_s": s / 100,
                     "baseline_loss": 0.23} for s in (0, 100, 200, 300)]
            _write(store, _config(cell, 32, "long_range", seed, measure_task="selective_copy",
                                  measure_version=3, measure_copy_symbols=4, measure_lr=0.003,
                                  forget_bias=0.0 if cell == "lstm" else None, num_layers=2), rows)
    rows = [{"measure": "long_range", "task": "adding", "step": s, "train_loss": 0.1, "test_loss": 0.005,
             "val_loss": 0.005, "test_acc": math.nan, "solved": s == 100, "elapsed_s": s / 100,
             "baseline_loss": 1 / 6} for s in (0, 100)]
    _write(store, _config("lstm", 50, "long_range", 0, measure_task="adding", measure_version=3,
                                  measure_lr=0.003, forget_bias=0.0), rows)
    return store


def write_cpu_cost(store: Path) -> Path:
    """The CPU-cost study with known answers: lstm (native) with the loss on the last step is 5x
    slower with subnormals kept from seq_len 200 on, 1x otherwise; the cost per token doubles
    from 100 to 200 as the working set (peak memory) leaves the 1 MiB L2; two threads make rnn
    1.6x faster; oneDNN wins at hidden 256 and loses at hidden 64 (batch 16 and 64)."""
    def rows(ms, mem=1000, cache=None):
        extra = {"cache_l2_bytes": 2 ** 20, "cache_l3_bytes": 32 * 2 ** 20} if cache is None else cache
        return [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": ms * f * (1 + 0.01 * r),
                 "flops": 1e6, "peak_mem_bytes": mem, "rel_iqr": 0.01, "noisy": False, "calib_flops_per_s": 1e10,
                 "calib_n": 512, "tokens": 64 * 100, "attempt": 1, "params": 100, **extra}
                for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
    for T in (50, 100, 200, 400):
        for flush in (True, False):
            for loss in ("last", "every"):
                per_token = 1.0 if T <= 100 else 2.0
                ms = per_token * T * (5 if (not flush and loss == "last" and T >= 200) else 1)
                point = _config("lstm", T, "throughput", dtype="float32", measure_backend="native",
                                measure_tf32=False, measure_flush_denormal=flush, measure_loss=loss, threads_requested=2)
                point["batch_size"] = 64
                r = rows(ms, mem=(0.5 if T <= 100 else 3) * 2 ** 20)
                for row in r:
                    row["tokens"] = 64 * T
                _write(store, point, r, threads=2)
    for threads in (1, 2):
        point = _config("rnn", 100, "throughput", dtype="float32", measure_backend="native", measure_tf32=False,
                        threads_requested=threads)
        point["hidden_size"] = 256
        _write(store, point, rows(16.0 if threads == 1 else 10.0), threads=threads)
    for backend in ("auto", "native"):
        for hidden in (64, 256):
            for batch in (16, 64):
                point = _config("lstm", 100, "throughput", dtype="float32", measure_backend=backend,
                                measure_tf32=False, threads_requested=2)
                point.update(hidden_size=hidden, batch_size=batch, input_size=64)
                ms = 10.0 if backend == "native" else (5.0 if hidden == 256 else 20.0)
                _write(store, point, rows(ms), threads=2, backend="onednn" if backend == "auto" else "native")
    return store
