"""The cell registry: one entry per `model.cell`, everything the suite needs to know of a cell.

The `model.cell` choices (validated in bench/config/validate.py), the backend rule
(bench/run/device.py), the FLOP count (throughput), the single-step function and the gate the
theory columns read (bench/measures/theory.py), the allowed initialisations (bench/cells/init.py)
and the analysis' cell families all come from here. Each cell registers next to its class
(classic.py, diagonal.py, lru.py, xlstm.py, indrnn.py); adding one is its `register(CellSpec(...))` there, its
`conf/model/<name>.yaml` and its tests (docs/architecture.md, "How to add").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells.flops import step_flops

State = Tuple[Tensor, ...]
StepFn = Callable[[Tensor, State], State]


@dataclass(frozen=True)
class CellSpec:
    """What the suite knows of one cell.

    family (FAMILIES): `lstm` (gated, with a cell state), `gru` (gated, no cell state), `plain` (no gates),
        `diagonal` (gates of the input only: h_t = a_t h_{t-1} + b_t, trainable by parallel scan),
        `exponential` (sLSTM: exponential gates, normaliser and stabiliser states).
    module: the class the builder returns (`spec_of` finds a module's entry by it).
    builder(input_size, hidden_size, num_layers=, bidirectional=, nonlinearity=) -> a module with
        torch.nn.LSTM's call contract and parameter names (weight_ih_l{k}[_reverse], ...).
    gates: gate blocks per weight matrix (G): the FLOP count and the per-block initialisation.
    state_size: tensors in the recurrent state (1: h; 2: h, c).
    fused: device -> the fused backend that can run the cell there (`onednn`, `cudnn`).
    step(layer): one forward-direction step (x_t, state) -> state of a single-layer module.
    memory_gate: index of the gate block whose value multiplies the old state on the diagonal
        path (LSTM: forget; GRU: update z), or None; the gate-theory column and chrono read it.
    keep: for cells whose memory gate is not a sigmoid block of (W_ih, W_hh) (the diagonal
        cells): (layer, x) -> the factor a_t multiplying h_{t-1}, (T, B, H).
    scan: the cell's default for `model.scan` (True: parallel scan, False: loop), or None where
        the cell has one path only.
    paths: the `model.path` values the cell runs (bench/cells/recurrence.py PATHS), empty where it
        has one path only.
    forget_gates: the `model.forget_gate` forms a cell takes (its default first), or None.
    recurrent_matrix: whether the cell has W_hh (the parameter and FLOP counts, the spectrum).
    param_count, flop_count: for a cell whose weights are not G gate blocks of (W_ih, W_hh) (the
        LRU), its own counts with the signatures of `params` and `flops`.
    saved_floats: the floats one training step allocates per hidden unit, time step, layer and
        direction, the peak of torch's allocation events over the cell's paths and backends,
        rounded up: the pre-flight's memory estimate (bench/measures/memory.py). The default is
        generous, so that a new cell is over-estimated until its test (tests/test_memory.py,
        which holds every entry to the events) sets its own.
    """
    name: str
    family: str
    module: type
    builder: Callable[..., nn.Module]
    gates: int
    state_size: int
    step: Callable[[nn.Module], StepFn]
    fused: Dict[str, str] = field(default_factory=dict)
    memory_gate: Optional[int] = None
    inits: FrozenSet[str] = frozenset({"default", "orthogonal", "identity", "xavier"})
    nonlinearities: Tuple[str, ...] = ("tanh",)
    keep: Optional[Callable[[nn.Module, Tensor], Tensor]] = None
    scan: Optional[bool] = None
    paths: Tuple[str, ...] = ()
    recurrent_matrix: bool = True
    param_count: Optional[Callable[..., int]] = None
    flop_count: Optional[Callable[..., Tuple[int, int]]] = None
    forget_gates: Optional[Tuple[str, ...]] = None  # `model.forget_gate` choices, first the default
    saved_floats: float = 32.0
    description: str = ""

    def flops(self, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
              seq_len: int, batch_size: int) -> Tuple[int, int]:
        """(forward, backward) matmul FLOPs of one training pass (bench/cells/flops.py)."""
        if self.flop_count is not None:
            return self.flop_count(input_size, hidden_size, num_layers, bidirectional, seq_len, batch_size)
        return step_flops(self.gates, input_size, hidden_size, num_layers, bidirectional, seq_len,
                          batch_size, recurrent=self.recurrent_matrix)

    def params(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False) -> int:
        """Parameters of the recurrent core: G * D * sum over layers of H * (in_k + H + 2)."""
        if self.param_count is not None:
            return self.param_count(input_size, hidden_size, num_layers, bidirectional)
        D, H = (2 if bidirectional else 1), hidden_size
        per_unit = (lambda i: i + H + 2) if self.recurrent_matrix else (lambda i: i + 1)
        return sum(self.gates * D * H * per_unit(input_size if k == 0 else D * H) for k in range(num_layers))

    def hidden_for_budget(self, budget: int, input_size: int, num_layers: int = 1,
                          bidirectional: bool = False) -> int:
        """The hidden size whose core parameter count is closest to `budget` (equal-parameter
        comparisons, `model.param_budget`)."""
        count = lambda h: self.params(input_size, h, num_layers, bidirectional)
        h = 1
        while count(h + 1) <= budget:
            h += 1
        return h + 1 if abs(count(h + 1) - budget) < abs(count(h) - budget) else h

    def memory_gate_values(self, layer: nn.Module, x: Tensor, h_prev: Tensor) -> Optional[Tensor]:
        """The memory gate (T, B, H) of a single-layer module along a trajectory, or None."""
        if self.keep is not None:
            return self.keep(layer, x)
        if self.memory_gate is None:
            return None
        H = layer.hidden_size
        s = slice(self.memory_gate * H, (self.memory_gate + 1) * H)
        b = layer.bias_ih_l0[s] + layer.bias_hh_l0[s]
        return torch.sigmoid(x @ layer.weight_ih_l0[s].T + h_prev @ layer.weight_hh_l0[s].T + b)


REGISTRY: Dict[str, CellSpec] = {}
# The cell families (CellSpec.family); `cec`: the 1997 LSTM's constant error carousel (no forget gate).
FAMILIES = ("lstm", "gru", "plain", "diagonal", "exponential", "cec")


def register(spec: CellSpec) -> CellSpec:
    if spec.family not in FAMILIES:
        raise ValueError(f"cell {spec.name!r}: family {spec.family!r} is not one of {FAMILIES}")
    if spec.name in REGISTRY:
        raise ValueError(f"cell {spec.name!r} is registered twice")
    REGISTRY[spec.name] = spec
    return spec


# A preset's sweep value that stands for every registered cell, in registry order (the CI presets:
# a new cell is measured there without editing them).
ALL_CELLS = "registered"


def sweep_value(key: str, value):
    """A preset's sweep value with `model.cell: registered` spelt out as the registered cells."""
    if key == "model.cell" and str(value).strip() == ALL_CELLS:
        import bench.cells  # noqa: F401 - the cell modules register themselves on import
        return ",".join(REGISTRY)
    return value


def spec(name: str) -> CellSpec:
    if name not in REGISTRY:
        raise KeyError(f"model.cell={name}: not a registered cell (registered: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def spec_of(module: nn.Module) -> CellSpec:
    """The registry entry of a built module (or of one of its layer_stack copies)."""
    for entry in REGISTRY.values():
        if type(module) is entry.module:
            return entry
    raise KeyError(f"{type(module).__name__}: no registered cell builds this module")


def cell_rank(name: str) -> int:
    """A cell's place in registry order, by which tables, figures and summaries list cells; a
    name that is not registered comes last."""
    return list(REGISTRY).index(name) if name in REGISTRY else len(REGISTRY)


def family(name: str) -> Tuple[str, ...]:
    """The registered cells of one family, e.g. family('lstm') -> ('lstm', 'ref_lstm')."""
    return tuple(n for n, s in REGISTRY.items() if s.family == name)


def weights(layer: nn.Module):
    """(W_ih, W_hh, b_ih, b_hh) of a single-layer module's forward direction."""
    return layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0
