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

from interpbench.metrics.bootstrap import DEFAULT_B, centred_interval, resample_indices

IMAGES = "bootstrap-images"


def _with_identity(n: int, b: int, seed: int) -> list[np.ndarray]:
    """The identity resample (the point estimate, by the same code) then the B seeded ones."""
    return [np.arange(n), *resample_indices(n, b, seed)]


def attribute_mean_interval(values: np.ndarray, b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of mean_a nanmean_i values[a, i] over image resamples (NaN: image not in attribute a)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or b < 1:
        return None
    ok = np.isfinite(v)
    filled = np.where(ok, v, 0.0)
    stats = []
    for idx in _with_identity(v.shape[1], b, seed):
        counts = np.bincount(idx, minlength=v.shape[1]).astype(np.float64)
        n = ok @ counts  # [A] images of each attribute in this resample
        with np.errstate(invalid="ignore", divide="ignore"):
            per = (filled @ counts) / n
        stats.append(np.nanmean(per) if np.isfinite(per).any() else np.nan)
    return centred_interval(stats[1:], stats[0])


def attribute_score_interval(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray],
                             rows: dict[str, np.ndarray], n_images: int,
                             score: Callable[[np.ndarray], float],
                             b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of mean_a score(contingency table of truth_a vs pred_a) over image resamples.

    rows[a] are the image ids (into range(n_images)) of truth[a] / pred[a]; a resampled
    image enters attribute a's table as many times as it was drawn. Tables, not label
    arrays, are resampled: scikit-learn's scorers cost about 10 ms a call, b x 6 x 2 calls.
    """
    if not truth or b < 1:
        return None
    cells = {}
    for a in truth:  # each image's (true value, cluster) cell of the attribute's table
        _, t = np.unique(truth[a], return_inverse=True)
        _, p = np.unique(pred[a], return_inverse=True)
        cells[a] = (t * (p.max() + 1) + p, (t.max() + 1, p.max() + 1), np.asarray(rows[a], dtype=int))
    stats = []
    for idx in _with_identity(n_images, b, seed):
        counts = np.bincount(idx, minlength=n_images).astype(np.float64)
        vals = []
        for cell, shape, r in cells.values():
            table = np.bincount(cell, weights=counts[r], minlength=shape[0] * shape[1]).reshape(shape)
            if table.sum() >= 2:
                vals.append(score(table))
        stats.append(float(np.mean(vals)) if vals else np.nan)
    return centred_interval(stats[1:], stats[0])


def _comb2(x: np.ndarray) -> float:
    return float((x * (x - 1) / 2).sum())


def ari_from_table(table: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985) from a contingency table; equals
    sklearn.metrics.adjusted_rand_score on the labels the table counts."""
    n = table.sum()
    index, rows, cols = _comb2(table), _comb2(table.sum(1)), _comb2(table.sum(0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = (rows + cols) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def nmi_from_table(table: np.ndarray) -> float:
    """Normalised mutual information, arithmetic mean of the entropies (scikit-learn's
    default normalisation), from a contingency table."""
    p = table[table.sum(1) > 0][:, table.sum(0) > 0] / table.sum()
    pt, pp = p.sum(1), p.sum(0)
    if len(pt) == len(pp) == 1:  # one class, one cluster: a perfect match by convention
        return 1.0
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pt, pp)[nz])).sum())
    h = (-(pt * np.log(pt)).sum() - (pp * np.log(pp)).sum()) / 2
    return 0.0 if mi <= 0 or h <= 0 else max(0.0, mi / h)


def grouped_interval(image_of: Sequence[int], n_images: int, statistic: Callable[[np.ndarray], float],
                     b: int = DEFAULT_B, seed: int = 0) -> tuple[float, float] | None:
    """Interval of statistic(weights) where units (pairs) are weighted by how often their
    image was drawn; statistic gets a weight per unit."""
    image_of = np.asarray(image_of, dtype=int)
    if image_of.size == 0 or b < 1:
        return None
    stats = []
    for idx in _with_identity(n_images, b, seed):
        w = np.bincount(idx, minlength=n_images)[image_of].astype(np.float64)
        stats.append(statistic(w) if w.sum() > 0 else np.nan)
    return centred_interval(stats[1:], stats[0])
