"""Label correlation and image/text label agreement (defined by this project; see docs/metrics.md).

Primary, per labelled feature i with label word w_i: the Pearson correlation, across all
evaluation images x, between the feature's activation a_i(x) and the judge's image-text
cosine s_i(x) = cos(judge_image(x), judge_text(w_i)).

Streaming without a [N, F] similarity matrix: with e(x) the unit judge image embedding
and t_i the unit judge text embedding of w_i, s_i(x) = e(x) . t_i, hence
    sum_x s_i     = t_i . (sum_x e)
    sum_x s_i^2   = t_i^T (sum_x e e^T) t_i
    sum_x a_i s_i = t_i . (sum_x a_i(x) e(x))
so we keep sum a, sum a^2 per feature, the activation-weighted embedding sum [F, d], and
the embedding sum [d] and second moment [d, d], all float64. The labels are needed only
at the end. Cost per batch: (active entries) x d + B x d^2.

Secondary: the image-side label (vocabulary word whose judge text embedding is nearest,
by cosine, to the mean unit judge embedding of the feature's top-n images) against the
text-side label (the feature's top word): exact match rate and mean cosine between the
two words' judge text embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import ShapeMismatchError

from .inputs import (
    Entries,
    RowSums,
    RowSumsAttribute,
    check_rows,
    to_entries,
    to_matrix,
    unit_rows,
    unit_rows_float32,
)
from .labels import FeatureLabels, _RunningTopK

_REL_TOL = 1e-10  # variance below this fraction of the raw second moment counts as zero


@dataclass
class LabelCorrelationResult:
    mean: float | None
    median: float | None
    share_above: float | None  # share of valid features with r > threshold
    per_feature: np.ndarray  # [F] r, NaN for unlabelled or zero-variance features
    n_valid: int


class LabelCorrelationAccumulator:
    _KEYS = ("sum_a", "sum_a2", "weighted", "emb_sum", "emb_outer", "n_images")

    def __init__(self, n_features: int, dim: int):
        self.n_features, self.dim = n_features, dim
        self.sum_a = torch.zeros(n_features, dtype=torch.float64)
        self.sum_a2 = torch.zeros(n_features, dtype=torch.float64)
        self._weighted = RowSums(n_features, dim)
        self.emb_sum = torch.zeros(dim, dtype=torch.float64)
        self.emb_outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.n_images = torch.zeros((), dtype=torch.int64)

    def update(self, entries: Entries, emb_unit: torch.Tensor) -> None:
        """entries: non-zero activations of a batch; emb_unit: [B, d] unit judge image embeddings
        (s = cosine), or raw judge vectors when the similarity is a dot product (s = e . t_i)."""
        vals = entries.vals.double()
        self.sum_a.index_add_(0, entries.cols, vals)
        self.sum_a2.index_add_(0, entries.cols, vals * vals)
        self._weighted.add(entries.cols, entries.rows, entries.vals, emb_unit)
        self.emb_sum += emb_unit.sum(dim=0)
        e32 = emb_unit.to(torch.float32)  # per-batch product in float32, accumulated in float64
        self.emb_outer += (e32.T @ e32).double()
        self.n_images += entries.n_rows

    weighted = RowSumsAttribute()  # [F, d] float64 activation-weighted sums of unit judge embeddings

    def fold(self) -> None:
        """Fold and free the float32 batch buffer (streaming is over, or a checkpoint is due)."""
        self._weighted.fold()

    def merge(self, other: LabelCorrelationAccumulator) -> None:
        if (other.n_features, other.dim) != (self.n_features, self.dim):
            raise ShapeMismatchError("LabelCorrelationAccumulator.merge: other has different features or dim.")
        for k in self._KEYS:
            getattr(self, k).add_(getattr(other, k))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).clone() for k in self._KEYS}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if tuple(sd["weighted"].shape) != (self.n_features, self.dim):
            raise ShapeMismatchError(f"LabelCorrelationAccumulator.load_state_dict: weighted "
                                     f"{tuple(sd['weighted'].shape)}; expected ({self.n_features}, {self.dim}).")
        for k, v in sd.items():
            setattr(self, k, v.clone())

    def result(self, label_text_judge, threshold: float = 0.3, chunk: int = 4096) -> LabelCorrelationResult:
        """label_text_judge: [F, d] judge text embedding of each feature's label; rows that are
        all zero or contain NaN mark unlabelled features."""
        text = torch.as_tensor(np.asarray(label_text_judge, dtype=np.float64))
        if tuple(text.shape) != (self.n_features, self.dim):
            raise ShapeMismatchError(f"label_text_judge: shape {tuple(text.shape)}; expected "
                                     f"[{self.n_features}, {self.dim}] (one judge text embedding per feature).")
        labelled = labelled_rows(text)
        per = torch.full((self.n_features,), float("nan"), dtype=torch.float64)
        n = float(self.n_images)
        idx_all = torch.nonzero(labelled).flatten()
        for start in range(0, idx_all.numel(), chunk):
            idx = idx_all[start:start + chunk]
            per[idx] = self._pearson(idx, text[idx], n)
        ok = ~torch.isnan(per)
        vals = per[ok].numpy()
        if vals.size == 0:
            return LabelCorrelationResult(None, None, None, per.numpy(), 0)
        return LabelCorrelationResult(float(vals.mean()), float(np.median(vals)),
                                      float((vals > threshold).mean()), per.numpy(), int(vals.size))

    def _pearson(self, idx: torch.Tensor, text: torch.Tensor, n: float) -> torch.Tensor:
        t = text / text.norm(dim=1, keepdim=True)
        ss = t @ self.emb_sum
        ss2 = ((t @ self.emb_outer) * t).sum(dim=1)
        sas = (self.weighted[idx] * t).sum(dim=1)
        return pearson_from_sums(n, self.sum_a[idx], self.sum_a2[idx], ss, ss2, sas)


def labelled_rows(text: torch.Tensor) -> torch.Tensor:
    """[F] bool: rows of a [F, d] label text matrix that hold a label (finite, not all zero)."""
    return torch.isfinite(text).all(dim=1) & (text.abs().sum(dim=1) > 0)


def pearson_from_sums(n, sa, sa2, ss, ss2, sas):
    """Pearson r from the sums over images (n = number of images, a = activation, s = judge
    similarity; tensors broadcast): NaN where either side has no variance, or n < 2."""
    n = torch.as_tensor(n, dtype=torch.float64)
    cov = n * sas - sa * ss
    va, vs = n * sa2 - sa * sa, n * ss2 - ss * ss
    valid = (va > _REL_TOL * n * sa2) & (vs > _REL_TOL * n * ss2) & (n >= 2)
    r = torch.full_like(cov, float("nan"))
    r[valid] = (cov[valid] / torch.sqrt(va[valid] * vs[valid])).clamp(-1.0, 1.0)
    return r


def label_text_from_vocab(labels: FeatureLabels, vocab_text_judge) -> np.ndarray:
    """[F, d] judge text embedding of each feature's top word; NaN rows for unlabelled features."""
    vocab = np.asarray(to_matrix(vocab_text_judge, "vocab_text_judge").numpy())
    out = np.full((labels.top.shape[0], vocab.shape[1]), np.nan)
    ok = labels.labelled
    out[ok] = vocab[labels.top[ok]]
    return out


def label_correlation(features, judge, label_text_judge, threshold: float = 0.3,
                      nonnegative: bool = True) -> LabelCorrelationResult:
    """One call: features [N, F], raw judge image embeddings [N, d], label_text_judge [F, d]."""
    emb = unit_rows(to_matrix(judge, "judge"), "judge")
    check_rows(features, emb, "features", "judge")
    acc = LabelCorrelationAccumulator(int(features.shape[1]), emb.shape[1])
    acc.update(to_entries(features, "features", acc.n_features, nonnegative), emb)
    return acc.result(label_text_judge, threshold)


@dataclass
class LabelAgreementResult:
    exact: float | None  # share of compared features whose two labels are the same word
    cosine: float | None  # mean judge-text cosine between the two labels
    image_label: np.ndarray  # [F] image-side word id, -1 where not computed
    n_compared: int


def label_agreement(text_label, image_means, valid, vocab_text_judge, chunk: int = 1024) -> LabelAgreementResult:
    """text_label: [F] word ids (-1 = none); image_means: [F, d] mean (or sum) of each feature's
    top-n unit judge image embeddings; valid: [F] bool, features with enough top images.
    Words are scored `chunk` at a time: a [F, chunk] float32 block (226 MB at F = 55,296).
    A word whose judge vector is all zeros (the ground-truth judge: a word that names no
    concept) is never an image-side label, and a feature whose top word has none is skipped."""
    vocab = unit_rows_float32(to_matrix(vocab_text_judge, "vocab_text_judge"))
    has_vector = vocab.abs().sum(dim=1) > 0
    text_label = torch.as_tensor(np.asarray(text_label)).long()
    valid = torch.as_tensor(np.asarray(valid)).bool()
    if text_label.numel() and int(text_label.max()) >= vocab.shape[0]:
        raise ShapeMismatchError(f"text label ids reach {int(text_label.max())}; vocab_text_judge has "
                                 f"{vocab.shape[0]} rows. Pass the judge text embeddings of the same vocabulary.")
    labelled = (text_label >= 0) & valid
    labelled[labelled.clone()] = has_vector[text_label[labelled]]
    idx = torch.nonzero(labelled).flatten()
    image_label = torch.full_like(text_label, -1)
    if idx.numel() == 0:
        return LabelAgreementResult(None, None, image_label.numpy(), 0)
    means = unit_rows_float32(torch.as_tensor(np.asarray(image_means))[idx])
    run = _RunningTopK(idx.numel(), 1)
    for start in range(0, vocab.shape[0], chunk):
        scores = means @ vocab[start:start + chunk].T
        scores[:, ~has_vector[start:start + chunk]] = float("-inf")
        run.add(scores, start)
    image_label[idx] = run.ids[:, 0]
    a, b = image_label[idx], text_label[idx]
    cos = (vocab[a].double() * vocab[b].double()).sum(dim=1).clamp(-1.0, 1.0)  # float32 rounding
    return LabelAgreementResult(float((a == b).double().mean()), float(cos.mean()), image_label.numpy(),
                                int(idx.numel()))
