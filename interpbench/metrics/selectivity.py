"""Counterfactual selectivity: does a feature respond to changing its own concept, and only that?

Input, per pair p of inputs that differ by an intervention: the activations on both
inputs, base [P, F] and edited [P, F], and toggled [P, C], the 0/1 concepts the edit
switched on or off. Concepts fall into groups (`concept_groups` [C], e.g. the Shapes
attribute of each "attribute:value" concept); each scored feature f has a label concept
c_f (`feature_concept` [F], -1 = unlabelled). With D_pf = |edited_pf - base_pf|:

    own_f   = mean of D_pf over pairs that toggle c_f
    other_f = mean of D_pf over pairs that toggle no concept of c_f's group
    S_f     = (own_f - other_f) / (own_f + other_f)       in [-1, 1]

Pairs that change c_f's group without toggling c_f (red -> blue for a "green" feature) count
on neither side. S_f = 1: f moves only when its concept changes; 0: it moves as much
under any other edit; -1: only under other edits. S_f is invariant to rescaling f, and
undefined (NaN, not scored) where a side has no pairs or f changes on fewer than
MIN_CHANGES = 10 pairs (which includes features never active on these inputs). The score is the mean of S_f over scored
features; its interval resamples units (inputs' base scenes; each pair alone by default)
and features together, seeded (metrics.bootstrap conventions).
This is the project's definition; the paired-image idea follows TAPAScore-style synthetic
attribute pairs and interventional (causal) tests of features.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from interpbench.errors import ShapeMismatchError

from .bootstrap import DEFAULT_B, centred_interval, resample_indices
from .inputs import check_rows, to_entries, to_matrix

INTERVAL_METHOD = "bootstrap-scenes+features"
# A feature is scored only where it changes on at least this many pairs. S_f is a ratio of two
# means of |delta|; from one or two non-zero deltas it is +-1 by chance (a feature that fires on
# one edited scene of a thousand scores -1 if that edit was of another attribute). On shapes:sae
# the 115 of 317 image-route features that fired on fewer than 1 in 200 base scenes averaged
# -0.52 and set the model's mean; from 10 changes on, the per-feature values are stable.
MIN_CHANGES = 10


@dataclass
class SelectivityResult:
    per_feature: np.ndarray  # [F] S_f, NaN where not scored
    own: np.ndarray  # [F] mean |delta| under own-concept edits
    other: np.ndarray  # [F] mean |delta| under other-attribute edits
    mean: float | None  # mean S_f over scored features
    n_scored: int
    interval: tuple[float, float] | None  # 95% bootstrap interval of the mean
    n_pairs: int


class SelectivityAccumulator:
    """Streams pairs; keeps |delta| of labelled features only, sparse ([P, L] CSR float32):
    a feature silent on both sides of a pair has no entry."""

    def __init__(self, concept_groups, feature_concept):
        self.groups = np.asarray(concept_groups, dtype=np.int64).ravel()
        self.feature_concept = np.asarray(feature_concept, dtype=np.int64).ravel()
        if self.feature_concept.size and (self.feature_concept.max() >= self.groups.size
                                          or self.feature_concept.min() < -1):
            raise ShapeMismatchError(f"feature_concept: values must be -1 (unlabelled) or a concept index "
                                     f"< {self.groups.size} (len(concept_groups)).")
        self.n_features, self.n_concepts = self.feature_concept.size, self.groups.size
        self.labelled = np.flatnonzero(self.feature_concept >= 0)
        self._delta: list[sp.csr_matrix] = []
        self._toggled: list[np.ndarray] = []
        self._units: list[np.ndarray] = []

    def update(self, base, edited, toggled, units=None) -> None:
        """base, edited [B, F] activations (dense, or scipy / torch sparse); toggled [B, C] 0/1;
        units [B] ints (default: one per pair)."""
        b, e = self._labelled_cols(base, "base"), self._labelled_cols(edited, "edited")
        t = to_matrix(toggled, "toggled", self.n_concepts)
        check_rows(b, e, "base", "edited")
        check_rows(b, t, "base", "toggled")
        if bool(((t != 0) & (t != 1)).any()):
            raise ShapeMismatchError("toggled: expected a 0/1 matrix [pairs, n_concepts] of changed concepts.")
        delta = abs(e - b).astype(np.float32).tocsr()
        delta.eliminate_zeros()
        self._delta.append(delta)
        self._toggled.append(t.to(torch.int8).numpy())
        # -1: a unit of its own, numbered at result time (so merged shards never share ids).
        u = np.full(b.shape[0], -1, np.int64) if units is None else np.asarray(units, dtype=np.int64).ravel()
        if u.size != b.shape[0] or (units is not None and bool((u < 0).any())):
            raise ShapeMismatchError(f"units: {u.size} ids for {b.shape[0]} pairs; expected one id >= 0 per pair.")
        self._units.append(u)

    def _labelled_cols(self, x, name: str) -> sp.csr_matrix:
        """[B, L] CSR of the labelled features' columns, checked for shape and finiteness
        (sparse inputs by to_entries, dense ones by to_matrix)."""
        if sp.issparse(x) or (isinstance(x, torch.Tensor) and x.layout != torch.strided):
            e = to_entries(x, name, self.n_features, nonnegative=False)
            m = sp.csr_matrix((e.vals.double().numpy(), (e.rows.numpy(), e.cols.numpy())), shape=(e.n_rows, e.n_cols))
            return m[:, self.labelled]
        return sp.csr_matrix(to_matrix(x, name, self.n_features)[:, torch.from_numpy(self.labelled)].numpy())

    def merge(self, other: SelectivityAccumulator) -> None:
        if not (np.array_equal(other.groups, self.groups)
                and np.array_equal(other.feature_concept, self.feature_concept)):
            raise ShapeMismatchError("SelectivityAccumulator.merge: other has different concepts or labels.")
        self._delta += other._delta
        self._toggled += other._toggled
        self._units += other._units

    def state_dict(self) -> dict[str, torch.Tensor]:
        d, t, u = self._stacked()
        return {"delta_ptr": torch.from_numpy(d.indptr.astype(np.int64)),
                "delta_col": torch.from_numpy(d.indices.astype(np.int64)), "delta_val": torch.from_numpy(d.data),
                "toggled": torch.from_numpy(t), "units": torch.from_numpy(u)}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if sd["toggled"].shape[1:] != (self.n_concepts,) or (
                sd["delta_col"].numel() and int(sd["delta_col"].max()) >= self.labelled.size):
            raise ShapeMismatchError("SelectivityAccumulator.load_state_dict: state has other label or "
                                     "concept count.")
        shape = (sd["toggled"].shape[0], self.labelled.size)
        self._delta = [sp.csr_matrix((sd["delta_val"].numpy().astype(np.float32), sd["delta_col"].numpy(),
                                      sd["delta_ptr"].numpy()), shape=shape)]
        self._toggled = [sd["toggled"].numpy().astype(np.int8)]
        self._units = [sd["units"].numpy().astype(np.int64)]

    def _stacked(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        if not self._delta:
            return (sp.csr_matrix((0, self.labelled.size), dtype=np.float32), np.zeros((0, self.n_concepts), np.int8),
                    np.zeros(0, np.int64))
        return sp.vstack(self._delta, format="csr"), np.concatenate(self._toggled), np.concatenate(self._units)

    def result(self, b: int = DEFAULT_B, seed: int = 0, min_changes: int = MIN_CHANGES) -> SelectivityResult:
        """min_changes: a feature is scored only if it changes (|delta| > 0) on at least that
        many pairs (module docstring)."""
        delta, toggled, units = self._stacked()
        alone = units < 0
        units = units.copy()
        units[alone] = units.max(initial=-1) + 1 + np.arange(int(alone.sum()))
        sides = self._sides(delta, toggled)
        per_l, own_l, other_l = _selectivity(np.ones((1, delta.shape[0])), *sides)
        changes = np.bincount(delta.indices, minlength=self.labelled.size)  # pairs where each feature moves
        per_l[0][changes < max(min_changes, 1)] = np.nan
        per, own, other = (np.full(self.n_features, np.nan) for _ in range(3))
        per[self.labelled], own[self.labelled], other[self.labelled] = per_l[0], own_l[0], other_l[0]
        scored = np.flatnonzero(np.isfinite(per_l[0]))
        interval = None
        if scored.size and delta.shape[0]:
            interval = _interval(_columns(sides, scored), units, b, seed)
        return SelectivityResult(per, own, other, float(per_l[0][scored].mean()) if scored.size else None,
                                 int(scored.size), interval, int(delta.shape[0]))

    def _sides(self, delta: sp.csr_matrix, toggled: np.ndarray) -> tuple:
        """The own and the other side of each labelled feature, kept small: (own_delta,
        other_delta) [P, L] sparse, |delta| at the pairs of that side only; (own_mask [P, C],
        own_col [L]) and (other_mask [P, G], other_col [L]): the pairs of a side of feature l
        are mask[:, col[l]] (a pair toggles c_l / changes nothing in c_l's group)."""
        concept = self.feature_concept[self.labelled]
        n_groups = int(self.groups.max()) + 1 if self.groups.size else 0
        untouched = np.ones((toggled.shape[0], n_groups), dtype=bool)  # [P, G] group left alone
        for g in range(n_groups):
            untouched[:, g] = ~toggled[:, self.groups == g].any(axis=1)
        coo = delta.tocoo()
        group = self.groups[concept]
        own_d = sp.csr_matrix((coo.data * toggled[coo.row, concept[coo.col]], (coo.row, coo.col)), shape=delta.shape)
        other_d = sp.csr_matrix((coo.data * untouched[coo.row, group[coo.col]], (coo.row, coo.col)), shape=delta.shape)
        return own_d, other_d, toggled.astype(np.float64), concept, untouched.astype(np.float64), group


def _columns(sides: tuple, keep: np.ndarray) -> tuple:
    """The sides of the labelled features `keep` only."""
    own_d, other_d, own_mask, own_col, other_mask, other_col = sides
    return own_d[:, keep], other_d[:, keep], own_mask, own_col[keep], other_mask, other_col[keep]


def _selectivity(weights, own_d, other_d, own_mask, own_col, other_mask, other_col):
    """[R, L] selectivity, own and other means for R rows of pair weights [R, P]."""
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.asarray(own_d.T @ weights.T).T / (weights @ own_mask)[:, own_col]
        other = np.asarray(other_d.T @ weights.T).T / (weights @ other_mask)[:, other_col]
        sel = (own - other) / (own + other)
    return sel, own, other


def _interval(sides, units, b, seed):
    """Resample units (groups of pairs) and features together; percentile interval of the
    mean, centred on the point (row 0: the identity resample) because a resample that leaves
    a rare feature's own or other pairs out drops it from the mean (bootstrap.centred_interval)."""
    uniq, unit_of_pair = np.unique(units, return_inverse=True)
    rows = np.vstack([np.arange(uniq.size), resample_indices(uniq.size, b, seed)])
    counts = np.stack([np.bincount(r, minlength=uniq.size) for r in rows])
    sel, _, _ = _selectivity(counts[:, unit_of_pair].astype(np.float64), *sides)
    n_feat = sides[0].shape[1]
    feats = np.vstack([np.arange(n_feat), resample_indices(n_feat, b, seed + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate may leave no feature scored
        stats = np.nanmean(np.take_along_axis(sel, feats, axis=1), axis=1)
    return centred_interval(stats[1:], stats[0])


def counterfactual_selectivity(base, edited, toggled, concept_groups, feature_concept, units=None,
                               b: int = DEFAULT_B, seed: int = 0, min_changes: int = MIN_CHANGES) -> SelectivityResult:
    """One call: base, edited [P, F] activations; toggled [P, C]; concept_groups [C];
    feature_concept [F] (-1 = unlabelled); units [P] (e.g. base scene of each pair);
    min_changes: pairs a feature must change on to be scored."""
    acc = SelectivityAccumulator(concept_groups, feature_concept)
    acc.update(base, edited, toggled, units)
    return acc.result(b=b, seed=seed, min_changes=min_changes)
