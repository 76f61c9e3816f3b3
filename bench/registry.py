"""The cell registry: one entry per `model.cell`, everything the suite needs to know of a cell.

The `model.cell` choices (bench/config.py), the backend rule (bench/device.py), the FLOP count
(throughput), the single-step function and the gate the theory columns read (theory.py), the
allowed initialisations (bench/init.py) and the analysis' cell families all come from here.
Adding a cell is one `register(CellSpec(...))` here plus `conf/model/<name>.yaml` and its parity
test (docs/architecture.md, "How to add").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Optional, Tuple

import torch
from torch import Tensor, nn

from bench.cells import LSTM1997, ReferenceLSTM, lstm_cell, step_flops
from bench.init_schemes import apply_init
from bench.modern import LRU, MinGRU, MinLSTM, SignedMinGRU
from bench.recurrence import PATHS
from bench.xlstm import FORGET_GATES, SLSTM, slstm_cell

State = Tuple[Tensor, ...]
StepFn = Callable[[Tensor, State], State]
INITS = ("default", "orthogonal", "identity", "xavier", "chrono")


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
    paths: the `model.path` values the cell runs (bench/recurrence.py PATHS), empty where it has
        one path only.
    forget_gates: the `model.forget_gate` forms a cell takes (its default first), or None.
    recurrent_matrix: whether the cell has W_hh (the parameter and FLOP counts, the spectrum).
    param_count, flop_count: for a cell whose weights are not G gate blocks of (W_ih, W_hh) (the
        LRU), its own counts with the signatures of `params` and `flops`.
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
    description: str = ""

    def flops(self, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
              seq_len: int, batch_size: int) -> Tuple[int, int]:
        """(forward, backward) matmul FLOPs of one training pass (bench.cells.step_flops)."""
        if self.flop_count is not None:
            return self.flop_count(input_size, hidden_size, num_layers, bidirectional, seq_len, batch_size)
        return step_flops(self.gates, input_size, hidden_size, num_layers, bidirectional, seq_len,
                          batch_size, recurrent=self.recurrent_matrix)

    def params(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False) -> int:
        """Parameters of the recurrent core: G * D * sum over layers of H * (in_k + H + 2)."""
        if self.param_count is not None:
            return self.param_count(input_size, hidden_size, num_layers, bidirectional)
        D, H = (2 if bidirectional else 1), hidden_size
        per_unit = (lambda i: i + H + 2) if self.recurrent_matrix else (lambda i: i + 1)  # noqa: E731
        return sum(self.gates * D * H * per_unit(input_size if k == 0 else D * H) for k in range(num_layers))

    def hidden_for_budget(self, budget: int, input_size: int, num_layers: int = 1,
                          bidirectional: bool = False) -> int:
        """The hidden size whose core parameter count is closest to `budget` (equal-parameter
        comparisons, `model.param_budget`)."""
        count = lambda h: self.params(input_size, h, num_layers, bidirectional)  # noqa: E731
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


def family(name: str) -> Tuple[str, ...]:
    """The registered cells of one family, e.g. family('lstm') -> ('lstm', 'ref_lstm')."""
    return tuple(n for n, s in REGISTRY.items() if s.family == name)


def build_model(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                bidirectional: bool = False, forget_bias: Optional[float] = None, init: str = "default",
                gain: float = 1.0, nonlinearity: str = "tanh", chrono_tmax: Optional[int] = None,
                scan: Optional[bool] = None, forget_gate: Optional[str] = None,
                path: Optional[str] = None, chunk: Optional[int] = None) -> nn.Module:
    """The registered model for `cell`, initialised by `init` (bench/init_schemes.py). The caller
    seeds torch's generator first (bench.measures.point.Point.build_model). `path` (a diagonal
    cell's `model.path`, bench/recurrence.py PATHS) overrides `scan`; `chunk` is the chunked path's C."""
    s = spec(cell)
    extra = {} if s.scan is None else {"scan": s.scan if scan is None else scan}
    if s.scan is not None and path is not None:
        extra.update(path=path, chunk=chunk)
    if s.forget_gates is not None:
        extra["forget_gate"] = forget_gate or s.forget_gates[0]
    model = s.builder(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                      nonlinearity=nonlinearity, **extra)
    return apply_init(model, s, init, gain, forget_bias, chrono_tmax)


# --- the classic cells ---------------------------------------------------------------------

def _weights(layer: nn.Module):
    return layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0


def _rnn_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = _weights(layer)
    act = torch.relu if getattr(layer, "nonlinearity", "tanh") == "relu" else torch.tanh
    return lambda x, s: (act(x @ w_ih.T + b_ih + s[0] @ w_hh.T + b_hh),)


def _gru_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = _weights(layer)

    def step(x: Tensor, s: State) -> State:
        gi, gh = (x @ w_ih.T + b_ih).chunk(3, -1), (s[0] @ w_hh.T + b_hh).chunk(3, -1)
        r, z = torch.sigmoid(gi[0] + gh[0]), torch.sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + r * gh[2])
        return ((1 - z) * n + z * s[0],)
    return step


def _lstm_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = _weights(layer)

    def step(x: Tensor, s: State) -> State:
        h, c, _ = lstm_cell(x @ w_ih.T + b_ih, s[0], s[1], w_hh, b_hh)
        return h, c
    return step


def _rnn(input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
         nonlinearity: str = "tanh") -> nn.Module:
    return nn.RNN(input_size, hidden_size, num_layers=num_layers, nonlinearity=nonlinearity,
                  bidirectional=bidirectional)


def _no_nonlinearity(cls):
    def build(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh"):
        return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional)
    return build


GATED_INITS = frozenset(INITS)
register(CellSpec("rnn", "plain", nn.RNN, _rnn, gates=1, state_size=1, step=_rnn_step,
                  fused={"cuda": "cudnn"}, nonlinearities=("tanh", "relu"),
                  description="Elman RNN, torch.nn.RNN (tanh or relu)"))
register(CellSpec("lstm", "lstm", nn.LSTM, _no_nonlinearity(nn.LSTM), gates=4, state_size=2, step=_lstm_step,
                  fused={"cpu": "onednn", "cuda": "cudnn"}, memory_gate=1, inits=GATED_INITS,
                  description="torch.nn.LSTM (oneDNN on CPU in float32/bfloat16, cuDNN on GPU)"))
register(CellSpec("gru", "gru", nn.GRU, _no_nonlinearity(nn.GRU), gates=3, state_size=1, step=_gru_step,
                  fused={"cuda": "cudnn"}, memory_gate=1, inits=GATED_INITS,
                  description="torch.nn.GRU"))
register(CellSpec("ref_lstm", "lstm", ReferenceLSTM, _no_nonlinearity(ReferenceLSTM), gates=4, state_size=2,
                  step=_lstm_step, memory_gate=1, inits=GATED_INITS,
                  description="LSTM from the gate equations, a Python loop over aten ops"))
register(CellSpec("lstm1997", "cec", LSTM1997, _no_nonlinearity(LSTM1997), gates=4, state_size=2,
                  step=_lstm_step, fused={"cpu": "onednn", "cuda": "cudnn"}, memory_gate=1,
                  inits=frozenset({"default"}),
                  description="LSTM without a forget gate (Hochreiter & Schmidhuber 1997): "
                              "torch.nn.LSTM with f held at 1"))


# --- the diagonal cells that train by parallel scan (bench/modern.py) -----------------------

def _diagonal_step(layer: nn.Module) -> StepFn:
    w, b = layer.weight_ih_l0, layer.bias_ih_l0

    def step(x: Tensor, s: State) -> State:
        a, b_t = layer.transition(x @ w.T + b)
        return (a * s[0] + b_t,)
    return step


def _diagonal(cls):
    def build(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh", scan=True,
              path=None, chunk=None):
        return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, scan=scan,
                   path=path, chunk=chunk)
    return build


DIAGONAL_INITS = frozenset({"default", "xavier"})
register(CellSpec("mingru", "diagonal", MinGRU, _diagonal(MinGRU), gates=2, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=True, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  description="minGRU (Feng et al. 2024): diagonal, parallel scan or loop"))
register(CellSpec("minlstm", "diagonal", MinLSTM, _diagonal(MinLSTM), gates=3, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=True, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  description="minLSTM (Feng et al. 2024): diagonal, parallel scan or loop"))

register(CellSpec("mingru_signed", "diagonal", SignedMinGRU, _diagonal(SignedMinGRU), gates=2, state_size=1,
                  step=_diagonal_step, keep=lambda layer, x: layer.keep(x), scan=False, paths=PATHS,
                  recurrent_matrix=False, inits=DIAGONAL_INITS,
                  description="minGRU with a signed transition a_t = 1 - 2 z_t in (-1, 1): the "
                              "state-tracking control (Grazzi et al. 2025); loop or complex-log scan"))


def _lru_step(layer: nn.Module) -> StepFn:
    """State (Re h, Im h): the complex state as two real tensors, so the Jacobian tools apply."""
    log_lam = layer.log_lambda()

    def step(x: Tensor, s: State) -> State:
        _, b = layer.drive(x)
        h = torch.exp(log_lam) * torch.complex(s[0], s[1]) + b
        return h.real, h.imag
    return step


register(CellSpec("lru", "diagonal", LRU, _diagonal(LRU), gates=1, state_size=2, step=_lru_step,
                  keep=lambda layer, x: layer.keep(x), scan=True, recurrent_matrix=False,
                  paths=tuple(p for p in PATHS if p != "compiled"),  # complex: nothing for inductor to fuse
                  inits=frozenset({"default"}), param_count=LRU.params, flop_count=LRU.flops,
                  description="LRU (Orvieto et al. 2023): complex diagonal, ring init, parallel scan or loop"))


# --- the nonlinear recurrence with exponential gating (bench/modern.py) ----------------------

def _slstm_step(layer: nn.Module) -> StepFn:
    w_ih, w_hh, b_ih, b_hh = _weights(layer)

    sigmoid = layer.forget_gate == "sigmoid"

    def step(x: Tensor, s: State) -> State:
        return slstm_cell(x @ w_ih.T + b_ih + s[0] @ w_hh.T + b_hh, *s[1:], sigmoid)[:4]
    return step


def _slstm(input_size, hidden_size, num_layers=1, bidirectional=False, nonlinearity="tanh",
           forget_gate="exponential"):
    return SLSTM(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                 forget_gate=forget_gate)


register(CellSpec("slstm", "exponential", SLSTM, _slstm, gates=4, state_size=4,
                  step=_slstm_step, memory_gate=1, keep=lambda layer, x: layer.keep(x),
                  forget_gates=FORGET_GATES,
                  description="sLSTM (Beck et al. 2024): exponential gating, normaliser and stabiliser, loop"))
