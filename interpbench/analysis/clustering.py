"""k-means on latent codes, scored against each Shapes attribute with ARI and NMI.

Only images where the attribute has a single value take part (object attributes need
one-object images). Codes are L2-normalised first by default, so k-means groups by
direction, the geometry cosine retrieval and CLIP use; k defaults to the attribute's number
of ground-truth values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from interpbench.analysis.intervals import ari_from_table, attribute_score_interval, nmi_from_table
from interpbench.errors import EmptyDatasetError, ShapeMismatchError
from interpbench.metrics.bootstrap import DEFAULT_B


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, np.finfo(np.float32).tiny)


def kmeans_labels(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, normalise: bool = True) -> np.ndarray:
    """Cluster ids [N] from scikit-learn's KMeans (seeded)."""
    x = np.asarray(x, dtype=np.float64)
    if normalise:
        x = _unit(x)
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)


def cluster_scores(x, truth: Sequence, k: int | None = None, seed: int = 0, normalise: bool = True) -> dict:
    """ARI and NMI of k-means on x [N, D] against truth [N] (None entries are left out)."""
    x = np.asarray(x)
    if x.shape[0] != len(truth):
        raise ShapeMismatchError(f"{x.shape[0]} codes but {len(truth)} ground-truth values")
    keep = np.array([t is not None for t in truth])
    y = np.array([t for t in truth if t is not None])
    values = sorted(set(y.tolist()))
    if len(values) < 2:
        raise EmptyDatasetError(f"clustering needs images of at least two ground-truth values, got {values}; "
                                "use more images")
    k = k or len(values)
    if keep.sum() < max(k, 2):
        raise EmptyDatasetError(f"k-means with k={k} needs at least {max(k, 2)} images with a single "
                                f"ground-truth value, got {int(keep.sum())}; use more images")
    pred = kmeans_labels(x[keep], k, seed=seed, normalise=normalise)
    return {"ari": float(adjusted_rand_score(y, pred)), "nmi": float(normalized_mutual_info_score(y, pred)),
            "k": int(k), "n": int(keep.sum()), "clusters": pred.tolist()}


def clustering_report(x, attributes: dict[str, Sequence], seed: int = 0, normalise: bool = True,
                      b: int = DEFAULT_B) -> dict:
    """cluster_scores per attribute, plus the means over attributes (cluster ids dropped).

    `mean_ari_interval` / `mean_nmi_interval`: 95% bootstrap over images with the cluster
    assignments held fixed (analysis/intervals.py); None when b = 0.
    """
    per, truth, pred, rows = {}, {}, {}, {}
    for a, values in attributes.items():
        r = cluster_scores(x, values, seed=seed, normalise=normalise)
        rows[a] = np.array([i for i, t in enumerate(values) if t is not None])
        truth[a], pred[a] = np.array([values[i] for i in rows[a]]), np.array(r.pop("clusters"))
        per[a] = r
    n = np.asarray(x).shape[0]
    ci = {name: attribute_score_interval(truth, pred, rows, n, score, b, seed)
          for name, score in (("ari", ari_from_table), ("nmi", nmi_from_table))}
    return {"per_attribute": per, "mean_ari": float(np.mean([r["ari"] for r in per.values()])),
            "mean_nmi": float(np.mean([r["nmi"] for r in per.values()])),
            "mean_ari_interval": ci["ari"], "mean_nmi_interval": ci["nmi"]}
