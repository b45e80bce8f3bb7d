"""Streaming passes over a filled activation cache, for cards and search.

The cache is read chunk by chunk (interpbench.extraction), so memory stays O(chunk * F)
plus the few rows and columns asked for, even for 50k-feature SAEs.
"""

from __future__ import annotations

import numpy as np
import torch

from interpbench.extraction.extract import iter_image_chunks
from interpbench.metrics._inputs import float32_floor


def feature_stats(cache, n_features: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: mean activation over images, and number of images above tau."""
    total = torch.zeros(n_features, dtype=torch.float64)
    fires = torch.zeros(n_features, dtype=torch.int64)
    n = 0
    for feats, _ in iter_image_chunks(cache, n_features):
        total += feats.double().sum(0)
        fires += (feats > float32_floor(tau)).sum(0)  # exact for float32 values, as the metrics compare
        n += feats.shape[0]
    return (total / max(n, 1)).numpy(), fires.numpy()


def top_images(cache, n_features: int, features: list[int], k: int) -> dict[int, list[tuple[int, float]]]:
    """For each feature: its k most activating images as (image index, activation), zeros left out.

    Ties go to the lower image index (stable sort), so cards do not depend on chunking.
    """
    cols = torch.as_tensor(features, dtype=torch.int64)
    vals, idx = [], []
    for feats, t in iter_image_chunks(cache, n_features):
        vals.append(feats[:, cols])
        idx.append(t["index"].long())
    acts, index = torch.cat(vals), torch.cat(idx)
    out = {}
    for j, f in enumerate(features):
        order = torch.sort(acts[:, j], descending=True, stable=True).indices[:k]
        out[f] = [(int(index[i]), float(acts[i, j])) for i in order if acts[i, j] > 0]
    return out


def image_scores(cache, n_features: int, features: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(image indices, summed activation of `features` on each image)."""
    cols = torch.as_tensor(features, dtype=torch.int64)
    scores, idx = [], []
    for feats, t in iter_image_chunks(cache, n_features):
        scores.append(feats[:, cols].sum(1))
        idx.append(t["index"].long())
    return torch.cat(idx).numpy(), torch.cat(scores).numpy()


def image_rows(cache, n_features: int, images: list[int]) -> dict[int, np.ndarray]:
    """Full activation rows [F] of the given images."""
    wanted = set(images)
    out = {}
    for feats, t in iter_image_chunks(cache, n_features):
        for r, i in enumerate(t["index"].tolist()):
            if i in wanted:
                out[int(i)] = feats[r].numpy()
    return out
