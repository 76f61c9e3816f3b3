"""Step-time micro-benchmarks of each cell through the suite's own training step.

Run: make bench-pytest (JSON history under results/pytest-benchmark; compare two saved runs
with `pytest tests/benchmarks --benchmark-only --benchmark-compare`).
"""
import time

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bench.cells.registry import REGISTRY
from bench.config.schema import MODEL_DEFAULTS
from bench.measures.gradients import profile_rows
from bench.measures.point import Point
from bench.measures.throughput import setup, training_step
from bench.run.device import backend_context, denormal_context, effective_backend

SIZES = {"input_size": 64, "hidden_size": 256, "seq_len": 100, "batch_size": 64}
FIDELITY = 1.15      # suite/plain step time within [1/1.15, 1.15]: the same ops, timed the same way
PROFILE_STEPS = 10   # a gradient profile under 10 training steps (T=200 backward passes would be ~200)


def _point(cell: str, backend: str = "auto", dtype=torch.float32, **sizes) -> Point:
    s = {**SIZES, **sizes}
    cfg = OmegaConf.create({
        "model": {"cell": cell, "input_size": s["input_size"], "hidden_size": s["hidden_size"],
                  "num_layers": 1, "bidirectional": False, "forget_bias": None, **MODEL_DEFAULTS,
                  "scan": s.get("scan")},
        "data": {"seq_len": s["seq_len"], "batch_size": s["batch_size"]},
        "measure": {"name": "throughput", "lr": 1e-3}, "seed": 0})
    eff = effective_backend(cell, "cpu", str(dtype).split(".")[-1], backend)
    return Point(cfg=cfg, device="cpu", dtype=dtype, backend=eff)


@pytest.mark.parametrize("backend", ["auto", "native"])
@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_step_time(benchmark, cell, backend):
    point = _point(cell, backend)
    benchmark.extra_info.update({**SIZES, "cell": cell, "backend": point.backend, "dtype": "float32",
                                 "flush_denormal": True})
    with backend_context(point.backend), denormal_context(True):
        model, opt, x, target = setup(point)
        _, step = training_step(model, opt, x, target, "cpu")
        benchmark.pedantic(step, rounds=15, warmup_rounds=3)


def test_fidelity_against_plain_loop(benchmark):
    """The suite's step time against a plain hand-written loop of the same model, optimiser
    and loss, interleaved in one run. Reported in extra_info['ratio'] (suite / plain)."""
    point = _point("lstm")
    with denormal_context(True):
        model, opt, x, target = setup(point)
        _, step = training_step(model, opt, x, target, "cpu")

        def plain() -> float:
            t0 = time.perf_counter()
            out, _ = model(x)
            loss = nn.functional.mse_loss(out[-1], target)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return (time.perf_counter() - t0) * 1e3

        def interleaved():
            suite_ms, plain_ms = [], []
            for _ in range(3):
                step(), plain()
            for i in range(40):
                if i % 2:
                    suite_ms.append(step()[2])
                    plain_ms.append(plain())
                else:
                    plain_ms.append(plain())
                    suite_ms.append(step()[2])
            return sorted(suite_ms)[20], sorted(plain_ms)[20]
        suite_med, plain_med = benchmark.pedantic(interleaved, rounds=1, iterations=1)
    benchmark.extra_info.update({"suite_median_ms": suite_med, "plain_median_ms": plain_med,
                                 "ratio": suite_med / plain_med, **SIZES, "cell": "lstm"})
    print(f"\nfidelity: suite {suite_med:.2f} ms, plain loop {plain_med:.2f} ms, "
          f"ratio {suite_med / plain_med:.3f}")
    # docs/usage.md, "Fidelity": the suite's step is the plain loop's, within FIDELITY either way
    assert 1 / FIDELITY < suite_med / plain_med < FIDELITY, f"suite/plain {suite_med / plain_med:.3f}"


@pytest.mark.parametrize("theory", [False, True], ids=["profile", "profile+theory"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradient_profile_cost(benchmark, cell, theory):
    """One gradient profile (T=200, H=128, B=32, float64) against one training step of the
    same model: the profile is one backward pass, not T of them (extra_info['ratio']). The
    theory columns (a Python loop of T vector-Jacobian products) are timed apart."""
    point = _point(cell, dtype=torch.float64, input_size=32, hidden_size=128, seq_len=200, batch_size=32)
    model, opt, x, target = setup(point)
    _, step = training_step(model, opt, x, target, "cpu")
    step_ms = sorted(step()[2] for _ in range(7))[3]
    benchmark.pedantic(lambda: profile_rows(model, x, 0, "init", theory=theory), rounds=5, warmup_rounds=1)
    profile_ms = benchmark.stats.stats.median * 1e3
    benchmark.extra_info.update({"cell": cell, "theory": theory, "step_median_ms": step_ms,
                                 "profile_median_ms": profile_ms, "ratio": profile_ms / step_ms})
    print(f"\n{cell}: profile{' + theory' if theory else ''} {profile_ms:.1f} ms, training step "
          f"{step_ms:.1f} ms, ratio {profile_ms / step_ms:.2f}")
    if not theory:  # docs/usage.md, "Cost of a gradient profile": one backward pass, not T=200 of them
        assert profile_ms / step_ms < PROFILE_STEPS, f"profile/step {profile_ms / step_ms:.1f}"


@pytest.mark.parametrize("seq_len", [256, 1024, 4096])
def test_scan_against_loop_and_fused_lstm(benchmark, seq_len):
    """minGRU's parallel scan against its sequential loop and against nn.LSTM on oneDNN, one
    training step each, interleaved in one run (medians of 7); the ratios scan/loop and
    scan/fused-LSTM are in extra_info (issue: the crossover study)."""
    sizes = {"input_size": 32, "hidden_size": 64, "batch_size": 16, "seq_len": seq_len}
    steps = {}
    with denormal_context(True):
        for name, cell, scan in (("scan", "mingru", True), ("loop", "mingru", False), ("lstm", "lstm", None)):
            point = _point(cell, "auto", scan=scan, **sizes)
            with backend_context(point.backend):
                model, opt, x, target = setup(point)
                steps[name] = (point.backend, training_step(model, opt, x, target, "cpu")[1])

        def interleaved():
            times = {k: [] for k in steps}
            for i in range(9):
                for name in (list(steps) if i % 2 else list(steps)[::-1]):
                    backend, step = steps[name]
                    with backend_context(backend):
                        times[name].append(step()[2])
            return {k: sorted(v[2:])[3] for k, v in times.items()}  # two warm-ups, median of 7
        med = benchmark.pedantic(interleaved, rounds=1, iterations=1)
    benchmark.extra_info.update({**sizes, **{f"{k}_ms": v for k, v in med.items()},
                                 "scan_over_loop": med["scan"] / med["loop"],
                                 "scan_over_fused_lstm": med["scan"] / med["lstm"]})
    print(f"\nT={seq_len}: scan {med['scan']:.1f} ms, loop {med['loop']:.1f} ms, fused lstm "
          f"{med['lstm']:.1f} ms; scan/loop {med['scan'] / med['loop']:.3f}, "
          f"scan/lstm {med['scan'] / med['lstm']:.3f}")
