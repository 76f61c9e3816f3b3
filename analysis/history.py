"""`python -m analysis.history [DIR] --out FIG`: each CI metric across commits
(analysis/ci/history.py)."""
import sys

from analysis.ci.history import main

if __name__ == "__main__":
    sys.exit(main())
