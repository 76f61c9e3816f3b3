"""The report: page.py (where sections write), verdicts.py (each claim and its rule), rules.py (the
judges), build.py, sections/ (one module per section, render only; the numbers come from
analysis/reduce/)."""
