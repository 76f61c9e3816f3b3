"""The report: page.py (where sections write), claims.py, build.py, sections/ (one module per
section, render only; the numbers come from analysis/reduce/)."""
