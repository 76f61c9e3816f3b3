"""Configuration: the typed schema (schema.py, no torch), the errors (errors.py) and the rules
(validate.py). `register_configs` is re-exported here: the A/B worker (bench/ab/worker.py) calls it
as `bench.config.register_configs` on either side's code, whatever its layout."""
from bench.config.schema import register_configs  # noqa: F401
