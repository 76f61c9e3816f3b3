"""The tasks: the registry (registry.py) and the modules that register into it (long_lag, state,
selection); the long_range measure reads a task only through its TASKS entry."""
from bench.tasks import long_lag, state, selection  # noqa: F401, I001 - each registers its tasks, in this order
