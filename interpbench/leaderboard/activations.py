"""Passes over a results record's stored activations (the `.cards.safetensors` sidecar), for
cards and search.

The sidecar holds every image's non-zero activations in CSR form (written by
interpbench.evaluation.cards); `StoredActivations.chunks` hands them out as dense blocks of
`rows` images in the order the activation cache held them, so memory stays
O(rows * F + nnz) and the numbers match a pass over the cache itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import CorruptFileError
from interpbench.metrics.inputs import float32_floor


@dataclass(frozen=True)
class StoredActivations:
    indptr: np.ndarray  # int64 [N + 1]
    indices: np.ndarray  # int64 [nnz] feature of each entry
    values: np.ndarray  # float32 [nnz]
    image_index: np.ndarray  # int64 [N] data-set index of each row
    n_features: int

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], where: str) -> StoredActivations:
        need = ("indptr", "indices", "values", "image_index", "n_features")
        missing = [k for k in need if k not in arrays]
        n = len(arrays.get("image_index", ()))
        if missing or len(arrays["indptr"]) != n + 1 or arrays["indptr"][-1] != len(arrays["values"]):
            raise CorruptFileError(where, f"not a feature-card sidecar (lacks {missing} or has inconsistent "
                                   "CSR arrays)", "delete it and run `interpbench explore` again")
        return cls(arrays["indptr"], arrays["indices"], arrays["values"], arrays["image_index"],
                   int(arrays["n_features"][0]))

    def chunks(self, rows: int = 1024):
        """Yield (dense features [b, F] float32, {"index": [b] int64}) blocks of `rows` images."""
        for start in range(0, len(self.image_index), rows):
            stop = min(start + rows, len(self.image_index))
            lo, hi = int(self.indptr[start]), int(self.indptr[stop])
            block = torch.zeros(stop - start, self.n_features, dtype=torch.float32)
            row = np.repeat(np.arange(stop - start), np.diff(self.indptr[start:stop + 1]))
            block[torch.from_numpy(row), torch.from_numpy(self.indices[lo:hi].astype(np.int64))] = \
                torch.from_numpy(self.values[lo:hi])
            yield block, {"index": torch.from_numpy(self.image_index[start:stop])}


def feature_stats(stored: StoredActivations, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: mean activation over images, and number of images above tau."""
    total = torch.zeros(stored.n_features, dtype=torch.float64)
    fires = torch.zeros(stored.n_features, dtype=torch.int64)
    n = 0
    for feats, _ in stored.chunks():
        total += feats.double().sum(0)
        fires += (feats > float32_floor(tau)).sum(0)  # exact for float32 values, as the metrics compare
        n += feats.shape[0]
    return (total / max(n, 1)).numpy(), fires.numpy()


def top_images(stored: StoredActivations, features: list[int], k: int) -> dict[int, list[tuple[int, float]]]:
    """For each feature: its k most activating images as (image index, activation), zeros left out.

    Ties go to the lower image index (stable sort), so cards do not depend on chunking.
    """
    cols = torch.as_tensor(features, dtype=torch.int64)
    vals, idx = [], []
    for feats, t in stored.chunks():
        vals.append(feats[:, cols])
        idx.append(t["index"].long())
    acts, index = torch.cat(vals), torch.cat(idx)
    out = {}
    for j, f in enumerate(features):
        order = torch.sort(acts[:, j], descending=True, stable=True).indices[:k]
        out[f] = [(int(index[i]), float(acts[i, j])) for i in order if acts[i, j] > 0]
    return out


def image_scores(stored: StoredActivations, features: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(image indices, summed activation of `features` on each image)."""
    cols = torch.as_tensor(features, dtype=torch.int64)
    scores, idx = [], []
    for feats, t in stored.chunks():
        scores.append(feats[:, cols].sum(1))
        idx.append(t["index"].long())
    return torch.cat(idx).numpy(), torch.cat(scores).numpy()


def image_rows(stored: StoredActivations, images: list[int]) -> dict[int, np.ndarray]:
    """Full activation rows [F] of the given images."""
    wanted = set(images)
    out = {}
    for feats, t in stored.chunks():
        for r, i in enumerate(t["index"].tolist()):
            if i in wanted:
                out[int(i)] = feats[r].numpy()
    return out
