"""SemanticLens polysemanticity and redundancy on each feature's top-n judge embeddings.

Definitions follow SemanticLens (Dreyer et al., 2025; `semanticlens/scores.py`):
- polysemanticity_i = 1 - cos(c1, c2), with c1, c2 the centres of k-means (k=2,
  n_init=10, fixed random_state) on feature i's top-n embeddings. When a cluster has
  fewer than 2 members, the score falls back to 1 - mean over the first min(10, n)
  examples of cos(mean embedding, example).
- redundancy = mean over features of the max cosine between the feature's mean
  embedding and any other feature's mean embedding.
Our embeddings are unit-normalised before clustering and averaging (SemanticLens clusters
whatever its foundation model returns); features with fewer than n_min top images are
left out (NaN).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .inputs import unit_rows_float32
from .topn import TopNAccumulator


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine with a zero vector counted as 0 (like torch normalize with eps)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def polysemanticity_score(examples: np.ndarray, random_state: int = 123) -> float:
    """Polysemanticity of one feature from its example embeddings [k, d] (k >= 2)."""
    from sklearn.cluster import KMeans  # imported here: sklearn is slow to import

    x = np.asarray(examples, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fewer distinct points than clusters" -> fallback below
        km = KMeans(n_clusters=2, n_init=10, random_state=random_state).fit(x)
    sizes = np.bincount(km.labels_, minlength=2)
    if sizes.min() >= 2:
        return 1.0 - _cos(km.cluster_centers_[0], km.cluster_centers_[1])
    mean = x.mean(axis=0)
    m = min(10, x.shape[0])
    return 1.0 - float(np.mean([_cos(mean, x[i]) for i in range(m)]))


def polysemanticity(topn: TopNAccumulator, n_min: int = 2, random_state: int = 123,
                    max_features: int | None = None, seed: int = 0) -> tuple[float | None, np.ndarray]:
    """(mean, per-feature [F]) polysemanticity over features with >= n_min top images.

    k-means costs ~20 ms per feature on one core; `max_features` scores a seeded random
    subset of eligible features instead of all (the others stay NaN).
    """
    counts = topn.counts()
    eligible = torch.nonzero(counts >= max(n_min, 2)).flatten().numpy()
    if max_features is not None and eligible.size > max_features:
        eligible = np.sort(np.random.default_rng(seed).choice(eligible, max_features, replace=False))
    per = np.full(topn.n_features, np.nan)
    for f in eligible:
        emb, mask = topn.embeddings(torch.tensor([int(f)]))
        per[f] = polysemanticity_score(emb[0][mask[0]].numpy(), random_state)
    ok = ~np.isnan(per)
    return (float(per[ok].mean()) if ok.any() else None), per


def redundancy_from_means(means: torch.Tensor, valid: torch.Tensor,
                          chunk: int = 4096) -> tuple[float | None, np.ndarray]:
    """(mean, per-feature [F]) max cosine of each valid mean embedding to any other valid one.

    The cosine matrix is symmetric, so only blocks on and above the diagonal are computed,
    each updating the row maxima of one side and the column maxima of the other: half the
    O(F^2 d) work of a full pass, and never more than a [chunk, chunk] block in memory."""
    idx = torch.nonzero(valid).flatten()
    per = np.full(means.shape[0], np.nan)
    k = idx.numel()
    if k < 2:
        return None, per
    unit = unit_rows_float32(means[idx])
    best = torch.full((k,), float("-inf"), dtype=torch.float32)
    for i in range(0, k, chunk):
        for j in range(i, k, chunk):
            block = unit[i:i + chunk] @ unit[j:j + chunk].T
            if i == j:
                block.fill_diagonal_(float("-inf"))  # exclude self-similarity
            torch.maximum(best[i:i + chunk], block.max(dim=1).values, out=best[i:i + chunk])
            if i != j:
                torch.maximum(best[j:j + chunk], block.max(dim=0).values, out=best[j:j + chunk])
    best = best.double().clamp(-1.0, 1.0)  # float32 dot products of unit rows can reach 1 + 1e-7
    per[idx.numpy()] = best.numpy()
    return float(best.mean()), per


def redundancy(topn: TopNAccumulator, n_min: int = 2, sums: torch.Tensor | None = None
               ) -> tuple[float | None, np.ndarray]:
    """Redundancy over features with >= n_min top images (mean embedding of their top-n).
    `sums`: topn.sums() when the caller already has them (cosine ignores the 1/n)."""
    return redundancy_from_means(topn.sums() if sums is None else sums, topn.counts() >= max(n_min, 2))
