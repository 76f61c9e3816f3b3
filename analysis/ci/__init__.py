"""The CI verdict: the shared fail-closed rules (rules.py), the stored-baseline mode (baseline.py),
the A/B mode (ab.py, on paired.py's statistics) and the history across commits (history.py)."""
