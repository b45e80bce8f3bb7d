"""Percentile bootstrap intervals: the one convention every leaderboard interval follows.

A metric that is a mean over units (images, features, pairs) gets its interval by
resampling those units with replacement B times (seeded) and taking the 2.5th and 97.5th
percentiles of the recomputed statistic (Efron & Tibshirani 1993, ch. 13). Results files
keep intervals beside the metrics:

    record["intervals"][metric_key] = {"lo": .., "hi": .., "level": 0.95, "method": "bootstrap-images",
                                       "b": 200, "seed": 0}

`method` names the resampled unit: "bootstrap-images", "bootstrap-features" or
"bootstrap-pairs". The leaderboard reads nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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


def bootstrap(n: int, statistic: Callable[[np.ndarray], float], b: int = DEFAULT_B, seed: int = 0,
              level: float = LEVEL) -> tuple[float, float] | None:
    """Interval of statistic(idx) over b resamples idx of range(n)."""
    return percentile_interval([statistic(idx) for idx in resample_indices(n, b, seed)], level)


def mean_interval(values, b: int = DEFAULT_B, seed: int = 0, level: float = LEVEL) -> tuple[float, float] | None:
    """Interval of the nan-mean of per-unit values (units with NaN values are kept out first)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    idx = resample_indices(v.size, b, seed)
    return percentile_interval(v[idx].mean(axis=1), level)


def interval_record(ci: tuple[float, float] | None, method: str, b: int = DEFAULT_B, seed: int = 0,
                    level: float = LEVEL) -> dict | None:
    """The results-file entry for one interval (None when there is none)."""
    if ci is None:
        return None
    return {"lo": round(ci[0], 6), "hi": round(ci[1], 6), "level": level, "method": method, "b": b, "seed": seed}
