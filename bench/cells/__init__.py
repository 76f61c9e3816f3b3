"""The cells: the registry (registry.py) and the modules that register into it, in registry order
(classic, diagonal, lru, xlstm, indrnn); `build_model` (build.py) builds a registered cell, initialised."""
from bench.cells import classic, diagonal, lru, xlstm, indrnn  # noqa: F401, I001 - each registers its cells, in this order
