"""Typed configuration: the schema Hydra composes `conf/*.yaml` against.

Keys spell what `torch.nn.LSTM` spells. OmegaConf rejects unknown keys, wrong types and
values outside an Enum at composition time; bench/config/validate.py adds the registries' choices
(`model.cell`, `measure.task`), the range and cross-key rules that a type cannot express. Both
run before any point is measured. This module imports neither torch nor the registries, so that
`--help` and `--cfg job` stay fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# `model.init` (bench/cells/init.py applies them).
INITS = ("default", "orthogonal", "identity", "xavier", "chrono")
Init = Enum("Init", {name: name for name in INITS}, type=str)


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


class Optimizer(str, Enum):
    adam = "adam"        # the default recipe
    rmsprop = "rmsprop"  # decay 0.9: Arjovsky et al. (2016)'s copy-memory protocol
    sgd = "sgd"          # plain: Le et al. (2015)'s protocol


@dataclass
class ModelConfig:
    cell: str = "lstm"  # a registered cell (bench/cells/registry.py); checked by validate
    input_size: int = 32
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    # Added to the forget-gate slice of every bias (LSTM family only); null = PyTorch default.
    forget_bias: Optional[float] = None
    # Initialisation (bench/cells/init.py): default (PyTorch's), orthogonal, identity, xavier,
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
    # Diagonal cells: the recurrence's path, bench/cells/recurrence.py PATHS (loop and scan are what
    # model.scan false and true name; fused_loop, chunked, cpp, compiled the linear-space
    # kernels); null = what model.scan says. chunk: the chunked path's C (null: DEFAULT_CHUNK).
    path: Optional[str] = None
    chunk: Optional[int] = None
    # sLSTM's forget gate: exponential (null: the paper's equations) or sigmoid (the official
    # xLSTM code's, with its bias and recurrent-weight initialisation; bench/cells/xlstm.py).
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
    # gradients decay into subnormals, which some CPUs handle far slower; the CPU-cost study
    # (`make bench EXP=cpu_cost`) measures what it costs on this one.
    flush_denormal: bool = True
    loss: Loss = Loss.last  # where the training loss sits (analysis/report/sections/cpu_cost.py)
    # The round of an interleaved measurement (bench/run/rounds.py): each round is its own point;
    # null: measured once.
    round: Optional[int] = None


@dataclass
class LongRangeConfig:
    name: str = "long_range"
    task: str = "adding"  # a registered task (bench/tasks/registry.py); checked by validate
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
    """A preset's nested-selection stage (bench/run/suite.py): the recipe of each group is chosen by
    `rule` (analysis/select.py, RULES) on the tuning presets' points, then run at `seeds`."""
    rule: str = MISSING
    tune: List[str] = field(default_factory=list)  # the tuning presets, measured first, same store
    seeds: List[int] = field(default_factory=list)  # the reported seeds (>= 100)
    # continue: only the chosen configurations with an unsolved reported seed, run with `overrides`
    unsolved: bool = False
    overrides: List[str] = field(default_factory=list)


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
    # The pre-flight refuses a point whose memory, estimated from its shapes (bench/measures/memory.py),
    # exceeds this many GB; null: the machine's (RAM, or the GPU's for device=cuda). How to run,
    # not what: never hashed or recorded.
    max_memory_gb: Optional[float] = None
    force: bool = False
    progress: bool = True
    suite: List[str] = field(default_factory=list)  # set by suite presets (bench/run/suite.py)
    select: Optional[SelectConfig] = None  # set by selection presets (bench/run/suite.py)
    rounds: Optional[int] = None  # set by presets measured in interleaved rounds (bench/run/rounds.py)


MEASURE_SCHEMAS = {"gradients": GradientsConfig, "throughput": ThroughputConfig,
                   "long_range": LongRangeConfig}
# Model keys added after records were first stored: at these values they are left out of the
# configuration hash (bench/run/records.py), so that stored points keep their hashes.
MODEL_DEFAULTS = {"init": "default", "gain": 1.0, "nonlinearity": "tanh", "chrono_tmax": None,
                  "param_budget": None, "scan": None, "forget_gate": None,
                  "path": None, "chunk": None}
# The same for measure keys, by their record column; per measure (the rows they are filled into).
MEASURE_DEFAULTS = {"throughput": {"measure_loss": "last", "measure_round": None},
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
    cs.store(group="hydra/sweeper", name="bench", node=BenchSweeperConf)


@dataclass
class BenchSweeperConf:
    """The sweeper of hydra_plugins/rnn_bench: validates every point before any is measured."""
    _target_: str = "hydra_plugins.rnn_bench.sweeper.BenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
