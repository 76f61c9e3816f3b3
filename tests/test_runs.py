"""One row per training run (analysis/reduce/runs.py): a run whose loss stays finite but
astronomically large, or whose gradients are infinite, at its end has diverged, as one whose loss
went non-finite has; a spike the run recovers from has not."""
import numpy as np
import pandas as pd

from analysis.reduce.runs import BLOWN_UP, runs


def evaluations(losses, grads=None, flagged=False):
    n = len(losses)
    grads = grads if grads is not None else [np.nan] + [1.0] * (n - 1)  # no gradient before step 0's update
    return pd.DataFrame({"config_hash": "h", "task": "adding", "cell": "rnn", "seed": 100, "step": np.arange(n) * 100.0,
                         "test_loss": losses, "baseline_loss": 1 / 6, "val_loss": losses, "solved": False,
                         "elapsed_s": np.arange(n) * 1.0, "measure_steps": (n - 1) * 100, "grad_norm_preclip": grads,
                         "diverged": flagged, "diverged_step": np.nan})


def test_a_run_blown_up_at_its_end_counts_as_diverged_from_where_it_stayed_so():
    r = runs(evaluations([2.7, 0.16, 4.7e28, 5.2e28, 5.2e28]))
    assert r["diverged"].iloc[0] and r["blown_up"].iloc[0] and r["diverged_step"].iloc[0] == 200
    r = runs(evaluations([2.7, 0.16, 0.15, 0.15], grads=[np.nan, 3.0, np.inf, np.inf]))
    assert r["diverged"].iloc[0] and r["diverged_step"].iloc[0] == 200


def test_a_spike_it_recovers_from_is_not_a_divergence():
    r = runs(evaluations([2.7, 0.16, 1.3e8, 0.14, 0.12]))
    assert not r["diverged"].iloc[0] and np.isnan(r["diverged_step"].iloc[0])
    assert 1.3e8 > BLOWN_UP / 6  # the spike was above the threshold: only its end decides


def test_the_measure_flag_still_counts():
    r = runs(evaluations([2.7, 0.16, 0.15], flagged=True))
    assert r["diverged"].iloc[0] and not r["blown_up"].iloc[0]


def test_the_threshold_is_the_rule_at_the_end_of_the_run():
    """Ending just above BLOWN_UP x baseline is diverged, just below is not; a loss 100x the
    baseline (a bad run, not a blown-up one) is a run that did not learn."""
    base = 1 / 6
    assert runs(evaluations([2.7, 0.16, 1.1 * BLOWN_UP * base]))["diverged"].iloc[0]
    for end in (0.9 * BLOWN_UP * base, 100 * base):
        r = runs(evaluations([2.7, 0.16, end]))
        assert not r["diverged"].iloc[0] and not r["blown_up"].iloc[0]
