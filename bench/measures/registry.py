"""The measure registry: one MeasureSpec per `measure`, everything the suite needs to know of a
measure (docs/architecture.md, "How to add a measure"). Each measure module registers itself."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from bench.config.errors import ConfigError
from bench.measures.memory import training


@dataclass(frozen=True)
class MeasureSpec:
    """name: the `measure` value (and conf/measure/<name>.yaml); measure(point) -> rows;
    version: bumped when a change moves its numbers (part of every point's hash, so stale points
    are measured again); schema: its config dataclass (bench/config/schema.py); default_dtype:
    when `dtype` is null; finite: the columns the CI's fail-closed check requires finite
    (analysis/ci/rules.py); timed: whether it measures wall time (refused under launchers that run
    points side by side on one machine); check(cfg): its own config rules (raises ConfigError);
    memory(cfg, dtype, device): the bytes a point needs, estimated from its shapes
    (bench/measures/memory.py; the pre-flight refuses what exceeds the machine)."""
    name: str
    measure: Callable[..., List[dict]]
    version: int
    schema: type
    default_dtype: str
    finite: Tuple[str, ...]
    timed: bool
    check: Callable[..., None] = lambda cfg: None
    memory: Callable[..., int] = training


MEASURES: Dict[str, MeasureSpec] = {}


def register_measure(spec: MeasureSpec) -> MeasureSpec:
    if spec.name in MEASURES:
        raise ValueError(f"measure {spec.name!r} is registered twice")
    MEASURES[spec.name] = spec
    return spec


def measure_spec(name: str) -> MeasureSpec:
    if name not in MEASURES:
        near = difflib.get_close_matches(name, list(MEASURES), n=1)
        hint = f"; did you mean measure={near[0]}?" if near else ""
        raise ConfigError(f"measure={name}: not a registered measure{hint} (allowed: {', '.join(MEASURES)})")
    return MEASURES[name]


def positive(cfg, *keys: str) -> None:
    """Each of `keys` (measure keys) a positive number (ints and floats alike, finite)."""
    for key in keys:
        value = cfg.measure[key]
        if not (value > 0 and value < float("inf")):
            raise ConfigError(f"measure.{key}={value}: must be > 0 and finite")
