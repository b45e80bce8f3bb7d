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


@pytest.mark.parametrize("signed", [False, True])
def test_sparse_auroc_is_bit_identical_to_the_dense_ranks(signed):
    """The accumulator never forms [N, F]: its rank sums from the non-zeros alone must equal
    scipy's rankdata over the dense matrix exactly (ties, empty and all-active columns, signs)."""
    from interpbench.metrics.ground_truth import exact_auroc, sparse_auroc

    rng = np.random.default_rng(3)
    n, f = 300, 40
    acts = np.round(rng.exponential(1, (n, f)), 1).astype(np.float32) * (rng.random((n, f)) < 0.2)
    if signed:
        acts *= np.where(rng.random((n, f)) < 0.4, -1, 1).astype(np.float32)
    acts[:, 5] = 0  # never active
    acts[:, 6] = rng.integers(1, 4, n)  # always active, heavy ties
    concepts = (rng.random((n, 5)) < 0.25).astype(np.int8)
    concepts[:, 4] = 1  # no negatives: undefined
    rows, cols = np.nonzero(acts)
    want = exact_auroc(acts, concepts)
    for chunk in (7, 1 << 22):  # feature blocks of a few non-zeros, and one block
        got = sparse_auroc(rows.astype(np.int32), cols.astype(np.int32), acts[rows, cols], concepts, f, chunk)
        np.testing.assert_array_equal(got, want)
    for c in range(4):
        np.testing.assert_allclose(want[c], [roc_auc_score(concepts[:, c], acts[:, j]) for j in range(f)], atol=1e-12)


def test_state_dict_round_trip_holds_no_dense_matrix():
    acts, concepts = _data(seed=2)
    a = GroundTruthAccumulator(6, NAMES)
    a.update(to_entries(acts, "f", 6), concepts)
    sd = a.state_dict()
    assert sd["vals"].numel() == int((acts != 0).sum())  # the non-zeros only
    b = GroundTruthAccumulator(6, NAMES)
    b.load_state_dict(sd)
    np.testing.assert_array_equal(b.result().auroc, ground_truth(acts, concepts, NAMES).auroc)
