"""The A/B runner (`python -m bench.ab`): head against a base commit or interpreter, measured point
by point alternately by one long-lived worker per side (runner.py, worker.py)."""
