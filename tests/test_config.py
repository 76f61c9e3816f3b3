"""Every config file composes; bad input is refused before any work, naming the key."""
from pathlib import Path

import pytest
import torch

from bench.cells.registry import REGISTRY
from bench.config.errors import ConfigError
from bench.run.runner import resolve
from tests.conftest import CONF, run_cli, run_main

GROUP_FILES = {g: sorted(p.stem for p in (Path(CONF) / g).glob("*.yaml"))
               for g in ("model", "measure", "experiment")}


@pytest.mark.parametrize("group,name", [(g, n) for g, names in GROUP_FILES.items() for n in names])
def test_every_config_file_composes(make_cfg, group, name):
    cfg = make_cfg([f"{group}={name}"])
    if cfg.get("suite"):  # a suite preset names other presets; each of those must exist
        assert set(cfg.suite) <= set(GROUP_FILES["experiment"])
        return
    if cfg.get("select") is not None:  # a selection stage: its tuning presets and a known rule
        from analysis.select import RULES
        assert set(cfg.select.tune) <= set(GROUP_FILES["experiment"]) and cfg.select.rule in RULES
        assert min(cfg.select.seeds) >= 100
        return
    if cfg.device.value == "cuda" and not torch.cuda.is_available():  # GPU presets: refused here
        with pytest.raises(ConfigError, match="device=cuda"):
            resolve(cfg)
        return
    r = resolve(cfg)
    assert r.device in ("cpu", "cuda") and len(r.chash) == 16


def test_model_group_and_cell_key_agree(make_cfg):
    assert make_cfg(["model=gru"]).model.cell == "gru"
    assert make_cfg(["model.cell=rnn"]).model.cell == "rnn"


@pytest.mark.parametrize("override,message", [
    ("data.seq_len=0", "data.seq_len=0: must be a positive int"),
    ("data.batch_size=-2", "data.batch_size=-2: must be a positive int"),
    ("model.hidden_size=0", "model.hidden_size=0: must be a positive int"),
    ("model.num_layers=0", "model.num_layers=0: must be a positive int"),
])
def test_range_errors_name_the_key(make_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        resolve(make_cfg([override]))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_forget_bias_refused_outside_lstm_family(make_cfg, cell):
    with pytest.raises(ConfigError, match="model.forget_bias"):
        resolve(make_cfg([f"model.cell={cell}", "model.forget_bias=1"]))


def test_cuda_refused_without_gpu(make_cfg):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="device=cuda"):
        resolve(make_cfg(["device=cuda"]))


def test_backend_refused_on_wrong_device(make_cfg):
    with pytest.raises(ConfigError, match="measure.backend=cudnn"):
        resolve(make_cfg(["measure=throughput", "measure.backend=cudnn", "device=cpu"]))
    with pytest.raises(ConfigError, match="measure.backend=onednn"):
        resolve(make_cfg(["measure=throughput", "measure.backend=onednn", "model.cell=rnn"]))


def test_hash_ignores_run_only_keys(make_cfg):
    a = resolve(make_cfg(["results_dir=/a", "force=true"])).chash
    b = resolve(make_cfg(["results_dir=/b"])).chash
    c = resolve(make_cfg(["data.seq_len=7"])).chash
    assert a == b != c


# One subprocess per class of bad input: exit non-zero, a named key, no traceback, no store.
@pytest.mark.parametrize("args,needle", [
    (["model.cell=foo"], "model.cell"),
    (["model.hidden=3"], "model.hidden"),
    (["model.hidden_size=abc"], "model.hidden_size"),
    (["data.seq_len=0"], "data.seq_len=0"),
    (["model.cell=gru", "model.forget_bias=1"], "model.forget_bias"),
    (["-m", "model.cell=rnn,foo"], "model.cell=foo: not a registered cell (allowed: " + ", ".join(REGISTRY)),
    (["dtype=float16"], "dtype=float16: not an allowed value; did you mean dtype=bfloat16? (allowed: float32, float64, bfloat16)"),
    (["measure=nope"], "measure=nope: not an option of measure (allowed: gradients, long_range, throughput)"),
])
def test_cli_refuses_bad_input(tmp_path, args, needle):
    """In process (bench.run.cli.main, what `python -m bench` runs); the cases below show the same
    from a user's shell."""
    store = tmp_path / "store"
    proc = run_main([*args, f"results_dir={store}"])
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no traceback
    assert not store.exists()


@pytest.mark.parametrize("args,needle", [(["model.hidden=3"], "model.hidden"),
                                         (["-m", "model.cell=rnn,foo"], "model.cell=foo: not a registered cell")])
def test_cli_refuses_bad_input_from_the_shell(tmp_path, args, needle):
    store = tmp_path / "store"
    proc = run_cli(["bench", *args, f"results_dir={store}"])
    assert proc.returncode == 2 and needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not store.exists()


@pytest.mark.parametrize("overrides,message", [
    (["measure=throughput", "measure.min_reps=10", "measure.max_reps=5"],
     "measure.max_reps=5 is below measure.min_reps=10"),
    (["measure=throughput", "measure.lr=0"], "measure.lr=0.0: must be > 0"),
    (["measure=long_range", "measure.lr=-1e-3"], "measure.lr=-0.001: must be > 0"),
    (["measure=long_range", "measure.clip=0"], "measure.clip=0.0: must be > 0"),
    (["measure=long_range", "measure.solve_mse=0"], "measure.solve_mse=0.0: must be > 0"),
    (["measure=long_range", "measure.task=adding_hs97", "data.seq_len=20"],
     "adding_hs97 needs seq_len >= 22"),
    (["measure=throughput", "measure.tf32=true", "device=cpu"], "measure.tf32=true: TF32 is a CUDA math mode"),
])
def test_measure_settings_out_of_range_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve(make_cfg(overrides))


def test_keys_a_measure_ignores_do_not_split_points(make_cfg):
    """long_range takes its input width from the task and copy_symbols only for copy: setting
    them otherwise names the same point (one hash), and the record shows the width used."""
    a = resolve(make_cfg(["measure=long_range", "model.input_size=64"]))
    b = resolve(make_cfg(["measure=long_range", "model.input_size=3", "measure.copy_symbols=4"]))
    assert a.chash == b.chash and a.point["input_size"] == 2
    assert resolve(make_cfg(["measure=long_range", "measure.task=copy"])).point["input_size"] == 10


def test_measure_version_and_torch_version_decide_reuse(make_cfg, monkeypatch):
    import dataclasses

    from bench.measures.registry import MEASURES
    r = resolve(make_cfg([]))
    assert r.point["measure_version"] >= 2 and r.point["torch_version"] == torch.__version__
    monkeypatch.setitem(MEASURES, "gradients", dataclasses.replace(MEASURES["gradients"],
                                                                   version=r.point["measure_version"] + 1))
    assert resolve(make_cfg([])).chash != r.chash
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert resolve(make_cfg([])).chash != r.chash


def test_classify_overflow_only_for_arithmetic_overflow():
    from bench.run.runner import classify
    assert classify(OverflowError("math range error")) == "overflow"
    assert classify(RuntimeError("value cannot be converted to type int without overflow")) == "failed"


def test_sweep_over_measures_cannot_slip_a_timed_one_past_the_parallel_launcher(tmp_path):
    proc = run_cli(["bench", "-m", "measure=gradients,throughput", "hydra/launcher=local_parallel",
                    "model.hidden_size=8", "data.seq_len=5", f"results_dir={tmp_path / 's'}"])
    assert proc.returncode == 2 and "measure=throughput is timed" in proc.stderr
    assert not (tmp_path / "s").exists()
