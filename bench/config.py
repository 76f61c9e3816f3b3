"""Typed configuration: the schema Hydra composes `conf/*.yaml` against.

Keys spell what `torch.nn.LSTM` spells. OmegaConf rejects unknown keys, wrong types and
values outside an Enum at composition time; `validate` adds the range and cross-key rules
that a type cannot express. Both run before any point is measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from bench.recurrence import PATHS
from bench.registry import INITS, REGISTRY, family
from bench.tasks import TASK_KEYS, TASKS

# The `model.cell` choices are the registered cells (bench/registry.py).
Cell = Enum("Cell", {name: name for name in REGISTRY}, type=str)
Init = Enum("Init", {name: name for name in INITS}, type=str)
# The `model.path` choices: how a diagonal cell runs its recurrence (bench/recurrence.py).
RecurrencePath = Enum("RecurrencePath", {name: name for name in PATHS}, type=str)


class Nonlinearity(str, Enum):
    tanh = "tanh"
    relu = "relu"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"
    bfloat16 = "bfloat16"


class Backend(str, Enum):
    auto = "auto"      # whatever torch picks: oneDNN for nn.LSTM on CPU, cuDNN on GPU
    native = "native"  # oneDNN and cuDNN switched off: every cell runs aten's own loop
    onednn = "onednn"  # CPU only; an error where oneDNN cannot run the cell
    cudnn = "cudnn"    # CUDA only


class Loss(str, Enum):
    last = "last"    # on the readout (the last step, both ends when bidirectional): gradients decay
    every = "every"  # on every step's output: gradients stay in the normal range


# The `measure.task` choices are the registered tasks (bench/tasks.py, TASKS).
Task = Enum("Task", {name: name for name in TASKS}, type=str)


class Optimizer(str, Enum):
    adam = "adam"        # the default recipe
    rmsprop = "rmsprop"  # decay 0.9: Arjovsky et al. (2016)'s copy-memory protocol
    sgd = "sgd"          # plain: Le et al. (2015)'s protocol


@dataclass
class ModelConfig:
    cell: Cell = Cell.lstm
    input_size: int = 32
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    # Added to the forget-gate slice of every bias (LSTM family only); null = PyTorch default.
    forget_bias: Optional[float] = None
    # Initialisation (bench/init_schemes.py): default (PyTorch's), orthogonal, identity, xavier,
    # chrono (gated cells; T_max = chrono_tmax, null: data.seq_len); gain scales W_hh.
    init: Init = Init.default
    gain: float = 1.0
    nonlinearity: Nonlinearity = Nonlinearity.tanh  # rnn only
    chrono_tmax: Optional[int] = None
    # Equal-parameter comparisons: the hidden size is chosen so that the recurrent core has about
    # this many parameters (it replaces model.hidden_size; the chosen size is recorded).
    param_budget: Optional[int] = None
    # Diagonal cells (mingru, minlstm, lru): true = parallel scan, false = sequential loop;
    # null = the cell's default (scan). Refused for cells with one path only.
    scan: Optional[bool] = None
    # Diagonal cells: the recurrence's path, bench/recurrence.py PATHS (loop and scan are what
    # model.scan false and true name; fused_loop, chunked, cpp, compiled the linear-space
    # kernels); null = what model.scan says. chunk: the chunked path's C (null: DEFAULT_CHUNK).
    path: Optional[RecurrencePath] = None
    chunk: Optional[int] = None
    # sLSTM's forget gate: exponential (null: the paper's equations) or sigmoid (the official
    # xLSTM code's, with its bias and recurrent-weight initialisation; bench/xlstm.py).
    forget_gate: Optional[str] = None


@dataclass
class DataConfig:
    seq_len: int = 100
    batch_size: int = 32


@dataclass
class GradientsConfig:
    name: str = "gradients"
    # Fit window for decay_per_step, as fractions of the longest distance; recorded in rows.
    fit_start: float = 0.1
    fit_end: float = 0.9
    theory: bool = True  # predicted decay from the weights (gate argument, Jacobian Lyapunov)


@dataclass
class ThroughputConfig:
    name: str = "throughput"
    backend: Backend = Backend.auto
    tf32: bool = False
    warmup: int = 5
    min_reps: int = 10
    min_time_s: float = 1.0
    max_reps: int = 200
    noise_limit: float = 0.10  # relative IQR above which a point is re-measured once
    lr: float = 1e-3
    # Flush subnormal floats to zero on CPU while timing: a loss on the last step only lets
    # gradients decay into subnormals, which x86 handles ~15x slower (see README).
    flush_denormal: bool = True
    loss: Loss = Loss.last  # where the training loss sits (analysis/sections/cpu_cost.py)


@dataclass
class LongRangeConfig:
    name: str = "long_range"
    task: Task = Task.adding
    steps: int = 3000          # step budget
    eval_every: int = 50
    lr: float = 1e-3
    clip: float = 1.0          # gradient-norm clipping
    test_size: int = 512       # held-out batch
    solve_mse: float = 0.01    # adding problem: solved when test MSE is under this
    stop_when_solved: bool = True
    copy_symbols: int = 10     # copy and selective_copy: symbols to remember (alphabet of 8)
    flush_denormal: bool = True  # training speed (as throughput); profiles are taken in float64
    optimizer: Optimizer = Optimizer.adam
    # Final-label state-tracking tasks: training lengths drawn uniformly from [min_len, seq_len]
    # (null: every sequence seq_len long).
    min_len: Optional[int] = None
    # adding_hs97: lengths uniform on [seq_len, (1 + length_spread) seq_len] (the paper: 0.1).
    length_spread: float = 0.0


@dataclass
class SelectConfig:
    """A preset's nested-selection stage (bench/suite.py): the recipe of each group is chosen by
    `rule` (analysis/select.py, RULES) on the tuning presets' points, then run at `seeds`."""
    rule: str = MISSING
    tune: List[str] = field(default_factory=list)  # the tuning presets, measured first, same store
    seeds: List[int] = field(default_factory=list)  # the reported seeds (>= 100)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    measure: Any = MISSING
    device: Device = Device.auto
    dtype: Optional[DType] = None  # null: the measure's default (gradients float64, else float32)
    threads: Optional[int] = None  # torch intra-op threads; null: torch's default
    seed: int = 0
    results_dir: str = "results/store"
    force: bool = False
    progress: bool = True
    suite: List[str] = field(default_factory=list)  # set by suite presets (bench.suite)
    select: Optional[SelectConfig] = None  # set by selection presets (bench.suite)


MEASURE_SCHEMAS = {"gradients": GradientsConfig, "throughput": ThroughputConfig,
                   "long_range": LongRangeConfig}
LSTM_FAMILY = set(family("lstm"))
# Model keys added after records were first stored: at these values they are left out of the
# configuration hash (bench/records.py), so that stored points keep their hashes.
MODEL_DEFAULTS = {"init": "default", "gain": 1.0, "nonlinearity": "tanh", "chrono_tmax": None,
                  "param_budget": None, "scan": None, "forget_gate": None, "path": None, "chunk": None}
# The same for measure keys, by their record column; per measure (the rows they are filled into).
MEASURE_DEFAULTS = {"throughput": {"measure_loss": "last"},
                    "long_range": {"measure_optimizer": "adam", "measure_min_len": None,
                                   "measure_length_spread": 0.0}}
HASH_DEFAULTS = {**MODEL_DEFAULTS, **{k: v for keys in MEASURE_DEFAULTS.values() for k, v in keys.items()}}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (called by the entry points, never at import)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="model", name="base_model", node=ModelConfig)
    for name, schema in MEASURE_SCHEMAS.items():
        cs.store(group="measure", name=f"base_{name}", node=schema)
    from hydra_plugins.rnn_bench.sweeper import BenchSweeperConf  # validates every point first
    cs.store(group="hydra/sweeper", name="bench", node=BenchSweeperConf)


class ConfigError(ValueError):
    """A configuration the suite refuses; the message names the key and what is allowed."""


def validate(cfg: DictConfig) -> None:
    """Range and cross-key rules; raises ConfigError naming the first offending key."""
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
                          "`python -m bench.suite NAME` or `make bench EXP=NAME`")
    if cfg.get("select") is not None:
        raise ConfigError(f"experiment is a selection stage (rule {cfg.select.rule} on "
                          f"{list(cfg.select.tune)}): run it with `python -m bench.suite NAME`")
    measure = cfg.measure.name
    if measure not in MEASURE_SCHEMAS:
        raise ConfigError(f"measure={measure}: allowed {sorted(MEASURE_SCHEMAS)}")
    m = cfg.measure
    if measure == "gradients" and not (0 <= m.fit_start < m.fit_end <= 1):
        raise ConfigError("measure.fit_start, measure.fit_end: need 0 <= fit_start < fit_end <= 1")
    if measure == "throughput":
        for key in ("min_reps", "max_reps"):
            if m[key] < 1:
                raise ConfigError(f"measure.{key}={m[key]}: must be a positive int")
        if m.max_reps < m.min_reps:
            raise ConfigError(f"measure.max_reps={m.max_reps} is below measure.min_reps={m.min_reps}: "
                              "need max_reps >= min_reps")
        if m.warmup < 0 or m.min_time_s < 0:
            raise ConfigError("measure.warmup and measure.min_time_s: must be >= 0")
        if not m.noise_limit > 0:
            raise ConfigError(f"measure.noise_limit={m.noise_limit}: must be > 0")
    if measure in ("throughput", "long_range") and not m.lr > 0:
        raise ConfigError(f"measure.lr={m.lr}: must be > 0")
    if measure == "long_range":
        for key in ("steps", "eval_every", "test_size", "copy_symbols"):
            if m[key] < 1:
                raise ConfigError(f"measure.{key}={m[key]}: must be a positive int")
        for key in ("clip", "solve_mse"):
            if not m[key] > 0:
                raise ConfigError(f"measure.{key}={m[key]}: must be > 0")
        validate_task(cfg)


def validate_task(cfg: DictConfig) -> None:
    """The task's own rules, from its registry entry: the keys it reads, its shortest length."""
    m, T = cfg.measure, cfg.data.seq_len
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
    entry = REGISTRY[cell]
    init, nonlin = _value(m.init), _value(m.nonlinearity)
    if m.forget_bias is not None and cell not in LSTM_FAMILY:
        raise ConfigError(f"model.forget_bias={m.forget_bias}: only for the LSTM family "
                          f"(model.cell in {sorted(LSTM_FAMILY)}), not for model.cell={cell}")
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
        if path not in entry.paths:
            raise ConfigError(f"model.path={path} with model.cell={cell}: allowed for {cell}: {', '.join(entry.paths)}")
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
