"""The measures: the registry (registry.py) and the modules that register into it. Measures return
plain rows; they never print tables or write files (only bench/run/store.py writes records)."""
from bench.measures import gradients, throughput, long_range  # noqa: F401, I001 - each registers itself, in this order
