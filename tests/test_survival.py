"""Survival of steps to solve (analysis/survival.py): Kaplan-Meier with censoring against a
hand computation, its median and interval, and the budget check."""
import math

import numpy as np
import pytest

from analysis.reduce.survival import budget_check, kaplan_meier, median_steps


def test_one_budget_gives_the_plain_fraction_solved():
    steps = np.array([100, 200, 200, 400, 0, 0])
    solved = np.array([True, True, True, True, False, False])
    curve = kaplan_meier(steps, solved, np.full(6, 1000))
    by = curve.set_index("step")["solved_fraction"]
    assert by[100] == pytest.approx(1 / 6) and by[200] == pytest.approx(3 / 6) and by[400] == pytest.approx(4 / 6)
    assert by[1000] == pytest.approx(4 / 6)            # the censored runs change nothing at the budget
    assert (curve["lo"] <= curve["solved_fraction"]).all() and (curve["solved_fraction"] <= curve["hi"]).all()


def test_censoring_keeps_a_run_at_risk_only_while_observed():
    """Run 3 is censored at 150 (a shorter budget): after it leaves, the run solving at 300 is one of
    two at risk, so S drops by half there, not by a third (hand computation)."""
    steps = np.array([100, 300, 0, 0])
    solved = np.array([True, True, False, False])
    budget = np.array([1000, 1000, 150, 1000])
    curve = kaplan_meier(steps, solved, budget).set_index("step")
    assert curve.loc[100, "solved_fraction"] == pytest.approx(1 / 4)
    assert curve.loc[150, "at_risk"] == 3 and curve.loc[150, "censored"] == 1
    assert curve.loc[300, "at_risk"] == 2
    assert curve.loc[300, "solved_fraction"] == pytest.approx(1 - (3 / 4) * (1 / 2))


def test_no_solve_has_an_interval_that_is_not_zero_wide():
    curve = kaplan_meier(np.zeros(10), np.zeros(10, bool), np.full(10, 5000))
    assert curve["solved_fraction"].iloc[-1] == 0 and curve["hi"].iloc[-1] > 0.25   # Wilson 0/10


def test_median_and_its_interval():
    steps = np.arange(1, 11) * 100.0
    curve = kaplan_meier(steps, np.ones(10, bool), np.full(10, 5000))
    med, lo, hi = median_steps(curve)
    assert med == 500 and lo <= med <= hi
    none = kaplan_meier(np.array([100.0, 0, 0, 0]), np.array([True, False, False, False]), np.full(4, 800))
    assert math.isnan(median_steps(none)[0])


def test_budget_check_flips_at_twice_the_slowest_median():
    assert budget_check({"lstm": 2500.0, "gru": 700.0, "rnn": math.nan}, 5000)["long_enough"]
    check = budget_check({"lstm": 2600.0, "gru": 700.0}, 5000)
    assert not check["long_enough"] and check["slowest"] == "lstm" and "too short" in check["why"]
    assert not budget_check({"rnn": math.nan}, 5000)["long_enough"]


def test_the_median_is_where_the_fraction_reaches_one_half_despite_rounding():
    """Ten runs solving 2, 1, 1, 1 at steps 100..400: S = 8/10 * 7/8 * 6/7 * 5/6 is one half exactly,
    0.5000000000000001 in floating point; the median is 400, not the next event at 500."""
    steps = np.array([100, 100, 200, 300, 400, 500, 600, 0, 0, 0], float)
    solved = np.array([True] * 7 + [False] * 3)
    curve = kaplan_meier(steps, solved, np.full(10, 1000))
    assert curve.set_index("step").loc[400, "solved_fraction"] != 0.5  # the rounding this guards against
    assert median_steps(curve)[0] == 400
