"""BCa intervals against scipy.stats.bootstrap, and the coverage cases they exist for."""

import numpy as np
import pytest
from scipy import stats

from interpbench.metrics.bootstrap import (
    acceleration,
    bca_interval,
    mean_interval,
    mean_jackknife,
    resample_indices,
)


def test_bca_of_a_mean_equals_scipy_on_the_same_replicates():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 1.2, 40)  # small and skewed: where BCa and the percentile interval differ
    res = stats.bootstrap((x,), np.mean, method="BCa", n_resamples=500, rng=np.random.default_rng(1))
    got = bca_interval(res.bootstrap_distribution, x.mean(), mean_jackknife(x))
    assert got == pytest.approx([res.confidence_interval.low, res.confidence_interval.high], abs=1e-9)
    pct = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=500, rng=np.random.default_rng(1))
    assert got[0] > pct.confidence_interval.low  # skew pushes the BCa interval right


def test_jackknife_of_a_mean_is_the_leave_one_out_mean():
    x = np.array([1.0, 4.0, 2.0, 9.0])
    np.testing.assert_allclose(mean_jackknife(x), [np.delete(x, i).mean() for i in range(4)])
    assert acceleration(np.ones(5)) == 0.0


def test_mean_interval_is_bca_of_the_seeded_resamples():
    x = np.random.default_rng(2).exponential(1.0, 300)
    reps = x[resample_indices(300, 200, 5)].mean(axis=1)
    assert mean_interval(x, seed=5) == pytest.approx(bca_interval(reps, x.mean(), mean_jackknife(x)))


def test_bias_correction_moves_toward_a_biased_replicate_distribution():
    reps = np.random.default_rng(3).normal(0.0, 1.0, 400)
    lo, hi = bca_interval(reps, 0.5)  # replicates centred below the point: the interval moves up
    plo, phi = np.quantile(reps, [0.025, 0.975])
    assert lo > plo and hi > phi and lo < 0.5 < hi
    assert bca_interval([np.nan, np.nan], 0.0) is None


def test_small_samples_get_the_studentized_interval():
    x = np.random.default_rng(4).lognormal(0, 1, 30)
    idx = resample_indices(30, 200, 7)
    xs = x[idx]
    t = (xs.mean(1) - x.mean()) / (xs.std(1, ddof=1) / np.sqrt(30))
    se = x.std(ddof=1) / np.sqrt(30)
    want = (x.mean() - np.quantile(t, 0.975) * se, x.mean() - np.quantile(t, 0.025) * se)
    assert mean_interval(x, seed=7) == pytest.approx(want)
    assert mean_interval(np.ones(10)) == (1.0, 1.0)  # no spread: no t, the point itself
