"""Running points: one point end to end (runner.py), the Hydra app (cli.py), the device and
backend contexts (device.py), records and their provenance (records.py), the store (store.py),
preset suites (suite.py) and the progress bar (progress.py).

`bench.run.run_point` stays importable by that name (lazily, so that the CLI's `--help` does not
import torch): the A/B worker (bench/ab/worker.py) calls it on either side's code."""


def __getattr__(name: str):
    if name == "run_point":
        from bench.run.runner import run_point
        return run_point
    raise AttributeError(f"module 'bench.run' has no attribute {name!r}")
