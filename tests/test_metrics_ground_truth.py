"""Ground-truth recovery: exact AUROC against sklearn, coverage, label accuracy with synonyms."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from interpbench.data.shapes import SYNONYMS
from interpbench.errors import ConfigError
from interpbench.metrics.ground_truth import GroundTruthAccumulator, ground_truth, label_accuracy
from interpbench.metrics.inputs import to_entries

NAMES = ["shape:circle", "color:red", "shape:square", "size:large"]


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    concepts = (rng.random((n, 4)) < 0.3).astype(float)
    concepts[:, 3] = 0  # no positives -> undefined
    acts = np.round(rng.exponential(1, (n, 6)), 1) * (rng.random((n, 6)) < 0.5)  # many zeros and ties
    acts[:, 0] = concepts[:, 0] * rng.uniform(0.5, 1, n)  # perfect detector of circle
    acts[:, 1] = concepts[:, 1] * rng.uniform(0, 1, n) + 0.2 * rng.random(n) * (1 - concepts[:, 1])
    return acts, concepts


def test_auroc_matches_sklearn_and_best_features():
    acts, concepts = _data()
    r = ground_truth(acts, concepts, NAMES)
    for c in range(3):
        want = [roc_auc_score(concepts[:, c], acts[:, f]) for f in range(6)]
        np.testing.assert_allclose(r.auroc[c], want, atol=1e-12)
        assert r.best_feature[c] == int(np.argmax(want))
    assert np.isnan(r.auroc[3]).all() and r.best_feature[3] == -1
    assert r.best_feature[0] == 0 and r.best_auroc[0] == pytest.approx(1.0)
    assert r.coverage == pytest.approx(np.mean(r.best_auroc[:3] >= 0.9))
    assert r.auroc_mean == pytest.approx(np.mean(r.best_auroc[:3]))


def test_label_accuracy_with_synonyms():
    acts, concepts = _data()
    r = ground_truth(acts, concepts, NAMES)
    covered = [c for c in range(3) if r.best_auroc[c] >= 0.9]
    assert 0 in covered
    words = [None] * 6
    words[0] = "Disc"  # a synonym of circle, case and spacing normalised
    want = sum(c == 0 for c in covered) / len(covered)
    assert label_accuracy(r, NAMES, words, SYNONYMS) == pytest.approx(want)
    assert label_accuracy(r, NAMES, words) == pytest.approx(0.0)  # no synonyms given: "disc" is not "circle"
    words[0] = "square"
    assert label_accuracy(r, NAMES, words, SYNONYMS) == pytest.approx(0.0)
    assert label_accuracy(r, NAMES, words, synonyms={"circle": ("square",)}) == pytest.approx(want)


def test_merge_and_cap():
    acts, concepts = _data(seed=1)
    one = ground_truth(acts, concepts, NAMES)
    a, b = GroundTruthAccumulator(6, NAMES), GroundTruthAccumulator(6, NAMES)
    a.update(to_entries(acts[:70], "f", 6), concepts[:70])
    b.update(to_entries(acts[70:], "f", 6), concepts[70:])
    a.merge(b)
    np.testing.assert_allclose(a.result().auroc, one.auroc, atol=1e-12)
    small = GroundTruthAccumulator(6, NAMES, max_images=100)
    with pytest.raises(ConfigError, match="gt_max_images"):
        small.update(to_entries(acts, "f", 6), concepts)


def test_sparse_auroc_equals_dense_ranks_with_ties_and_negatives():
    """The sparse rank path (zeros share one rank) against rankdata on the dense matrix and sklearn."""
    from interpbench.metrics.ground_truth import exact_auroc, sparse_auroc

    rng = np.random.default_rng(3)
    acts = np.round(rng.normal(size=(150, 9)), 1) * (rng.random((150, 9)) < 0.3)  # ties, zeros, negatives
    acts[:, 4] = 0.0  # an all-zero column
    acts[:, 5] = np.abs(acts[:, 5])
    concepts = (rng.random((150, 3)) < 0.4).astype(float)
    concepts[:, 2] = 1.0  # no negatives -> undefined
    got = sparse_auroc(to_entries(acts, "f", 9, nonnegative=False), concepts)
    np.testing.assert_allclose(got, exact_auroc(acts.astype(np.float32), concepts), atol=1e-12)
    for c in range(2):
        np.testing.assert_allclose(got[c], [roc_auc_score(concepts[:, c], acts[:, f]) for f in range(9)], atol=1e-12)
    assert np.isnan(got[2]).all()
    # ranked in blocks of columns (as at scale): the same numbers
    blocked = sparse_auroc(to_entries(acts, "f", 9, nonnegative=False), concepts, block=7)
    np.testing.assert_array_equal(blocked, got)


def test_state_round_trip_keeps_sparse_entries():
    acts, concepts = _data(seed=2)
    a = GroundTruthAccumulator(6, NAMES)
    a.update(to_entries(acts, "f", 6), concepts)
    sd = a.state_dict()
    assert "acts" not in sd and sd["vals"].numel() == int((acts != 0).sum())  # nothing of size N x F
    b = GroundTruthAccumulator(6, NAMES)
    b.load_state_dict(sd)
    np.testing.assert_allclose(b.result().auroc, a.result().auroc, atol=1e-12)
