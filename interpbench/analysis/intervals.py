"""95% intervals of the analyses' headline numbers, by the convention of metrics/bootstrap.py.

Every headline number except the duplicate share is a mean over attributes of a per-image
(or per-pair) quantity. One resample draws the N evaluation images with replacement and is
shared by all attributes, so an image drawn twice counts twice in every attribute it takes
part in; the statistic is then recomputed on that weighting. Steering success, retrieval
precision and k-means ARI/NMI keep their fitted parts fixed (targets, neighbours, cluster
assignments): the interval covers which images were sampled, not the seeded randomness of
the analysis itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from interpbench.metrics.bootstrap import DEFAULT_B, percentile_interval, resample_indices

IMAGES = "bootstrap-images"


def attribute_mean_interval(values: np.ndarray, b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of mean_a nanmean_i values[a, i] over image resamples (NaN: image not in attribute a)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or b < 1:
        return None
    ok = np.isfinite(v)
    filled = np.where(ok, v, 0.0)
    stats = []
    for idx in resample_indices(v.shape[1], b, seed):
        counts = np.bincount(idx, minlength=v.shape[1]).astype(np.float64)
        n = ok @ counts  # [A] images of each attribute in this resample
        with np.errstate(invalid="ignore", divide="ignore"):
            per = (filled @ counts) / n
        stats.append(np.nanmean(per) if np.isfinite(per).any() else np.nan)
    return percentile_interval(stats)


def attribute_score_interval(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray],
                             rows: dict[str, np.ndarray], n_images: int,
                             score: Callable[[np.ndarray, np.ndarray], float],
                             b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of mean_a score(truth_a, pred_a) over image resamples.

    rows[a] are the image ids (into range(n_images)) of truth[a] / pred[a]; a resampled
    image enters attribute a as many times as it was drawn.
    """
    if not truth or b < 1:
        return None
    pos = {}
    for a, r in rows.items():  # image id -> position in attribute a's arrays, -1 if absent
        p = np.full(n_images, -1)
        p[np.asarray(r, dtype=int)] = np.arange(len(r))
        pos[a] = p
    stats = []
    for idx in resample_indices(n_images, b, seed):
        vals = []
        for a in truth:
            j = pos[a][idx]
            j = j[j >= 0]
            if len(j) >= 2:
                vals.append(score(truth[a][j], pred[a][j]))
        stats.append(float(np.mean(vals)) if vals else np.nan)
    return percentile_interval(stats)


def grouped_interval(image_of: Sequence[int], n_images: int, statistic: Callable[[np.ndarray], float],
                     b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of statistic(weights) where units (pairs) are weighted by how often their
    image was drawn; statistic gets a weight per unit."""
    image_of = np.asarray(image_of, dtype=int)
    if image_of.size == 0 or b < 1:
        return None
    stats = []
    for idx in resample_indices(n_images, b, seed):
        w = np.bincount(idx, minlength=n_images)[image_of].astype(np.float64)
        stats.append(statistic(w) if w.sum() > 0 else np.nan)
    return percentile_interval(stats)
