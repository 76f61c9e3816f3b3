"""Throughput measure: rows, analytic FLOPs, backends recorded, GPU paths (marked `gpu`)."""
import pandas as pd
import pytest
import torch

from bench.cells import GATES, build_model, forward_flops
from bench.config import ConfigError
from bench.device import backend_context, effective_backend
from bench.measures.throughput import rel_iqr
from bench.run import resolve, run_point

SMALL = ["measure=throughput", "model.input_size=8", "model.hidden_size=16", "data.seq_len=12",
         "data.batch_size=4", "measure.min_reps=3", "measure.min_time_s=0", "measure.warmup=1"]


def test_forward_flops_formula_and_ratios():
    # 1 layer, uni: 2 * G * H * (I + H) per element
    assert forward_flops("rnn", 10, 20, 1, False, 1, 1) == 2 * 1 * 20 * 30
    lstm = forward_flops("lstm", 64, 256, 1, False, 100, 64)
    assert lstm == 4 * forward_flops("rnn", 64, 256, 1, False, 100, 64)
    assert forward_flops("gru", 64, 256, 1, False, 100, 64) == 3 * forward_flops("rnn", 64, 256, 1, False, 100, 64)
    assert forward_flops("lstm", 64, 256, 1, True, 100, 64) == 2 * lstm
    # layer 2 reads D*H inputs
    two = forward_flops("lstm", 8, 16, 2, True, 1, 1)
    assert two == 2 * (2 * 4 * 16 * (8 + 16) + 2 * 4 * 16 * (32 + 16))
    assert set(GATES) == {"rnn", "lstm", "gru", "ref_lstm"}


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
    fwd = forward_flops(cell, 8, 16, 1, False, 12, 4)
    assert df.set_index("phase")["flops"].groupby(level=0).first().to_dict() == {
        "forward": fwd, "backward": 2 * fwd, "step": 3 * fwd}
    step = df[df["phase"] == "step"].set_index("rep")["time_ms"]
    parts = df[df["phase"] != "step"].groupby("rep")["time_ms"].sum()
    assert (step >= parts - 1e-9).all()  # a step contains its forward and backward
    expected = "onednn" if (cell == "lstm" and backend == "auto" and torch.backends.mkldnn.is_available()) else "native"
    assert df["backend"].unique().tolist() == [expected]
    assert df["measure_tf32"].unique().tolist() == [False]
    assert df["params"].iloc[0] == sum(p.numel() for p in build_model(cell, 8, 16).parameters())


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
    with pytest.raises(ConfigError, match="oneDNN runs only lstm"):
        effective_backend("gru", "cpu", "float32", "onednn")


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
