"""The rules a type cannot express, checked before any work: the registries' choices (cells,
tasks, measures), ranges and cross-key rules. Each raises ConfigError naming the key."""
from __future__ import annotations

import difflib
from enum import Enum
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bench.cells.registry import REGISTRY, family
from bench.config.errors import ConfigError
from bench.config.keys import bad_number, unknown_key
from bench.config.schema import INITS, LongRangeConfig
from bench.tasks.registry import TASK_KEYS, TASKS


def choice(key: str, value: Any, allowed, what: str) -> None:
    """ConfigError naming `key`, the nearest allowed value (difflib) and every allowed one."""
    if value in allowed:
        return
    near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f"; did you mean {key}={near[0]}?" if near else ""
    raise ConfigError(f"{key}={value}: not {what}{hint} (allowed: {', '.join(map(str, allowed))})")


def validate(cfg: DictConfig) -> None:
    """Range and cross-key rules; raises ConfigError naming the first offending key."""
    problem = unknown_key(cfg) or bad_number(OmegaConf.to_container(cfg))
    if problem:  # a key added with `+`, a float that is not finite, a seed beyond int64
        raise ConfigError(problem)
    if cfg.get("max_memory_gb") is not None and not cfg.max_memory_gb > 0:
        raise ConfigError(f"max_memory_gb={cfg.max_memory_gb}: must be > 0 (null: the machine's memory)")
    for key in ("model.input_size", "model.hidden_size", "model.num_layers",
                "data.seq_len", "data.batch_size"):
        value = OmegaConf.select(cfg, key)
        if value is None or value < 1:
            raise ConfigError(f"{key}={value}: must be a positive int")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads}: must be a positive int or null")
    validate_model(cfg.model)
    if cfg.suite:
        raise ConfigError(f"experiment is a suite of {list(cfg.suite)}: run it with "
                          "`python -m bench.run.suite NAME` or `make bench EXP=NAME`")
    if cfg.get("select") is not None:
        raise ConfigError(f"experiment is a selection stage (rule {cfg.select.rule} on "
                          f"{list(cfg.select.tune)}): run it with `python -m bench.run.suite NAME`")
    import bench.measures  # noqa: F401 - registers every measure
    from bench.measures.registry import measure_spec  # late: the measures import torch

    measure_spec(cfg.measure.name).check(cfg)


def check_task(cfg: DictConfig) -> None:
    """The long_range task's own rules, from its registry entry: the keys it reads, its lengths."""
    m, T = cfg.measure, cfg.data.seq_len
    choice("measure.task", _value(m.task), list(TASKS), "a registered task")
    task = TASKS[_value(m.task)]
    for key in TASK_KEYS:  # a task key set away from its default on a task that ignores it
        default = getattr(LongRangeConfig, key)
        if key not in task.keys and key in ("min_len", "length_spread") and m[key] != default:
            users = [t.name for t in TASKS.values() if key in t.keys]
            raise ConfigError(f"measure.{key}={m[key]}: only for measure.task in {users}, "
                              f"not for measure.task={task.name}")
    problem = task.seq_len_rule(T, m)
    if problem:
        raise ConfigError(f"data.seq_len={T}: {problem}")
    if m.min_len is not None and not 1 <= m.min_len <= T:
        raise ConfigError(f"measure.min_len={m.min_len}: must be between 1 and data.seq_len={T}")
    if not (m.length_spread >= 0 and m.length_spread < float("inf")):
        raise ConfigError(f"measure.length_spread={m.length_spread}: must be a finite number >= 0")
    varying = (m.min_len is not None and m.min_len < T) or m.length_spread > 0
    if varying and cfg.model.bidirectional:
        raise ConfigError("model.bidirectional=true with sequences of varying length "
                          "(measure.min_len or measure.length_spread): the backward direction would "
                          "read the padding; use model.bidirectional=false")


def validate_model(m: DictConfig) -> None:
    """The model keys against the cell's registry entry: one line naming the keys."""
    cell = _value(m.cell)
    choice("model.cell", cell, list(REGISTRY), "a registered cell")
    entry = REGISTRY[cell]
    lstm_family = family("lstm")
    init, nonlin = _value(m.init), _value(m.nonlinearity)
    if m.forget_bias is not None and cell not in lstm_family:
        raise ConfigError(f"model.forget_bias={m.forget_bias}: only for the LSTM family "
                          f"(model.cell in {sorted(lstm_family)}), not for model.cell={cell}")
    if init not in entry.inits:
        raise ConfigError(f"model.init={init} with model.cell={cell}: allowed for {cell}: "
                          f"{', '.join(i for i in INITS if i in entry.inits)}")
    if nonlin not in entry.nonlinearities:
        raise ConfigError(f"model.nonlinearity={nonlin} with model.cell={cell}: allowed for {cell}: "
                          f"{', '.join(entry.nonlinearities)}")
    if m.scan is not None and entry.scan is None:
        raise ConfigError(f"model.scan={str(m.scan).lower()} with model.cell={cell}: {cell} has one "
                          f"path only (model.scan is for {', '.join(n for n, e in REGISTRY.items() if e.scan is not None)})")
    validate_path(m, cell, entry)
    if m.forget_gate is not None:
        if entry.forget_gates is None:
            users = [n for n, e in REGISTRY.items() if e.forget_gates is not None]
            raise ConfigError(f"model.forget_gate={m.forget_gate} with model.cell={cell}: only for "
                              f"model.cell in {users}")
        if m.forget_gate not in entry.forget_gates:
            raise ConfigError(f"model.forget_gate={m.forget_gate}: allowed for {cell}: "
                              f"{', '.join(entry.forget_gates)}")
    if not m.gain > 0:
        raise ConfigError(f"model.gain={m.gain}: must be > 0 (it scales the recurrent matrix)")
    if init == "chrono" and m.forget_bias is not None:
        raise ConfigError(f"model.init=chrono with model.forget_bias={m.forget_bias}: both set the "
                          "forget-gate bias; use one")
    if m.chrono_tmax is not None and init != "chrono":
        raise ConfigError(f"model.chrono_tmax={m.chrono_tmax} with model.init={init}: chrono_tmax "
                          "is chrono's T_max; set model.init=chrono or drop it")
    if m.chrono_tmax is not None and m.chrono_tmax < 2:
        raise ConfigError(f"model.chrono_tmax={m.chrono_tmax}: must be >= 2")
    if m.param_budget is not None and m.param_budget < entry.params(m.input_size, 1, m.num_layers, m.bidirectional):
        raise ConfigError(f"model.param_budget={m.param_budget}: below the smallest {cell} "
                          f"({entry.params(m.input_size, 1, m.num_layers, m.bidirectional)} parameters at hidden_size=1)")


def validate_path(m: DictConfig, cell: str, entry) -> None:
    """model.path and model.chunk against the cell's paths (CellSpec.paths) and model.scan."""
    path = _value(m.get("path"))
    if path is not None:
        if not entry.paths:
            raise ConfigError(f"model.path={path} with model.cell={cell}: {cell} has one path only "
                              f"(model.path is for {', '.join(n for n, e in REGISTRY.items() if e.paths)})")
        choice("model.path", path, list(entry.paths), f"a path of {cell}")
        if m.scan is not None and path != ("scan" if m.scan else "loop"):
            raise ConfigError(f"model.path={path} with model.scan={str(m.scan).lower()}: model.scan names "
                              f"path {'scan' if m.scan else 'loop'}; set one of the two")
    chunk = m.get("chunk")
    if chunk is not None:
        if path != "chunked":
            raise ConfigError(f"model.chunk={chunk} with model.path={path}: the chunk size is for "
                              "model.path=chunked only")
        if chunk < 1:
            raise ConfigError(f"model.chunk={chunk}: must be a positive int")


def validate_on_device(cfg: DictConfig, device: str) -> None:
    """Rules that need the resolved device."""
    path = _value(cfg.model.get("path"))
    if path in ("cpp", "compiled") and device != "cpu":
        raise ConfigError(f"model.path={path} with device={device}: its C++ recurrence runs on the CPU only "
                          "(allowed there: loop, fused_loop, scan, chunked)")
    if cfg.measure.get("tf32", False) and device != "cuda":
        raise ConfigError(f"measure.tf32=true: TF32 is a CUDA math mode, not available on "
                          f"device={device} (allowed there: measure.tf32=false)")


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x
