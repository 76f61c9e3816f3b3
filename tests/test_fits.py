"""The decay fits and intervals of analysis/reduce/fits.py on profiles and samples with known
answers: half-lives, the typical sample over the batch mean, lower bounds, the bootstrap over
seeds and samples, Wilson intervals, underflow."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis.reduce.fits import bootstrap_mean, decay_summary, half_life, line_fit, wilson


def _profile(per_sample_decays, n=50):
    """A profile whose sample b decays at per_sample_decays[b] (log10 per step) from 1."""
    logs = [[k * d for k in per_sample_decays] for d in range(n)]
    return pd.DataFrame({"t": range(n)[::-1], "distance": range(n), "log10_grad_norm_samples": logs,
                         "grad_norm": [10 ** np.mean(row) for row in logs],
                         "grad_norm_batch_mean": [np.mean(10 ** np.array(row)) for row in logs]})


def test_decay_summary_recovers_exact_decay():
    s = decay_summary(_profile([-0.2, -0.2]), 0.1, 0.9)
    assert s["decay_per_step"] == pytest.approx(-0.2, rel=1e-9) and s["r2"] == pytest.approx(1.0)
    assert s["fit_window"] == "5..44"
    h = half_life(-0.2, -0.25, -0.15, 49)
    assert h["half_life_steps"] == pytest.approx(math.log10(2) / 0.2, rel=1e-9)
    assert (h["half_life_lo"], h["half_life_hi"]) == pytest.approx((math.log10(2) / 0.25, math.log10(2) / 0.15))


def test_decay_is_the_typical_sample_not_the_batch_mean():
    """Half the samples decay at -0.2 per step, half do not decay: the batch mean is soon
    carried by the slow half and reads as almost no decay; the geometric mean decays at -0.1."""
    s = decay_summary(_profile([-0.2, 0.0]), 0.1, 0.9)
    assert s["decay_per_step"] == pytest.approx(-0.1, rel=1e-9)
    assert s["decay_batch_mean"] > -0.01
    assert sorted(s["slopes"]) == pytest.approx([-0.2, 0.0])


def test_interval_reaching_zero_decay_gives_a_lower_bound():
    decay, lo, hi = bootstrap_mean([np.array([-0.002, 0.001, -0.001, 0.0005])])
    assert lo < 0 < hi
    h = half_life(decay, lo, hi, 799)
    assert h["half_life"] == f"> {math.log10(2) / -lo:.3g}" and math.isnan(h["half_life_steps"])
    assert "inf" not in h["half_life"] and "no decay" not in h["half_life"]


def test_bootstrap_resamples_seeds_as_well_as_samples():
    tight = [np.full(20, -0.1) + np.linspace(-1e-3, 1e-3, 20) for _ in range(3)]
    apart = [np.full(20, d) + np.linspace(-1e-3, 1e-3, 20) for d in (-0.05, -0.1, -0.15)]
    _, lo1, hi1 = bootstrap_mean(tight)
    _, lo2, hi2 = bootstrap_mean(apart)
    assert hi2 - lo2 > 20 * (hi1 - lo1)  # seeds that disagree widen the interval


def test_wilson_interval():
    lo, hi = wilson(3, 3)
    assert hi == 1.0 and lo == pytest.approx(0.4385, abs=1e-3)


def test_underflow_is_counted_not_fitted():
    prof = _profile([-0.5], n=40)
    prof.loc[prof["distance"] >= 30, "grad_norm"] = 0.0
    prof["log10_grad_norm_samples"] = [[-0.5 * d] if d < 30 else [-math.inf] for d in range(40)]
    s = decay_summary(prof, 0.0, 1.0)
    assert s["underflow_points"] == 10
    assert s["decay_per_step"] == pytest.approx(-0.5, rel=1e-9)  # zeros left out of the fit


def test_line_fit():
    a, b, r2 = line_fit(pd.Series([1.0, 2, 3]).to_numpy(), pd.Series([3.0, 5, 7]).to_numpy())
    assert (a, b, r2) == pytest.approx((1, 2, 1))
