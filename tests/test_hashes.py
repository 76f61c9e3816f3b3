"""Stored points keep their names: points of several presets resolve to the hashes they were stored
under (computed before the reliability work added keys such as `max_memory_gb`; the torch version,
part of every hash, pinned to the one they were computed with). The throughput points' hashes
moved once, on purpose, with throughput's measure version 3 (the compiled path timed compiled)."""
import pytest

from bench.run.records import config_hash
from bench.run.runner import resolve

TORCH = "2.13.0+cpu"
POINTS = [
    ("4360232f980004ff", "experiment=gradients_init_gain model.cell=rnn model.nonlinearity=tanh model.gain=0.5 seed=1"),
    ("f3fc49ac136772ab", "experiment=throughput_crossover_paths model.cell=mingru model.path=fused_loop data.seq_len=64"),
    ("a89b1a2c79f87291", "experiment=long_range_fair_gated model.cell=lstm measure.lr=0.0001 data.seq_len=50 seed=1"),
    ("816ddb024052dcfc", "experiment=state_tracking_slstm model.cell=slstm model.forget_gate=exponential "
                         "measure.task=parity_final measure.lr=0.001 seed=1"),
    ("a8af18b0eea35df3", "experiment=papers_hs97_lstm model.cell=lstm model.forget_bias=0.0 measure.lr=0.0001 seed=1"),
    ("ae1c3a2435135bb4", "experiment=throughput_quick model.cell=rnn measure.backend=auto model.hidden_size=64 "
                         "data.seq_len=25 model.bidirectional=True"),
    ("4611ba789e86734a", "experiment=cpu_cost_subnormal model.cell=rnn data.seq_len=50 measure.flush_denormal=True "
                         "measure.loss=every"),
    ("b5731765351d49c6", "experiment=modern_selective_copy model.cell=rnn seed=1"),
    ("36d8a7f91205b2ae", "experiment=gradients_ladder model.cell=lstm model.forget_bias=0 data.seq_len=200 seed=1"),
    ("309e9650e392f6f4", "experiment=papers_copy_rnn data.seq_len=100 seed=101"),
]


@pytest.mark.parametrize("chash,overrides", POINTS)
def test_preset_points_keep_their_hashes(make_cfg, chash, overrides):
    extra = ["max_memory_gb=1000", "results_dir=/elsewhere", "force=true", "progress=false"]  # how, not what
    for how in ([], extra):
        r = resolve(make_cfg(overrides.split() + how))
        assert config_hash({**r.point, "torch_version": TORCH}) == chash
