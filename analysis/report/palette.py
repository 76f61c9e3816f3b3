"""One colour and one marker per registered cell, in every figure (docs/architecture.md, "Report").

Keyed by the registry's order, so a cell keeps its colour whatever subset a figure shows, and a
new cell takes the next colour without moving the others."""
from __future__ import annotations

import seaborn as sns

from bench.cells.registry import REGISTRY

_COLOURS = sns.color_palette("tab10", 10)
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]

CELL_PALETTE = {name: _COLOURS[i % 10] for i, name in enumerate(REGISTRY)}
CELL_MARKERS = {name: _MARKERS[i % 10] for i, name in enumerate(REGISTRY)}
