"""The fair table's continued runs (analysis/reduce/long_lag.py): only the seeds unsolved within
the budget count as continued, and the budget check reads the whole cell's median with them."""
import math

import numpy as np
import pandas as pd

from analysis.reduce.long_lag import budget_checks, continued


def runs(seeds, solved_at, budget):
    return pd.DataFrame({"task": "adding", "cell": "rnn", "seq_len": 200, "seed": seeds, "budget": budget,
                         "solved": [s is not None for s in solved_at], "diverged": False,
                         "steps_to_solve": [np.nan if s is None else s for s in solved_at]})


def test_the_budget_check_reads_the_whole_cells_median_with_the_unsolved_seeds_continued():
    """4 of 10 solve within 8000 steps; of the 6 continued to 24000, 2 solve (9000, 10000): 2 of 6
    has no median of its own, but the cell's 6 of 10 has one, at 9000, and 8000 < 2 x 9000."""
    reported = runs(range(10), [1000, 2000, 3000, 4000] + [None] * 6, 8000)
    more = runs(range(4, 10), [9000, 10000] + [None] * 4, 24000)
    c = continued(more, ("adding", "rnn", 200), reported)
    assert c["continued_seeds"] == 6 and c["continued_solved"] == 2 and math.isnan(c["continued_median"])
    assert c["continued_cell_median"] == 9000
    table = pd.DataFrame([{"protocol": "A", "task": "adding", "seq_len": 200, "cell": "rnn", "budget": 8000,
                           "median_steps": np.nan, **c},
                          {"protocol": "A", "task": "adding", "seq_len": 200, "cell": "lstm", "budget": 8000,
                           "median_steps": 3000.0, "continued_cell_median": np.nan}])
    check = budget_checks(table).iloc[0]
    assert not check["long_enough"] and check["slowest"] == "rnn" and "continued past the budget" in check["why"]


def test_seeds_solved_within_the_budget_are_not_counted_as_continued():
    reported = runs(range(10), [1000] * 7 + [None] * 3, 8000)
    more = runs(range(10), [1000] * 7 + [None] * 3, 24000)  # every seed run again: the solved only repeat
    c = continued(more, ("adding", "rnn", 200), reported)
    assert c["continued_seeds"] == 3 and c["continued_solved"] == 0 and c["continued_cell_median"] == 1000
