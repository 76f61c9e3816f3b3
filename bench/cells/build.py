"""`build_model`: the registered model for a configuration, initialised (bench/cells/init.py)."""
from __future__ import annotations

from typing import Optional

from torch import nn

from bench.cells.init import apply_init
from bench.cells.registry import spec


def build_model(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                bidirectional: bool = False, forget_bias: Optional[float] = None, init: str = "default",
                gain: float = 1.0, nonlinearity: str = "tanh", chrono_tmax: Optional[int] = None,
                scan: Optional[bool] = None, forget_gate: Optional[str] = None,
                path: Optional[str] = None, chunk: Optional[int] = None) -> nn.Module:
    """The registered model for `cell`, initialised by `init` (bench/cells/init.py). The caller
    seeds torch's generator first (bench.measures.point.Point.build_model)."""
    s = spec(cell)
    extra = {} if s.scan is None else {"scan": s.scan if scan is None else scan}
    if s.scan is not None and path is not None:  # model.path overrides model.scan
        extra.update(path=path, chunk=chunk)
    if s.forget_gates is not None:
        extra["forget_gate"] = forget_gate or s.forget_gates[0]
    model = s.builder(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                      nonlinearity=nonlinearity, **extra)
    return apply_init(model, s, init, gain, forget_bias, chrono_tmax)
