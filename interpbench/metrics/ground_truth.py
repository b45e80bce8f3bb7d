"""Ground-truth concept recovery on Shapes: best feature per concept by exact AUROC.

For every (feature, concept) pair, AUROC of the feature's activation as a score for the
concept's presence (multi-hot `concepts [N, C]`), computed exactly from average ranks
(ties, including the many zeros of sparse features, count one half):
    AUROC = (sum of positives' ranks - P (P + 1) / 2) / (P * Q)
(Mann-Whitney U). Ranks need all values, so the accumulator keeps every image's non-zero
activations (sparse, never the dense [N, F] matrix), up to `max_images` images (default
1,000,000; the Shapes evaluation set is ~2,000). Exceeding the cap is an error, not a silent
truncation. The ranks come from the non-zero entries alone (`sparse_auroc`): the zeros of a
column all share one average rank, so only the entries need sorting.

- gt_coverage: share of concepts (with both positives and negatives) whose best feature
  reaches AUROC >= threshold (default 0.9).
- gt_auroc_mean: mean over those concepts of the best AUROC.
- gt_label_accuracy: over covered concepts, share whose best feature's top vocabulary
  word is the concept's value ("attribute:value" -> value) or one of its synonyms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
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
        self._parts: list[Entries] = []  # non-zero activations, rows numbered from 0 in arrival order
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
                              f"{self.max_images} (exact AUROC keeps all activations in memory). Raise "
                              "SuiteConfig.gt_max_images or evaluate ground truth on fewer images.")
        nz = entries.vals != 0
        # int32 ids (12 bytes per kept activation, not 20): these entries grow with N
        self._parts.append(Entries((entries.rows[nz] + self._n).int(), entries.cols[nz].int(),
                                   entries.vals[nz].float(), entries.n_rows, self.n_features))
        self._concepts.append(c.to(torch.int8))
        self._n += entries.n_rows

    def merge(self, other: GroundTruthAccumulator) -> None:
        if other.n_features != self.n_features or other.concept_names != self.concept_names:
            raise ShapeMismatchError("GroundTruthAccumulator.merge: other has different features or concepts.")
        start = 0
        for part, c in zip(other._parts, other._concepts, strict=True):
            self.update(Entries(part.rows - start, part.cols, part.vals, part.n_rows, part.n_cols), c)
            start += part.n_rows

    def state_dict(self) -> dict[str, torch.Tensor]:
        e, concepts = self._stacked()
        return {"rows": e.rows, "cols": e.cols, "vals": e.vals, "concepts": concepts}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if "acts" in sd or sd["concepts"].shape[1:] != (len(self.concept_names),) or \
                (sd["cols"].numel() and int(sd["cols"].max()) >= self.n_features):
            raise ShapeMismatchError("GroundTruthAccumulator.load_state_dict: state has other feature or "
                                     "concept count, or an older layout; run the evaluation again.")
        n = sd["concepts"].shape[0]
        self._parts = [Entries(sd["rows"].int(), sd["cols"].int(), sd["vals"].float().clone(), n, self.n_features)]
        self._concepts, self._n = [sd["concepts"].to(torch.int8).clone()], n

    def _stacked(self) -> tuple[Entries, torch.Tensor]:
        if not self._parts:
            z = torch.zeros(0, dtype=torch.int64)
            return Entries(z, z, torch.zeros(0), 0, self.n_features), torch.zeros(0, len(self.concept_names),
                                                                                 dtype=torch.int8)
        e = Entries(torch.cat([p.rows for p in self._parts]), torch.cat([p.cols for p in self._parts]),
                    torch.cat([p.vals for p in self._parts]), self._n, self.n_features)
        return e, torch.cat(self._concepts)

    def result(self, threshold: float = 0.9) -> GroundTruthResult:
        e, concepts = self._stacked()
        return result_from_auroc(sparse_auroc(e, concepts.numpy()), threshold, self.n_features, e.n_rows)


def result_from_auroc(auroc: np.ndarray, threshold: float, n_features: int, n_images: int) -> GroundTruthResult:
    """Best feature per concept (first maximum on ties), coverage and mean best AUROC."""
    n_concepts = auroc.shape[0]
    defined = ~np.isnan(auroc).all(axis=1) if n_features else np.zeros(n_concepts, dtype=bool)
    best_f = np.full(n_concepts, -1, dtype=np.int64)
    best_a = np.full(n_concepts, np.nan)
    if defined.any():
        best_f[defined] = np.nanargmax(auroc[defined], axis=1)
        best_a[defined] = auroc[defined, best_f[defined]]
    feat_a = np.full(n_features, np.nan)
    feat_c = np.full(n_features, -1, dtype=np.int64)
    if defined.any():
        feat_c[:] = np.nanargmax(np.where(defined[:, None], auroc, -np.inf), axis=0)
        feat_a = auroc[feat_c, np.arange(n_features)]
    n_def = int(defined.sum())
    return GroundTruthResult(
        auroc=auroc, best_feature=best_f, best_auroc=best_a,
        coverage=float((best_a[defined] >= threshold).mean()) if n_def else None,
        auroc_mean=float(best_a[defined].mean()) if n_def else None,
        feature_best_auroc=feat_a, feature_best_concept=feat_c, n_images=n_images,
    )


def sparse_auroc(e: Entries, concepts: np.ndarray, block: int = 1 << 21) -> np.ndarray:
    """[C, F] exact AUROC (average ranks, as `exact_auroc`) from the non-zero entries of an
    [N, F] matrix. In column f with z zeros and m negative entries, every zero has rank
    m + (z + 1) / 2 and a non-zero entry its average rank among the column's entries, plus z
    when it is positive; the positives' rank sum is then two sparse products. Columns are
    independent, so they are ranked in blocks of about `block` entries: the sort's
    temporaries (~80 bytes per entry) stay bounded however many images there are."""
    n, f = e.n_rows, e.n_cols
    pos = concepts.astype(np.float64)
    n_pos = pos.sum(axis=0)
    out = np.full((concepts.shape[1], f), np.nan)
    ok = (n_pos > 0) & (n - n_pos > 0)
    if not ok.any() or f == 0:
        return out
    keep = (e.vals != 0).numpy()
    by_col = sp.csc_matrix((e.vals.numpy()[keep], (e.rows.numpy()[keep], e.cols.numpy()[keep])), shape=(n, f))
    start = 0
    while start < f:  # columns [start, end) hold about `block` entries
        end = max(start + 1, int(np.searchsorted(by_col.indptr, by_col.indptr[start] + block, side="right")) - 1)
        end = min(end, f)
        part = by_col[:, start:end].tocoo()
        out[ok, start:end] = _block_auroc(part.row, part.col, part.data.astype(np.float64), n, end - start,
                                          pos[:, ok], n_pos[ok])
        start = end
    return out


def _block_auroc(rows, cols, vals, n: int, f: int, p_ok: np.ndarray, n_pos: np.ndarray) -> np.ndarray:
    """[C_ok, f] AUROC of the f columns whose non-zero entries are (rows, cols, vals)."""
    order = np.lexsort((vals, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    nnz = np.bincount(cols, minlength=f)
    col_start = np.concatenate([[0], np.cumsum(nnz)[:-1]])
    new_tie = np.ones(len(vals), dtype=bool)
    new_tie[1:] = (cols[1:] != cols[:-1]) | (vals[1:] != vals[:-1])
    tie_id = np.cumsum(new_tie) - 1
    tie_first = np.flatnonzero(new_tie)
    tie_last = np.append(tie_first[1:], len(vals)) - 1
    zeros = (n - nnz).astype(np.float64)
    negatives = np.bincount(cols[vals < 0], minlength=f).astype(np.float64)
    rank = (tie_first[tie_id] + tie_last[tie_id]) / 2.0 - col_start[cols] + 1.0 + np.where(vals > 0, zeros[cols], 0.0)
    zero_rank = negatives + (zeros + 1.0) / 2.0
    ranks = sp.csr_matrix((rank, (rows, cols)), shape=(n, f))
    present = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, f))
    pos_nz = np.asarray((present.T @ p_ok).T)  # [C_ok, f] positives with a non-zero entry
    r_pos = np.asarray((ranks.T @ p_ok).T) + zero_rank[None, :] * (n_pos[:, None] - pos_nz)
    p, q = n_pos[:, None], (n - n_pos)[:, None]
    return (r_pos - p * (p + 1) / 2) / (p * q)


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
