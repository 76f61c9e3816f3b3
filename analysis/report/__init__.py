"""The report: page.py (where sections write), verdicts.py (each claim's rule), build.py, sections/ (one module per
section, render only; the numbers come from analysis/reduce/)."""
