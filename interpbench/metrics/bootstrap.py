"""Bootstrap intervals: the one convention every leaderboard interval follows.

A metric gets its interval by resampling its units (images, features, pairs, concepts) with
replacement B times (seeded) and recomputing the statistic. The interval is the BCa
(bias-corrected and accelerated) one of Efron (1987; Efron & Tibshirani 1993, ch. 14):
the percentiles of the replicates at

    Phi(z0 + (z0 + z) / (1 - a (z0 + z))),  z = Phi^-1(0.025), Phi^-1(0.975)

with z0 = Phi^-1(share of replicates below the point, ties half) correcting a replicate
distribution that is not centred on the point, and a the acceleration from the jackknife
(a = sum d^3 / (6 (sum d^2)^1.5), d = jackknife mean - jackknife values) correcting skew.
Where the jackknife is cheap (a mean over units: leaving unit i out gives (sum - x_i) /
(n - 1)) a is used; elsewhere a = 0 (the bias-corrected percentile interval). For a mean this
equals scipy.stats.bootstrap(method="BCa") on the same replicates (tested); scipy's own
jackknife is O(n^2), too slow for a million pairs. A mean over fewer than SMALL_N units gets
the studentized (bootstrap-t) interval instead, which covers small skewed samples better
than BCa. `benchmarks/interval_coverage.py` measures
the coverage of each kind by simulation. Results files keep intervals beside the metrics:

    record["intervals"][metric_key] = {"lo": .., "hi": .., "level": 0.95, "method": "bootstrap-images",
                                       "b": 200, "seed": 0, "interval": "bca"}

`method` names the resampled unit: "bootstrap-images", "bootstrap-features",
"bootstrap-pairs", or two levels ("bootstrap-images+features", "bootstrap-images+concepts").
`interval` is "bca" (with acceleration), "bc" (a = 0), "studentized" or "percentile".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

DEFAULT_B = 200
LEVEL = 0.95


def resample_indices(n: int, b: int = DEFAULT_B, seed: int = 0) -> np.ndarray:
    """[b, n] row indices, each row a resample of range(n) with replacement."""
    if n < 1 or b < 1:
        raise ValueError(f"resample_indices needs n >= 1 and b >= 1, got n={n}, b={b}")
    return np.random.default_rng(seed).integers(0, n, size=(b, n))


def percentile_interval(stats, level: float = LEVEL) -> tuple[float, float] | None:
    """(lo, hi) percentiles of bootstrap replicates; NaN replicates are dropped (None if all are)."""
    s = np.asarray(stats, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None
    a = (1 - level) / 2
    lo, hi = np.quantile(s, [a, 1 - a])
    return float(lo), float(hi)


def _finite(stats) -> np.ndarray:
    s = np.asarray(stats, dtype=np.float64)
    return s[np.isfinite(s)]


def centred_interval(stats, point: float | None, level: float = LEVEL) -> tuple[float, float] | None:
    """Percentile interval of the replicates after removing the bootstrap's bias estimate
    (mean of the replicates minus the point; Efron & Tibshirani 1993, section 10.3): for a
    statistic the resample itself biases (NMI on duplicated images, a ratio over features that
    a resample may leave unscored) the plain percentile interval can miss its own point.
    Equal to the percentile interval when the replicates are centred on the point."""
    s = _finite(stats)
    if s.size == 0 or point is None or not np.isfinite(point):
        return percentile_interval(s, level)
    return percentile_interval(s - s.mean() + point, level)


def bca_interval(stats, point: float | None, jackknife=None, level: float = LEVEL) -> tuple[float, float] | None:
    """BCa interval (module docstring) of bootstrap replicates around `point`; jackknife: the
    leave-one-out values of the statistic, or None for a = 0. Falls back to the percentile
    interval when there is no finite point."""
    s = _finite(stats)
    if s.size == 0 or point is None or not np.isfinite(point):
        return percentile_interval(s, level)
    below = ((s < point).sum() + 0.5 * (s == point).sum()) / s.size
    below = min(max(below, 0.5 / s.size), 1 - 0.5 / s.size)  # a finite z0 at the extremes
    z0 = norm.ppf(below)
    a = acceleration(jackknife) if jackknife is not None else 0.0
    z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
    q = norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    lo, hi = np.quantile(s, q)
    return float(lo), float(hi)


def acceleration(jackknife) -> float:
    """The BCa acceleration from leave-one-out values (0 when they do not vary)."""
    j = np.asarray(jackknife, dtype=np.float64)
    j = j[np.isfinite(j)]
    d = j.mean() - j if j.size else j
    den = 6.0 * float((d * d).sum()) ** 1.5
    return float((d ** 3).sum() / den) if den > 0 else 0.0


def mean_jackknife(values) -> np.ndarray:
    """Leave-one-out means of the values (O(n): (sum - x_i) / (n - 1))."""
    v = np.asarray(values, dtype=np.float64)
    return (v.sum() - v) / (v.size - 1) if v.size > 1 else np.zeros(0)


def bootstrap(n: int, statistic: Callable[[np.ndarray], float], b: int = DEFAULT_B, seed: int = 0,
              level: float = LEVEL) -> tuple[float, float] | None:
    """Interval of statistic(idx) over b resamples idx of range(n)."""
    return percentile_interval([statistic(idx) for idx in resample_indices(n, b, seed)], level)


def mean_interval(values, b: int = DEFAULT_B, seed: int = 0, level: float = LEVEL) -> tuple[float, float] | None:
    """Interval of the nan-mean of per-unit values (units with NaN values are kept out first):
    BCa, or studentized for fewer than SMALL_N units (`mean_interval_kind`)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    idx = resample_indices(v.size, b, seed)
    if mean_interval_kind(v.size) == "studentized":
        return studentized_interval(v, idx, level)
    return bca_interval(v[idx].mean(axis=1), float(v.mean()), mean_jackknife(v), level)


SMALL_N = 200  # below it a mean's interval is studentized (measured: BCa covers 0.915 at n = 30, skewed)


def mean_interval_kind(n: int) -> str:
    """How mean_interval reads its ends for n units: "studentized" below SMALL_N, else "bca"."""
    return "studentized" if n < SMALL_N else "bca"


def studentized_interval(v: np.ndarray, idx: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Bootstrap-t interval of a mean (Efron & Tibshirani 1993, ch. 12.5): the quantiles of
    t* = (mean* - mean) / se* turned around the point with the sample's own standard error.
    Resamples with se* = 0 (all units equal) carry no t and are left out."""
    n = v.size
    xs = v[idx]
    means = np.concatenate([[v.mean()], xs.mean(axis=1)])
    ses = np.concatenate([[v.std(ddof=1)], xs.std(axis=1, ddof=1)]) / np.sqrt(n) if n > 1 else np.zeros(len(idx) + 1)
    return studentized_from(means, ses, level)


def studentized_from(means, ses, level: float = LEVEL) -> tuple[float, float] | None:
    """Bootstrap-t interval from the statistic and its standard error per replicate, row 0
    being the point (mean, se) and rows 1.. the replicates: the point minus the replicates'
    t = (mean* - mean) / se* quantiles times the point's se. Replicates without a finite t
    (se* = 0) are left out; a point with se = 0 gives the one-point interval."""
    means, ses = np.asarray(means, dtype=np.float64), np.asarray(ses, dtype=np.float64)
    m, se = float(means[0]), float(ses[0])
    if not np.isfinite(m):
        return None
    ok = np.isfinite(means[1:]) & np.isfinite(ses[1:]) & (ses[1:] > 0)
    if not se > 0 or not ok.any():
        return m, m
    t = (means[1:][ok] - m) / ses[1:][ok]
    a = (1 - level) / 2
    t_lo, t_hi = np.quantile(t, [a, 1 - a])
    return m - t_hi * se, m - t_lo * se


def interval_record(ci: tuple[float, float] | None, method: str, b: int = DEFAULT_B, seed: int = 0,
                    level: float = LEVEL, kind: str | None = None) -> dict | None:
    """The results-file entry for one interval (None when there is none); kind: "bca", "bc",
    "studentized", "centred" or "percentile" (module docstring), recorded when given."""
    if ci is None:
        return None
    rec = {"lo": round(ci[0], 6), "hi": round(ci[1], 6), "level": level, "method": method, "b": b, "seed": seed}
    return rec | ({"interval": kind} if kind else {})
