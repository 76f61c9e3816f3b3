"""The pre-flight's memory estimate (bench/measures/memory.py) against torch's allocation events,
per registered cell and path: it bounds every path's training step and stays within 1.5x of the
heaviest (CellSpec.saved_floats); a point that cannot fit is refused in one line before any work,
and `max_memory_gb` overrides the machine's figure without changing the point's hash."""
import pytest
import torch
from omegaconf import OmegaConf

from bench.cells.build import build_model
from bench.cells.registry import REGISTRY
from bench.config.errors import ConfigError
from bench.measures.memory import step_bytes
from bench.measures.observe import profile_step
from bench.measures.throughput import training_step
from bench.run.runner import resolve

# The kernel paths that build a C++ op (cpp) or compile (compiled) are left out: seconds to
# minutes each; measured by hand, they allocate no more than fused_loop (bench/cells/recurrence.py).
SLOW_PATHS = ("cpp", "compiled")
T, B, I, H = 64, 8, 16, 32  # one layer, one direction: the largest per-unit allocation measured


def measured_peak(cell: str, path, bidirectional: bool = False, layers: int = 1) -> int:
    """Peak live bytes torch allocates during one warm training step (float32, CPU)."""
    torch.manual_seed(0)
    model = build_model(cell, I, H, layers, bidirectional, None, path=path)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(T, B, I)
    _, step = training_step(model, opt, x, torch.randn(B, H * (2 if bidirectional else 1)), "cpu")
    step()
    step()
    return profile_step(step).cpu_alloc_peak_bytes


def model_cfg(cell: str, layers: int = 1, bidirectional: bool = False):
    return OmegaConf.create({"cell": cell, "hidden_size": H, "num_layers": layers, "bidirectional": bidirectional})


@pytest.mark.parametrize("cell", list(REGISTRY))
def test_the_estimate_bounds_the_allocation_events_of_the_default_path(cell):
    estimate = step_bytes(model_cfg(cell), T, B, I, 4)
    peak = measured_peak(cell, None)
    assert peak <= estimate <= 3 * peak, (estimate, peak)  # 3x: the heaviest path may be another


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(REGISTRY))
def test_the_estimate_bounds_every_paths_allocation_events(cell):
    paths = [p for p in REGISTRY[cell].paths if p not in SLOW_PATHS] or [None]
    peaks = {p: measured_peak(cell, p) for p in paths}
    estimate = step_bytes(model_cfg(cell), T, B, I, 4)
    assert all(peak <= estimate for peak in peaks.values()), (estimate, peaks)
    assert estimate <= 1.5 * max(peaks.values()), (estimate, peaks)  # saved_floats not set generously
    deep = measured_peak(cell, paths[0], bidirectional=True, layers=2)
    assert deep <= step_bytes(model_cfg(cell, 2, True), T, B, I, 4)


def test_a_point_too_large_for_the_machine_is_refused_before_any_work(make_cfg, tmp_path):
    cfg = make_cfg(["data.seq_len=10000000", f"results_dir={tmp_path / 's'}"])
    with pytest.raises(ConfigError, match=r"^the point needs about [\d.,]+ GB \(estimated from its shapes: "
                                          r"data.seq_len=10000000, .*set max_memory_gb=<GB> to run it anyway"):
        resolve(cfg)
    assert not (tmp_path / "s").exists()


def test_max_memory_gb_overrides_the_limit_and_is_not_hashed(make_cfg):
    big = resolve(make_cfg(["data.seq_len=10000000", "max_memory_gb=100000"]))
    assert big.chash == resolve(make_cfg(["data.seq_len=10000000", "max_memory_gb=200000"])).chash
    assert resolve(make_cfg(["max_memory_gb=1000"])).chash == resolve(make_cfg([])).chash
    with pytest.raises(ConfigError, match=r"more than max_memory_gb=1e-06"):
        resolve(make_cfg(["max_memory_gb=0.000001"]))
    with pytest.raises(ConfigError, match="max_memory_gb=-1.0: must be > 0"):
        resolve(make_cfg(["max_memory_gb=-1"]))
