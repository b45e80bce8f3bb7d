"""Clarity (Sparse CLIP, Eq. 2), its dataset baseline, Active F%, L0, and top-n Clarity.

Clarity_i is the mean off-diagonal pairwise cosine between the judge embeddings of the
images that activate feature i above tau. With S_i the sum of those images' unit
embeddings and n_i their number, sum_{j != k} cos = ||S_i||^2 - n_i, so

    clarity_i = (||S_i||^2 - n_i) / (n_i (n_i - 1))          (exact, O(n d), no pairs)

S = M^T E_hat and n = M^T 1 (M the 0/1 mask a > tau) accumulate batch by batch in
float64, because ||S||^2 - n cancels badly for features with many images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import ShapeMismatchError

from .inputs import Entries, RowSums, RowSumsAttribute, check_rows, to_entries, to_ids, to_matrix, unit_rows
from .topn import TopNAccumulator


def pairwise_cosine_from_sums(sums: torch.Tensor, counts: torch.Tensor, n_min: int = 2,
                              chunk: int = 8192) -> torch.Tensor:
    """Mean off-diagonal cosine from sums of unit vectors; NaN where count < max(n_min, 2)."""
    counts = counts.to(torch.float64)
    # ||S||^2 in float64, a block of rows at a time (no float64 copy of a [F, d] float32 input)
    sq = torch.cat([(sums[i:i + chunk].to(torch.float64) ** 2).sum(dim=-1) for i in range(0, sums.shape[0], chunk)]) \
        if sums.shape[0] else torch.zeros(0, dtype=torch.float64)
    ok = counts >= max(n_min, 2)
    out = torch.full_like(counts, float("nan"))
    c = counts[ok]
    # Clamp to the exact range [-1/(n-1), 1]: float32 batch products can overshoot by ~1e-7.
    out[ok] = torch.clamp((sq[ok] - c) / (c * (c - 1)), min=-1.0 / (c - 1), max=torch.ones_like(c))
    return out


@dataclass
class ClarityResult:
    clarity: float | None  # mean over active features
    per_feature: np.ndarray  # [F] float64, NaN for features with < n_min images
    counts: np.ndarray  # [F] images with activation > tau
    active_features_pct: float | None  # 100 * |F_active| / F
    l0: float | None  # mean count of features > tau per image
    l0_nonzero: float | None  # mean count of features != 0 per image
    baseline: float | None  # mean pairwise cosine over all images
    n_images: int


class ClarityAccumulator:
    """Streaming Clarity over all images above tau (Sparse CLIP Eq. 2) plus sparsity counts."""

    def __init__(self, n_features: int, dim: int, tau: float = 0.001, n_min: int = 2):
        self.n_features, self.dim, self.tau, self.n_min = n_features, dim, tau, n_min
        self._sums = RowSums(n_features, dim)
        self.counts = torch.zeros(n_features, dtype=torch.int64)
        self.sum_all = torch.zeros(dim, dtype=torch.float64)
        self.n_images = torch.zeros((), dtype=torch.int64)
        self.n_above_tau = torch.zeros((), dtype=torch.int64)
        self.n_nonzero = torch.zeros((), dtype=torch.int64)

    def update(self, entries: Entries, emb_unit: torch.Tensor) -> None:
        """entries: non-zero activations of a batch; emb_unit: [B, d] unit judge embeddings (float64)."""
        above = entries.above(self.tau)
        cols, rows = entries.cols[above], entries.rows[above]
        self._sums.add(cols, rows, torch.ones_like(cols, dtype=torch.float32), emb_unit)
        self.counts += torch.bincount(cols, minlength=self.n_features)
        self.sum_all += emb_unit.sum(dim=0)
        self.n_images += entries.n_rows
        self.n_above_tau += int(above.sum())
        self.n_nonzero += entries.vals.numel()

    sums = RowSumsAttribute()  # [F, d] float64 sums of the unit judge embeddings above tau

    def fold(self) -> None:
        """Fold and free the float32 batch buffer (streaming is over, or a checkpoint is due)."""
        self._sums.fold()

    def merge(self, other: ClarityAccumulator) -> None:
        _same(self, other)
        for key in self._KEYS:
            getattr(self, key).add_(getattr(other, key))

    _KEYS = ("sums", "counts", "sum_all", "n_images", "n_above_tau", "n_nonzero")

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).clone() for k in self._KEYS}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if tuple(sd["sums"].shape) != (self.n_features, self.dim):
            raise ShapeMismatchError(f"ClarityAccumulator.load_state_dict: sums {tuple(sd['sums'].shape)}; "
                                     f"expected ({self.n_features}, {self.dim}).")
        for k, v in sd.items():
            setattr(self, k, v.clone())

    def result(self) -> ClarityResult:
        n = int(self.n_images)
        per = pairwise_cosine_from_sums(self.sums, self.counts, self.n_min)
        active = ~torch.isnan(per)
        base = pairwise_cosine_from_sums(self.sum_all[None], torch.tensor([n]), 2)[0]
        return ClarityResult(
            clarity=float(per[active].mean()) if bool(active.any()) else None,
            per_feature=per.numpy(),
            counts=self.counts.numpy().copy(),
            active_features_pct=100.0 * float(active.sum()) / self.n_features if n else None,
            l0=int(self.n_above_tau) / n if n else None,
            l0_nonzero=int(self.n_nonzero) / n if n else None,
            baseline=None if torch.isnan(base) else float(base),
            n_images=n,
        )


def _same(a, b) -> None:
    if (a.n_features, a.dim) != (b.n_features, b.dim):
        raise ShapeMismatchError(f"{type(a).__name__}.merge: other has {b.n_features} features x {b.dim} "
                                 f"dims; expected {a.n_features} x {a.dim}.")


def topn_clarity(topn: TopNAccumulator, n_min: int = 2, sums: torch.Tensor | None = None
                 ) -> tuple[float | None, np.ndarray]:
    """SemanticLens clarity on each feature's top-n images: (mean over features, per feature [F]).
    `sums`: topn.sums() when the caller already has them."""
    per = pairwise_cosine_from_sums(topn.sums() if sums is None else sums, topn.counts(), n_min)
    ok = ~torch.isnan(per)
    return (float(per[ok].mean()) if bool(ok.any()) else None), per.numpy()


def clarity(features, judge, tau: float = 0.001, n_min: int = 2, nonnegative: bool = True) -> ClarityResult:
    """One-call Clarity. features: [N, F] activations; judge: [N, d] raw judge image embeddings."""
    emb = unit_rows(to_matrix(judge, "judge"), "judge")
    check_rows(features, emb, "features", "judge")
    acc = ClarityAccumulator(_n_cols(features), emb.shape[1], tau, n_min)
    acc.update(to_entries(features, "features", acc.n_features, nonnegative), emb)
    return acc.result()


def clarity_topn(features, judge, n: int = 20, tau: float = 0.001, n_min: int = 2,
                 ids=None, nonnegative: bool = True) -> tuple[float | None, np.ndarray]:
    """One-call top-n (SemanticLens) clarity: each feature's n most activating images above tau."""
    emb = unit_rows(to_matrix(judge, "judge"), "judge")
    check_rows(features, emb, "features", "judge")
    acc = TopNAccumulator(_n_cols(features), n, emb.shape[1], tau)
    ids = to_ids(torch.arange(emb.shape[0]) if ids is None else ids, "ids", emb.shape[0])
    acc.update(to_entries(features, "features", acc.n_features, nonnegative), ids, emb)
    return topn_clarity(acc, n_min)


def _n_cols(x) -> int:
    shape = tuple(x.shape)
    if len(shape) != 2:
        raise ShapeMismatchError(f"features: shape {shape}; expected [batch, n_features].")
    return int(shape[1])
