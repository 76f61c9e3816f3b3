"""The memory a point needs, estimated from its shapes before it runs: the pre-flight
(bench/run/runner.py) refuses a point whose estimate exceeds the machine's memory, so that a
`data.seq_len=10000000` is one line, not a machine swapping until the kernel ends it.

Each measure's `memory(cfg, dtype, device)` (MeasureSpec.memory) adds up, in bytes:
- the weights: parameters, gradients and Adam's two moments (4 copies of `CellSpec.params`);
- a training step over T steps and B sequences: T * B * (input_size + saved_floats * layers *
  directions * hidden_size) elements, `CellSpec.saved_floats` being the peak of torch's
  allocation events per unit and step over the cell's paths (tests/test_memory.py holds every
  registered cell to the events);
- what the measure adds of its own (the throughput calibration arrays, the long_range
  evaluation batches at up to 10x the training length).
An estimate, not a measurement: it bounds the step's activations from above and leaves the
allocator's caching and the interpreter out.
"""
from __future__ import annotations

from bench.cells.registry import spec

ITEMSIZE = {"float32": 4, "float64": 8, "bfloat16": 2}  # bytes per element of each `dtype`


def directions(model) -> int:
    return 2 if model.bidirectional else 1


def weight_bytes(model, input_size: int, itemsize: int, copies: int = 4) -> int:
    """Parameters of the recurrent core times `copies` (weights, gradients, Adam's moments)."""
    entry = spec(model.cell)
    return copies * itemsize * entry.params(input_size, model.hidden_size, model.num_layers, model.bidirectional)


def step_bytes(model, seq_len: int, batch: int, input_size: int, itemsize: int) -> int:
    """One training step's activations: the input (T, B, I) and what the backward keeps."""
    per_step = input_size + spec(model.cell).saved_floats * model.num_layers * directions(model) * model.hidden_size
    return int(itemsize * seq_len * batch * per_step)


def describe(cfg) -> str:
    """The shapes an estimate was made from, in the user's keys."""
    m = cfg.model
    return (f"data.seq_len={cfg.data.seq_len}, data.batch_size={cfg.data.batch_size}, "
            f"model.hidden_size={m.hidden_size}, model.num_layers={m.num_layers}"
            + (", model.bidirectional=true" if m.bidirectional else ""))


def training(cfg, dtype: str, device: str) -> int:
    """A measure that runs one training step of the point: its weights and activations."""
    e, m = ITEMSIZE[dtype], cfg.model
    return weight_bytes(m, m.input_size, e) + step_bytes(m, cfg.data.seq_len, cfg.data.batch_size, m.input_size, e)
