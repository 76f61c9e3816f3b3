"""The cell registry and the initialisation schemes: every registered cell has its YAML and
the reverse; each scheme does what its reference says; nonsense combinations are refused in one
line naming the keys; new keys at their defaults keep stored points' hashes."""
import math
from pathlib import Path

import pytest
import torch

from bench.cells.build import build_model
from bench.cells.registry import FAMILIES, REGISTRY, family, spec, spec_of
from bench.config.errors import ConfigError
from bench.config.validate import validate
from bench.run.device import effective_backend
from bench.run.records import config_hash
from bench.run.runner import resolve

CONF = Path(__file__).resolve().parent.parent / "conf" / "model"


def test_every_registered_cell_has_a_yaml_and_every_yaml_a_cell():
    yamls = {p.stem for p in CONF.glob("*.yaml")}
    assert yamls == set(REGISTRY), f"without YAML: {set(REGISTRY) - yamls}; without entry: {yamls - set(REGISTRY)}"
    for name in REGISTRY:
        assert f"cell: {name}" in (CONF / f"{name}.yaml").read_text()


@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_entry_is_consistent_with_the_module_it_builds(cell):
    s = spec(cell)
    model = build_model(cell, 3, 4, 2, True)
    assert type(model) is s.module and spec_of(model) is s
    assert s.family in FAMILIES
    assert (s.memory_gate is None and s.keep is None) == (s.family == "plain")
    weight = model.weight_hh_l0 if s.recurrent_matrix else model.weight_ih_l0
    assert weight.shape[0] == s.gates * 4
    assert s.recurrent_matrix == hasattr(model, "weight_hh_l0")
    assert effective_backend(cell, "cpu", "float64", "auto") == "native"
    if "cpu" not in s.fused:
        assert effective_backend(cell, "cpu", "float32", "auto") == "native"


def test_families_come_from_the_registry():
    assert set(family("lstm")) == {"lstm", "ref_lstm"} and family("gru") == ("gru",)


def blocks(w, H):
    return w.detach().double().split(H, 0)


@pytest.mark.parametrize("cell", sorted(REGISTRY))
@pytest.mark.parametrize("gain", [0.5, 1.0, 1.5])
def test_orthogonal_and_identity_recurrent_blocks_times_gain(cell, gain):
    H = 6
    for init in ("orthogonal", "identity"):
        if init not in spec(cell).inits:
            continue
        m = build_model(cell, 3, H, 2, True, init=init, gain=gain)
        for name, p in m.named_parameters():
            if name.startswith("weight_hh"):
                for blk in blocks(p, H):
                    assert torch.allclose(blk @ blk.T, gain ** 2 * torch.eye(H, dtype=torch.float64), atol=1e-6)
                    if init == "identity":
                        assert torch.allclose(blk, gain * torch.eye(H, dtype=torch.float64))
            elif name.startswith("bias"):
                assert p.abs().max() == 0


def test_xavier_bounds_and_gain_on_the_default_init():
    H, I = 8, 3
    m = build_model("gru", I, H, init="xavier")
    for blk in blocks(m.weight_ih_l0, H):
        assert blk.abs().max() <= math.sqrt(6 / (I + H)) + 1e-9
    torch.manual_seed(0)
    a = build_model("rnn", I, H)
    torch.manual_seed(0)
    b = build_model("rnn", I, H, gain=2.0)
    assert torch.allclose(b.weight_hh_l0, 2 * a.weight_hh_l0) and torch.equal(a.weight_ih_l0, b.weight_ih_l0)


@pytest.mark.parametrize("cell", ["lstm", "ref_lstm", "gru"])
def test_chrono_biases(cell):
    H, t_max = 16, 50
    m = build_model(cell, 3, H, 2, True, init="chrono", chrono_tmax=t_max)
    s = spec(cell)
    mem = slice(s.memory_gate * H, (s.memory_gate + 1) * H)
    for name, p in m.named_parameters():
        if name.startswith("bias_ih"):
            b = p[mem].detach()
            assert b.min() >= 0 and b.max() <= math.log(t_max - 1) + 1e-6 and b.std() > 0
            if s.family == "lstm":
                assert torch.equal(p[:H].detach(), -b)  # input gate = -forget gate
        elif name.startswith("bias_hh"):
            assert p[mem].abs().max() == 0


@pytest.mark.parametrize("overrides,message", [
    (["model.cell=rnn", "model.init=chrono"], "model.init=chrono with model.cell=rnn"),
    (["model.cell=lstm", "model.nonlinearity=relu"], "model.nonlinearity=relu with model.cell=lstm"),
    (["model.cell=lstm", "model.init=chrono", "model.forget_bias=1.0"], "model.init=chrono with model.forget_bias"),
    (["model.cell=gru", "model.chrono_tmax=40"], "model.chrono_tmax=40 with model.init=default"),
    (["model.cell=lstm", "model.init=chrono", "model.chrono_tmax=1"], "model.chrono_tmax=1: must be >= 2"),
    (["model.gain=0"], "model.gain=0"),
    (["model.cell=gru", "model.forget_bias=1.0"], "only for the LSTM family"),
])
def test_nonsense_combinations_are_refused_naming_the_keys(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(make_cfg(overrides))


def test_defaults_keep_stored_hashes_and_any_other_value_changes_them(make_cfg):
    plain = resolve(make_cfg(["model.cell=rnn"]))
    legacy = {k: v for k, v in plain.point.items() if k not in ("init", "gain", "nonlinearity", "chrono_tmax")}
    assert plain.chash == config_hash(legacy)  # as stored before the keys existed
    assert plain.point["init"] == "default" and plain.point["gain"] == 1.0  # recorded all the same
    hashes = {resolve(make_cfg(o)).chash for o in (["model.cell=rnn"], ["model.cell=rnn", "model.gain=0.9"],
              ["model.cell=rnn", "model.init=orthogonal"], ["model.cell=rnn", "model.nonlinearity=relu"])}
    assert len(hashes) == 4


def test_chrono_tmax_defaults_to_the_sequence_length(make_cfg):
    r = resolve(make_cfg(["model.cell=lstm", "model.init=chrono", "data.seq_len=40"]))
    assert r.point["chrono_tmax"] == 40
    assert r.chash == resolve(make_cfg(["model.cell=lstm", "model.init=chrono", "data.seq_len=40",
                                        "model.chrono_tmax=40"])).chash


@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_param_budget_picks_the_closest_width_and_is_recorded(make_cfg, cell):
    r = resolve(make_cfg([f"model.cell={cell}", "model.param_budget=17408", "model.input_size=2"]))
    H, s = r.point["hidden_size"], spec(cell)
    assert r.point["param_budget"] == 17408
    assert sum(p.numel() for p in build_model(cell, 2, H).parameters()) == s.params(2, H)
    assert abs(s.params(2, H) - 17408) <= min(abs(s.params(2, h) - 17408) for h in (H - 1, H + 1))
    if cell in ("lstm", "ref_lstm"):
        assert H == 64  # the budget is the LSTM's at hidden 64


def test_param_budget_below_the_smallest_model_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="model.param_budget=3: below the smallest lstm"):
        validate(make_cfg(["model.cell=lstm", "model.param_budget=3"]))
