"""The cells: the registry (registry.py) and the modules that register into it, in registry order
(classic, diagonal, xlstm); `build_model` (build.py) builds a registered cell, initialised."""
from bench.cells import classic, diagonal, xlstm  # noqa: F401 - each registers its cells
