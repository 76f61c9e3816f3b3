"""Throughput measure: rows, analytic FLOPs, backends recorded, GPU paths (marked `gpu`)."""
import pandas as pd
import pytest
import torch

from bench.cells.build import build_model
from bench.cells.registry import REGISTRY, spec
from bench.config.errors import ConfigError
from bench.measures.observe import count_flops, profile_step
from bench.measures.throughput import rel_iqr
from bench.run.device import backend_context, effective_backend
from bench.run.runner import resolve, run_point

SMALL = ["measure=throughput", "model.input_size=8", "model.hidden_size=16", "data.seq_len=12",
         "data.batch_size=4", "measure.min_reps=3", "measure.min_time_s=0", "measure.warmup=1"]


@pytest.mark.parametrize("cell", sorted(REGISTRY))
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True), (3, False)])
def test_step_flops_formula_matches_flop_counter_on_native_path(cell, layers, bidir):
    """The formula used for fused kernels agrees with FlopCounterMode on aten's native loop of
    the same shapes, forward and backward, within 1% (x does not require grad: no input
    gradient at layer 0, so training is under 3x forward)."""
    I, H, T, B = 24, 32, 9, 5
    model = build_model(cell, I, H, layers, bidir)
    x = torch.randn(T, B, I)
    with backend_context("native"):
        fwd, bwd = count_flops(lambda: model(x)[0][-1].sum())
    f_fwd, f_bwd = spec(cell).flops(I, H, layers, bidir, T, B)
    assert f_fwd == pytest.approx(fwd, rel=0.01) and f_bwd == pytest.approx(bwd, rel=0.01)
    assert bwd < 2 * fwd


def test_three_times_forward_overstated_training_flops():
    """At the fastrnns size (I=H=512, T=100, B=64) 3x forward overstates a 1-layer step by
    about 20%: the counted backward is (1 + H/(I+H) * (T-1)/T) x forward."""
    fwd, bwd = spec("lstm").flops(512, 512, 1, False, 100, 64)
    assert 3 * fwd / (fwd + bwd) == pytest.approx(3 / (2 + 0.5 * 99 / 100), rel=1e-12)
    assert 3 * fwd / (fwd + bwd) > 1.19


def test_rel_iqr():
    assert rel_iqr([10.0] * 5) == 0
    assert rel_iqr([8.0, 9.0, 10.0, 11.0, 12.0]) == pytest.approx(0.3)  # (11.5 - 8.5) / 10


@pytest.mark.parametrize("cell,backend", [("lstm", "auto"), ("lstm", "native"), ("rnn", "auto"),
                                          ("gru", "native"), ("ref_lstm", "auto")])
def test_throughput_point_rows(make_cfg, tmp_path, cell, backend):
    cfg = make_cfg([*SMALL, f"model.cell={cell}", f"measure.backend={backend}", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    assert sorted(df["phase"].unique()) == ["backward", "forward", "step"]
    assert (df.groupby("phase")["rep"].nunique() >= 3).all()
    assert (df["time_ms"] > 0).all() and (df["calib_flops_per_s"] > 0).all() and (df["peak_mem_bytes"] > 0).all()
    fwd, bwd = spec(cell).flops(8, 16, 1, False, 12, 4)
    counted = df.set_index("phase")["flops"].groupby(level=0).first()
    assert counted["step"] == counted["forward"] + counted["backward"]
    assert counted["forward"] == pytest.approx(fwd, rel=0.01) and counted["backward"] == pytest.approx(bwd, rel=0.01)
    step = df[df["phase"] == "step"].set_index("rep")["time_ms"]
    parts = df[df["phase"] != "step"].groupby("rep")["time_ms"].sum()
    assert (step >= parts - 1e-9).all()  # a step contains its forward and backward
    expected = "onednn" if (cell == "lstm" and backend == "auto" and torch.backends.mkldnn.is_available()) else "native"
    assert df["backend"].unique().tolist() == [expected] == df["observed_backend"].unique().tolist()
    assert df["flops_source"].unique().tolist() == ["formula" if expected == "onednn" else "flop_counter"]
    assert df["peak_mem_source"].unique().tolist() == ["cpu_allocation_events"]
    assert df["cuda_max_allocated_bytes"].isna().all()
    assert df["measure_tf32"].unique().tolist() == [False]
    assert df["params"].iloc[0] == sum(p.numel() for p in build_model(cell, 8, 16).parameters())
    # the roofline's inputs: bandwidth and peak measured in the point, the bytes its ops moved
    # (counted) and the bytes it must move (formula), which the counted ones never undercut
    assert (df["calib_bytes_per_s"] > 1e8).all() and df["calib_triad_n"].iloc[0] == 2 ** 24
    moved = df.set_index("phase")["bytes"].groupby(level=0).first()
    assert moved["step"] == moved["forward"] + moved["backward"] and df["bytes_source"].iloc[0] == "dispatch_counter"
    assert moved["step"] >= df["min_bytes"].iloc[0] > 0


def test_backend_context_restores_flags():
    before = (torch.backends.mkldnn.enabled, torch.backends.cudnn.enabled, torch.backends.cuda.matmul.allow_tf32)
    with backend_context("native", tf32=True):
        assert not torch.backends.mkldnn.enabled and not torch.backends.cudnn.enabled
        assert torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.mkldnn.enabled, torch.backends.cudnn.enabled, torch.backends.cuda.matmul.allow_tf32) == before


def test_effective_backend_rules():
    assert effective_backend("lstm", "cpu", "float64", "auto") == "native"  # oneDNN: fp32/bf16 only
    assert effective_backend("rnn", "cpu", "float32", "auto") == "native"
    assert effective_backend("ref_lstm", "cuda", "float32", "auto") == "native"
    assert effective_backend("gru", "cuda", "float32", "native") == "native"
    with pytest.raises(ConfigError, match="gru has no fused kernel on cpu"):
        effective_backend("gru", "cpu", "float32", "onednn")
    with pytest.raises(ConfigError, match="ref_lstm has no fused kernel on cuda"):
        effective_backend("ref_lstm", "cuda", "float32", "cudnn")
    with pytest.raises(ConfigError, match="oneDNN runs only lstm in float32/bfloat16"):
        effective_backend("lstm", "cpu", "float64", "onednn")


def test_timed_measures_flush_denormals_by_default(make_cfg):
    assert resolve(make_cfg(["measure=throughput"])).point["measure_flush_denormal"] is True
    assert "measure_flush_denormal" not in resolve(make_cfg(["measure=gradients"])).point


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("backend", ["auto", "native"])
@pytest.mark.parametrize("tf32", [False, True])
def test_gpu_throughput_point(make_cfg, tmp_path, backend, tf32):
    cfg = make_cfg([*SMALL, "device=cuda", "model.cell=lstm", f"measure.backend={backend}",
                    f"measure.tf32={str(tf32).lower()}", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    assert df["backend"].unique().tolist() == ["cudnn" if backend == "auto" else "native"]
    assert df["measure_tf32"].unique().tolist() == [tf32]
    assert df["device_name"].str.contains("H100|H200|NVIDIA|GPU", regex=True).all()
    assert (df["peak_mem_bytes"] > 0).all()


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gpu_gradient_profile_matches_cpu_float64(make_cfg, tmp_path, cell):
    frames = {}
    for device in ("cpu", "cuda"):
        cfg = make_cfg([f"device={device}", f"model.cell={cell}", "data.seq_len=100",
                        f"results_dir={tmp_path / device}"])
        assert run_point(cfg) == "ok"
        frames[device] = pd.read_parquet(next((tmp_path / device).glob("*.parquet"))).sort_values("t")
    a, b = frames["cpu"]["grad_norm"].to_numpy(), frames["cuda"]["grad_norm"].to_numpy()
    assert abs(b / a - 1).max() < 1e-6


def _profiled_peak(cell, native, T):
    """An independent reading: the profiler's allocation peak of one step, outside the suite."""
    torch.manual_seed(0)
    model = build_model(cell, 16, 64)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(T, 16, 16)

    def step():
        out, _ = model(x)
        out[-1].pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    with backend_context("native" if native else "auto"):
        for _ in range(2):
            step()
        return profile_step(step).cpu_alloc_peak_bytes


@pytest.mark.parametrize("cell,backend", [("rnn", "native")] + [  # the rest: seconds each (make test-slow)
    pytest.param(c, b, marks=pytest.mark.slow) for c, b in [("gru", "native"), ("lstm", "native"), ("lstm", "onednn")]])
def test_cpu_memory_follows_the_allocator(make_cfg, tmp_path, cell, backend):
    """The recorded CPU figure is the allocator's: it grows with seq_len as the profiler's
    reading does, and ranks native below oneDNN for the LSTM (the old saved-tensor model put
    the native loop above oneDNN)."""
    if backend == "onednn" and not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch build")
    recorded = {}
    for T in (20, 40):
        cfg = make_cfg([*SMALL, "model.input_size=16", "model.hidden_size=64", "data.batch_size=16",
                        f"data.seq_len={T}", f"model.cell={cell}", f"measure.backend={backend}",
                        f"results_dir={tmp_path / str(T)}"])
        assert run_point(cfg) == "ok"
        recorded[T] = pd.read_parquet(next((tmp_path / str(T)).glob("*.parquet")))["cpu_alloc_peak_bytes"].iloc[0]
        reference = _profiled_peak(cell, backend == "native", T)
        assert recorded[T] == pytest.approx(reference, rel=0.25)  # the loss differs slightly
    assert recorded[40] > 1.5 * recorded[20]


@pytest.mark.slow
def test_native_lstm_holds_less_than_onednn():
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch build")
    assert _profiled_peak("lstm", True, 60) < _profiled_peak("lstm", False, 60)


def test_observed_backend_that_differs_fails_the_point(make_cfg, tmp_path, monkeypatch):
    """Recorded `onednn` but the fused kernel did not run (here: oneDNN switched off behind
    the suite's back): the point fails, naming both."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch build")
    import bench.run.runner
    real = bench.run.runner.backend_context
    monkeypatch.setattr(bench.run.runner, "backend_context", lambda backend, tf32=False: real("native", tf32))
    cfg = make_cfg([*SMALL, "model.cell=lstm", "measure.backend=onednn", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "failed"
    err = pd.read_parquet(next(tmp_path.glob("*.parquet")))["error"].iloc[0]
    assert "BackendMismatch" in err and "'onednn' was expected but 'native' ran" in err


def test_loss_on_every_step_is_hashed_and_its_default_is_not(make_cfg):
    """measure.loss (added after throughput points were stored) keeps stored hashes at `last`."""
    from bench.run.records import config_hash
    from bench.run.runner import resolve
    base = resolve(make_cfg(["measure=throughput"]))
    assert base.point["measure_loss"] == "last"
    legacy = {k: v for k, v in base.point.items() if k != "measure_loss"}   # a point stored before the key
    assert config_hash(legacy) == base.chash
    every = resolve(make_cfg(["measure=throughput", "measure.loss=every"]))
    assert every.chash != base.chash


def test_loss_on_every_step_trains_on_every_output(make_cfg, tmp_path):
    from bench.run.runner import run_point
    cfg = make_cfg(["measure=throughput", "measure.loss=every", "model.hidden_size=8", "model.input_size=4",
                    "data.seq_len=6", "data.batch_size=3", "measure.min_reps=2", "measure.min_time_s=0",
                    "measure.warmup=1", "device=cpu", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    df = pd.read_parquet(next(tmp_path.glob("*.parquet")))
    assert (df["measure_loss"] == "every").all() and (df["time_ms"] > 0).all()
    assert df["cache_l2_bytes"].iloc[0] >= 0 and "slurm_job_id" in df


@pytest.mark.slow
@pytest.mark.parametrize("cell", [c for c, e in sorted(REGISTRY.items()) if e.paths])
def test_every_path_is_a_throughput_point_with_its_kernel_recorded(make_cfg, tmp_path, cell):
    """Each diagonal cell's paths measure, record their path and kernel, and move at least the
    compulsory bytes; chunked records its C."""
    from bench.cells.cpp_linrec import cpp_kernel
    from bench.cells.recurrence import KERNEL_OF_PATH
    for path in spec(cell).paths:
        if path in ("cpp", "compiled") and cpp_kernel() is not None:
            continue  # no compiler here: test_a_path_whose_kernel_cannot_run_fails_the_point
        cfg = make_cfg([*SMALL, f"model.cell={cell}", f"model.path={path}", f"results_dir={tmp_path / path}"])
        assert run_point(cfg) == "ok", path
        df = pd.read_parquet(next((tmp_path / path).glob("*.parquet")))
        assert df["path"].unique().tolist() == [path]
        kernel = df["recurrence_kernel"].iloc[0]
        assert (kernel is None or pd.isna(kernel)) if path in ("loop", "scan") else kernel == KERNEL_OF_PATH[path]
        assert (df.loc[df["phase"] == "step", "bytes"] >= df["min_bytes"].iloc[0]).all()
        assert (df["chunk"].iloc[0] == 64) if path == "chunked" else pd.isna(df["chunk"].iloc[0])


def test_compulsory_bytes_formula():
    """mingru, one layer (I=8, H=16, G=2, S=1), loss on the last step: 2I + 5GH + 2SH elements per
    token, float32; a second layer adds its own with in = H plus the input gradient and dense dy."""
    from omegaconf import OmegaConf

    from bench.measures.point import Point
    from bench.measures.roofline import compulsory_bytes

    def point(layers):
        cfg = OmegaConf.create({"model": {"cell": "mingru", "input_size": 8, "hidden_size": 16,
                                          "num_layers": layers, "bidirectional": False},
                                "data": {"seq_len": 10, "batch_size": 3}, "measure": {"loss": "last"}})
        return Point(cfg=cfg, device="cpu", dtype=torch.float32, backend="native")
    one = (2 * 8 + 5 * 2 * 16 + 2 * 16) * 30 * 4
    assert compulsory_bytes(point(1)) == one
    below = 2 * 8 + 5 * 32 + 2 * 16 + 16          # layer 0 under a layer: dense output gradient
    top = 2 * 16 + 5 * 32 + 2 * 16 + (32 + 16)    # layer 1: input width H, input gradient
    assert compulsory_bytes(point(2)) == (below + top) * 30 * 4


def test_a_path_whose_kernel_cannot_run_fails_the_point(make_cfg, tmp_path, monkeypatch):
    """model.path=cpp where the C++ op cannot be built: the point fails with the one-line reason
    instead of timing the fallback under the cpp label (as a backend mismatch fails)."""
    from bench.cells import cpp_linrec
    monkeypatch.setattr(cpp_linrec, "BUILD_STATE", {"error": "no C++ compiler ('c++' not on PATH)", "warned": True})
    cfg = make_cfg([*SMALL, "model.cell=mingru", "model.path=cpp", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "failed"
    err = pd.read_parquet(next(tmp_path.glob("*.parquet")))["error"].iloc[0]
    assert "KernelFallback" in err and "model.path=cpp needs the C++ kernel" in err and "no C++ compiler" in err


@pytest.mark.slow  # torch.compile compiles for seconds
def test_the_compiled_path_is_timed_compiled_after_the_counters(make_cfg, tmp_path, monkeypatch):
    """The FLOP and byte counters run the step under a dispatch mode, after which a compiled
    function runs eagerly in the process; the measure compiles it again before timing, so the
    first timed step runs the compiled graph (CompiledFunction), not the eager ops (aten::sigmoid)."""
    from torch.profiler import ProfilerActivity, profile

    from bench.cells.cpp_linrec import cpp_kernel
    from bench.measures import throughput
    if cpp_kernel() is not None:
        pytest.skip(f"the compiled path needs the C++ kernel: {cpp_kernel()}")
    seen, real = [], throughput.time_steps

    def first_step_profiled(step, cfg):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        seen.append({e.key for e in prof.key_averages()})
        return real(step, cfg)
    monkeypatch.setattr(throughput, "time_steps", first_step_profiled)
    cfg = make_cfg([*SMALL, "model.cell=mingru", "model.path=compiled", f"results_dir={tmp_path}"])
    assert run_point(cfg) == "ok"
    assert "CompiledFunction" in seen[0] and "aten::sigmoid" not in seen[0]
