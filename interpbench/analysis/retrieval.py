"""Latent retrieval: nearest images by cosine of codes, precision@k per Shapes attribute.

For each attribute, queries and gallery are the images with a single value of it; the
query itself is excluded; ties go to the lower index (stable sort). precision@k is the
mean share of a query's k neighbours that share its value. `chance` is the expected
precision of a random ranking, sum_v n_v (n_v - 1) / (n (n - 1)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interpbench.analysis.intervals import attribute_mean_interval
from interpbench.errors import EmptyDatasetError, ShapeMismatchError
from interpbench.metrics.bootstrap import DEFAULT_B


def nearest(x: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """[Q, k] indices into x of each query row's k most cosine-similar rows, itself excluded."""
    x = torch.nn.functional.normalize(torch.as_tensor(x).double(), dim=1)
    queries = torch.as_tensor(queries, dtype=torch.long)
    out = []
    for a in range(0, len(queries), chunk):
        q = queries[a:a + chunk]
        sim = x[q] @ x.T
        sim[torch.arange(len(q)), q] = float("-inf")
        out.append(torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k])
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long)


def precision_at_k(x, truth: Sequence, k: int = 10) -> dict:
    """Mean precision@k for sharing `truth` (None entries are left out of queries and gallery)."""
    x = torch.as_tensor(np.asarray(x))
    if x.shape[0] != len(truth):
        raise ShapeMismatchError(f"{x.shape[0]} codes but {len(truth)} ground-truth values")
    keep = [i for i, t in enumerate(truth) if t is not None]
    if len(keep) <= k:
        raise EmptyDatasetError(f"precision@{k} needs more than {k} images with a single value, got {len(keep)}")
    y = np.array([truth[i] for i in keep])
    nn = nearest(x[keep], torch.arange(len(keep)), k).numpy()
    per_query = np.full(x.shape[0], np.nan)  # indexed by image; NaN: not a query of this attribute
    per_query[keep] = (y[nn] == y[:, None]).mean(axis=1)
    _, counts = np.unique(y, return_counts=True)
    n = len(y)
    chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    return {"precision": float(np.nanmean(per_query)), "chance": chance, "n": n, "per_query": per_query}


def retrieval_report(codes, baseline, attributes: dict[str, Sequence], k: int = 10, b: int = DEFAULT_B,
                     seed: int = 0) -> dict:
    """precision@k on codes and on the baseline embedding, per attribute and averaged.

    `interval` (codes): 95% bootstrap over query images, neighbours held fixed; None when b = 0.
    """
    per, queries = {}, []
    for a, truth in attributes.items():
        c, base = precision_at_k(codes, truth, k), precision_at_k(baseline, truth, k)
        per[a] = {"codes": c["precision"], "baseline": base["precision"], "chance": c["chance"], "n": c["n"]}
        queries.append(c["per_query"])
    mean = {key: float(np.mean([r[key] for r in per.values()])) for key in ("codes", "baseline", "chance")}
    return {"k": k, "per_attribute": per, "mean": mean,
            "interval": attribute_mean_interval(np.stack(queries), b, seed) if queries else None}
