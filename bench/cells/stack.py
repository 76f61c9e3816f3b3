"""The layer x direction structure every cell shares: running a stack of layers, each in one or
two directions, and splitting a stacked module into single-layer copies."""
from __future__ import annotations

from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn


def suffixes(layer: int, directions: int) -> List[str]:
    """Parameter-name suffixes of a layer's directions, torch.nn.LSTM's spelling."""
    return [f"_l{layer}", f"_l{layer}_reverse"][:directions]


def run_stack(x: Tensor, num_layers: int, directions: int,
              one: Callable[[Tensor, str, int], Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """Run `one(x, suffix, index)` -> h (T, B, H) for every layer and direction: the backward
    direction reads its input reversed in time and its output is flipped back; a layer's output is
    its directions' h concatenated (T, B, D*H), the next layer's input. `index` = layer * D +
    direction (the state's slot). Returns (top output, the last step of every layer and direction)."""
    layer_input, h_n = x, []
    for layer in range(num_layers):
        outputs = []
        for direction, suffix in enumerate(suffixes(layer, directions)):
            xs = layer_input if direction == 0 else layer_input.flip(0)
            h = one(xs, suffix, layer * directions + direction)
            h_n.append(h[-1])
            outputs.append(h if direction == 0 else h.flip(0))
        # one direction: its output as it is (a cat of one tensor would copy it)
        layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
    return layer_input, h_n


def layer_stack(model: nn.Module) -> List[nn.Module]:
    """The model split into single-layer modules with the same weights (copies).

    Running them in sequence computes exactly what the fused multi-layer module computes, and
    exposes each layer's input so that per-layer gradients can be read in one backward pass.
    """
    layers = []
    D = 2 if model.bidirectional else 1
    extra = {"nonlinearity": model.nonlinearity} if isinstance(getattr(model, "nonlinearity", None), str) else {}
    if hasattr(model, "scan"):  # the diagonal cells keep their path (bench/cells/diagonal.py)
        extra["scan"] = model.scan
    if hasattr(model, "path"):
        extra.update(path=model.path, chunk=model.chunk)
    if hasattr(model, "forget_gate"):  # sLSTM keeps its forget-gate form (bench/cells/xlstm.py)
        extra["forget_gate"] = model.forget_gate
    for layer in range(model.num_layers):
        in_size = model.input_size if layer == 0 else model.hidden_size * D
        single = type(model)(in_size, model.hidden_size, num_layers=1, bidirectional=model.bidirectional, **extra)
        suffixes = (f"_l{layer}", f"_l{layer}_reverse")
        single.load_state_dict({name.replace(f"_l{layer}", "_l0"): p.detach().clone()
                                for name, p in model.named_parameters() if name.endswith(suffixes)})
        layers.append(single.to(next(model.parameters())))
    return layers
