"""Ground-truth concept recovery on Shapes: best feature per concept by exact AUROC.

For every (feature, concept) pair, AUROC of the feature's activation as a score for the
concept's presence (multi-hot `concepts [N, C]`), computed exactly from average ranks
(ties, including the many zeros of sparse features, count one half):
    AUROC = (sum of positives' ranks - P (P + 1) / 2) / (P * Q)
(Mann-Whitney U). Ranks need all values, so the accumulator keeps every non-zero activation
(12 bytes each; never the dense [N, F] matrix: a column's zeros share one rank), up to
`max_images` images (default 1,000,000). Exceeding the cap is an error, not a silent truncation.

- gt_coverage: share of concepts (with both positives and negatives) whose best feature
  reaches AUROC >= threshold (default 0.9).
- gt_auroc_mean: mean over those concepts of the best AUROC.
- gt_label_accuracy: over covered concepts, share whose best feature's top vocabulary
  word is the concept's value ("attribute:value" -> value) or one of its synonyms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from interpbench.errors import ConfigError, ShapeMismatchError

from .inputs import Entries, check_rows, to_entries, to_matrix


@dataclass
class GroundTruthResult:
    auroc: np.ndarray  # [C, F], NaN rows for concepts lacking positives or negatives
    best_feature: np.ndarray  # [C] int64, -1 where undefined
    best_auroc: np.ndarray  # [C]
    coverage: float | None
    auroc_mean: float | None
    feature_best_auroc: np.ndarray  # [F] best AUROC of each feature over concepts
    feature_best_concept: np.ndarray  # [F] int64
    n_images: int


class GroundTruthAccumulator:
    def __init__(self, n_features: int, concept_names: list[str], max_images: int = 1_000_000):
        self.n_features, self.concept_names, self.max_images = n_features, list(concept_names), max_images
        self._rows: list[torch.Tensor] = []  # int32 global image row of each non-zero
        self._cols: list[torch.Tensor] = []  # int32 feature
        self._vals: list[torch.Tensor] = []  # float32 activation
        self._concepts: list[torch.Tensor] = []
        self._n = 0

    def update(self, entries: Entries, concepts) -> None:
        c = to_matrix(concepts, "concepts", len(self.concept_names), torch.float32)
        if c.shape[0] != entries.n_rows:
            raise ShapeMismatchError(f"concepts has {c.shape[0]} rows; features has {entries.n_rows}.")
        if bool(((c != 0) & (c != 1)).any()):
            raise ShapeMismatchError("concepts: expected a 0/1 multi-hot matrix [batch, n_concepts].")
        if self._n + entries.n_rows > self.max_images:
            raise ConfigError(f"ground truth: {self._n + entries.n_rows} images exceed gt_max_images="
                              f"{self.max_images} (exact AUROC keeps every non-zero activation in memory). "
                              "Raise SuiteConfig.gt_max_images or evaluate ground truth on fewer images.")
        self._rows.append((entries.rows + self._n).to(torch.int32))
        self._cols.append(entries.cols.to(torch.int32))
        self._vals.append(entries.vals.float())
        self._concepts.append(c.to(torch.int8))
        self._n += entries.n_rows

    def merge(self, other: GroundTruthAccumulator) -> None:
        if other.n_features != self.n_features or other.concept_names != self.concept_names:
            raise ShapeMismatchError("GroundTruthAccumulator.merge: other has different features or concepts.")
        sd = other.state_dict()
        self.update(Entries(sd["rows"].long(), sd["cols"].long(), sd["vals"], other._n, self.n_features),
                    sd["concepts"].float())

    def state_dict(self) -> dict[str, torch.Tensor]:
        rows, cols, vals, concepts = self._stacked()
        return {"rows": rows, "cols": cols, "vals": vals, "concepts": concepts}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if sd["concepts"].shape[1:] != (len(self.concept_names),) or (
                sd["cols"].numel() and int(sd["cols"].max()) >= self.n_features):
            raise ShapeMismatchError("GroundTruthAccumulator.load_state_dict: state has other feature or "
                                     "concept count.")
        self._rows, self._cols = [sd["rows"].to(torch.int32).clone()], [sd["cols"].to(torch.int32).clone()]
        self._vals, self._concepts = [sd["vals"].float().clone()], [sd["concepts"].to(torch.int8).clone()]
        self._n = sd["concepts"].shape[0]

    def _stacked(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        cat = lambda xs, dtype, width=None: torch.cat(xs) if xs else torch.zeros(  # noqa: E731
            (0,) if width is None else (0, width), dtype=dtype)
        return (cat(self._rows, torch.int32), cat(self._cols, torch.int32), cat(self._vals, torch.float32),
                cat(self._concepts, torch.int8, len(self.concept_names)))

    def result(self, threshold: float = 0.9, chunk: int = 1 << 22) -> GroundTruthResult:
        rows, cols, vals, concepts = self._stacked()
        auroc = sparse_auroc(rows.numpy(), cols.numpy(), vals.numpy(), concepts.numpy(), self.n_features, chunk)
        defined = ~np.isnan(auroc).all(axis=1)
        best_f = np.full(len(self.concept_names), -1, dtype=np.int64)
        best_a = np.full(len(self.concept_names), np.nan)
        if defined.any() and self.n_features:
            best_f[defined] = np.nanargmax(auroc[defined], axis=1)  # first maximum on ties
            best_a[defined] = auroc[defined, best_f[defined]]
        feat_a = np.full(self.n_features, np.nan)
        feat_c = np.full(self.n_features, -1, dtype=np.int64)
        if defined.any():
            feat_c[:] = np.nanargmax(np.where(defined[:, None], auroc, -np.inf), axis=0)
            feat_a = auroc[feat_c, np.arange(self.n_features)]
        n_def = int(defined.sum())
        return GroundTruthResult(
            auroc=auroc, best_feature=best_f, best_auroc=best_a,
            coverage=float((best_a[defined] >= threshold).mean()) if n_def else None,
            auroc_mean=float(best_a[defined].mean()) if n_def else None,
            feature_best_auroc=feat_a, feature_best_concept=feat_c, n_images=int(concepts.shape[0]),
        )


def exact_auroc(acts: np.ndarray, concepts: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """[C, F] AUROC of each feature column for each 0/1 concept column (NaN if P or Q is 0)."""
    pos = concepts.astype(np.float64)
    n_pos = pos.sum(axis=0)
    n_neg = acts.shape[0] - n_pos
    out = np.full((concepts.shape[1], acts.shape[1]), np.nan)
    ok = (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        return out
    for start in range(0, acts.shape[1], chunk):
        ranks = rankdata(acts[:, start:start + chunk], method="average", axis=0)
        r_pos = pos[:, ok].T @ ranks
        p, q = n_pos[ok][:, None], n_neg[ok][:, None]
        out[ok, start:start + chunk] = (r_pos - p * (p + 1) / 2) / (p * q)
    return out


def sparse_auroc(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, concepts: np.ndarray, n_features: int,
                 chunk: int = 1 << 22) -> np.ndarray:
    """exact_auroc of the [N, F] matrix whose non-zeros are (rows, cols, vals), N = len(concepts),
    without forming it: a column's zeros share one average rank, so only its non-zeros are
    sorted. Ranks are multiples of 1/2 and their sums are exact in float64, so the result is
    bit-identical to exact_auroc on the dense matrix. Works through `chunk` non-zeros at a time."""
    from scipy.sparse import csr_matrix

    n = concepts.shape[0]
    pos = concepts.astype(np.float64)
    n_pos = pos.sum(axis=0)
    n_neg = n - n_pos
    out = np.full((concepts.shape[1], n_features), np.nan)
    ok = (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        return out
    order = np.argsort(cols, kind="stable")
    nnz = np.bincount(cols, minlength=n_features)
    ends = np.cumsum(nnz)
    pos_ok, p, q = pos[:, ok], n_pos[ok][:, None], n_neg[ok][:, None]
    f0 = 0
    while f0 < n_features:  # a block of whole features with about `chunk` non-zeros
        f1 = max(f0 + 1, int(np.searchsorted(ends, ends[f0 - 1] + chunk if f0 else chunk, side="right")))
        f1 = min(f1, n_features)
        lo, hi = (int(ends[f0 - 1]) if f0 else 0), int(ends[f1 - 1])
        sel = order[lo:hi]
        ranks, zero_rank = _column_ranks(cols[sel] - f0, vals[sel], n, f1 - f0)
        local = (cols[sel] - f0).astype(np.int64)
        # rank sum of each concept's positives: their non-zeros one by one, their zeros by count
        r_nz = csr_matrix((ranks, (local, rows[sel])), shape=(f1 - f0, n)) @ pos_ok
        p_nz = csr_matrix((np.ones(len(sel)), (local, rows[sel])), shape=(f1 - f0, n)) @ pos_ok
        r_pos = (r_nz + (p.T - p_nz) * zero_rank[:, None]).T
        out[ok, f0:f1] = (r_pos - p * (p + 1) / 2) / (p * q)
        f0 = f1
    return out


def _column_ranks(cols: np.ndarray, vals: np.ndarray, n: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share the mean) of each non-zero within its column of an
    n-row matrix, and the rank all of a column's zeros share."""
    order = np.lexsort((vals, cols))
    c, v = cols[order], vals[order]
    new_run = np.ones(len(c), dtype=bool)
    new_run[1:] = (c[1:] != c[:-1]) | (v[1:] != v[:-1])
    starts = np.flatnonzero(new_run)
    run_len = np.diff(np.append(starts, len(c)))
    col_first = np.searchsorted(c, np.arange(n_cols))  # c is sorted
    first_in_col = starts - col_first[c[starts]]  # 0-based position of each tie run in its column
    run_rank = first_in_col + (run_len + 1) / 2
    nnz = np.bincount(cols, minlength=n_cols)
    neg = np.bincount(cols[vals < 0], minlength=n_cols)
    zeros = n - nnz
    ranks_sorted = np.repeat(run_rank, run_len) + np.where(v > 0, zeros[c], 0)  # zeros sit below positives
    ranks = np.empty(len(c))
    ranks[order] = ranks_sorted
    return ranks, neg + (zeros + 1) / 2


def _norm_word(w: str) -> str:
    return " ".join(w.lower().split())


def label_accuracy(result: GroundTruthResult, concept_names: list[str], top_words: list[str | None],
                   synonyms: dict[str, tuple[str, ...]] | None = None, threshold: float = 0.9) -> float | None:
    """Share of covered concepts whose best feature's top word names the concept (or a synonym).

    concept_names use "attribute:value"; `synonyms` maps value -> accepted words (default:
    none; the evaluation passes the data set's own, e.g. the Shapes world's SYNONYMS)."""
    synonyms = synonyms or {}
    covered = [c for c in range(len(concept_names))
               if result.best_feature[c] >= 0 and result.best_auroc[c] >= threshold]
    if not covered:
        return None
    hits = 0
    for c in covered:
        value = concept_names[c].split(":", 1)[-1]
        accepted = {_norm_word(value), *(_norm_word(s) for s in synonyms.get(value, ()))}
        word = top_words[result.best_feature[c]]
        hits += word is not None and _norm_word(word) in accepted
    return hits / len(covered)


def ground_truth(features, concepts, concept_names: list[str], threshold: float = 0.9,
                 nonnegative: bool = True) -> GroundTruthResult:
    """One call: features [N, F], concepts [N, C] multi-hot."""
    check_rows(features, concepts, "features", "concepts")
    acc = GroundTruthAccumulator(int(features.shape[1]), concept_names, max_images=int(features.shape[0]))
    acc.update(to_entries(features, "features", acc.n_features, nonnegative), concepts)
    return acc.result(threshold)
