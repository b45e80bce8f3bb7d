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
                          chunk: int = 1024) -> tuple[float | None, np.ndarray]:
    """(mean, per-feature [F]) max cosine of each valid mean embedding to any other valid one."""
    idx = torch.nonzero(valid).flatten()
    per = np.full(means.shape[0], np.nan)
    if idx.numel() < 2:
        return None, per
    unit = torch.nn.functional.normalize(means[idx].to(torch.float64), dim=1).float()
    best = torch.empty(idx.numel(), dtype=torch.float64)
    for start in range(0, idx.numel(), chunk):
        block = unit[start:start + chunk] @ unit.T
        rows = torch.arange(block.shape[0])
        block[rows, rows + start] = float("-inf")  # exclude self-similarity
        best[start:start + chunk] = block.max(dim=1).values.double()
    per[idx.numpy()] = best.numpy()
    return float(best.mean()), per


def redundancy(topn: TopNAccumulator, n_min: int = 2) -> tuple[float | None, np.ndarray]:
    """Redundancy over features with >= n_min top images (mean embedding of their top-n)."""
    return redundancy_from_means(topn.sums(), topn.counts() >= max(n_min, 2))
