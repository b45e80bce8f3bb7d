"""Top-K words per feature: the naming step of Sparse CLIP (metrics.md 4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interpbench.errors import BadSpecError

MISSING = -1  # index of an empty slot (fewer than k words activate the feature)


def top_words(features: torch.Tensor, k: int = 5, *, positive_only: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Word features [V, F] (dense or sparse) -> (values [F, k] float32, word indices [F, k] int64).

    Row f lists the k words with the largest activation of feature f, largest first; ties go
    to the lower word index, so the result is deterministic. With `positive_only` (features
    are non-negative activations: a zero means "does not fire") words at <= 0 never count,
    and unfilled slots hold index -1 and value 0. Sparse input needs `positive_only`.
    """
    if k < 1:
        raise BadSpecError(f"k must be >= 1, got {k}")
    if features.dim() != 2:
        raise BadSpecError(f"features must be [n_words, n_features], got shape {tuple(features.shape)}")
    if features.layout != torch.strided:
        if not positive_only:
            raise BadSpecError("top_words on a sparse tensor needs positive_only=True "
                               "(implicit zeros cannot be ranked against negative values)")
        return _top_sparse(features, k)
    return _top_dense(features.float(), k, positive_only)


def _top_dense(features: torch.Tensor, k: int, positive_only: bool):
    v, f = features.shape
    vals, idx = torch.sort(features.T, dim=1, descending=True, stable=True)
    vals, idx = vals[:, :k].clone(), idx[:, :k].clone()
    if positive_only:
        off = vals <= 0
        vals[off], idx[off] = 0.0, MISSING
    return _pad(vals, idx, f, k)


def _top_sparse(features: torch.Tensor, k: int):
    coo = features.to_sparse_coo().coalesce()
    words, feats = coo.indices().numpy()
    vals = coo.values().float().numpy()
    keep = vals > 0
    words, feats, vals = words[keep], feats[keep], vals[keep]
    order = np.lexsort((words, -vals, feats))  # by feature, then value (desc), then word
    words, feats, vals = words[order], feats[order], vals[order]
    first = np.searchsorted(feats, feats, side="left")
    rank = np.arange(feats.size) - first
    take = rank < k
    n_features = features.shape[1]
    out_vals = torch.zeros(n_features, k, dtype=torch.float32)
    out_idx = torch.full((n_features, k), MISSING, dtype=torch.int64)
    out_vals[feats[take], rank[take]] = torch.from_numpy(vals[take])
    out_idx[feats[take], rank[take]] = torch.from_numpy(words[take]).long()
    return out_vals, out_idx


def _pad(vals: torch.Tensor, idx: torch.Tensor, n_features: int, k: int):
    """Fewer than k words in the vocabulary: fill the extra slots as empty."""
    if vals.shape[1] == k:
        return vals, idx
    pad = k - vals.shape[1]
    return (torch.cat([vals, torch.zeros(n_features, pad)], 1),
            torch.cat([idx, torch.full((n_features, pad), MISSING, dtype=torch.int64)], 1))


def top_words_as_text(words: Sequence[str], indices: torch.Tensor) -> list[list[str]]:
    """Word indices [F, k] from `top_words` -> the words, empty slots left out."""
    return [[words[i] for i in row if i != MISSING] for row in indices.tolist()]
