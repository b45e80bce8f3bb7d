"""Label correlation (Pearson, streamed) and image/text label agreement against numpy."""

import numpy as np
import pytest
import torch

from interpbench.metrics.inputs import to_entries, unit_rows
from interpbench.metrics.label_correlation import (
    LabelCorrelationAccumulator,
    label_agreement,
    label_correlation,
    label_text_from_vocab,
)
from interpbench.metrics.labels import FeatureLabels


def _setup(seed=0, n=120, f=6, d=5):
    rng = np.random.default_rng(seed)
    judge = rng.normal(size=(n, d))
    text = rng.normal(size=(f, d))
    unit = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    sims = unit @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T  # [n, f]
    acts = rng.exponential(1, (n, f)) * (rng.random((n, f)) < 0.5)
    acts[:, 0] = np.maximum(sims[:, 0], 0) * 3  # planted: fires with the judge similarity
    return acts, judge, text, sims


def test_pearson_equals_numpy_corrcoef():
    acts, judge, text, sims = _setup()
    text[4] = np.nan  # unlabelled
    acts[:, 5] = 0.0  # constant activation -> undefined
    r = label_correlation(acts, judge, text)
    want = np.array([np.corrcoef(acts[:, i], sims[:, i])[0, 1] for i in range(4)])
    np.testing.assert_allclose(r.per_feature[:4], want, atol=1e-6)
    assert np.isnan(r.per_feature[4]) and np.isnan(r.per_feature[5])
    assert r.per_feature[0] > 0.8  # the planted feature
    assert r.mean == pytest.approx(want.mean()) and r.median == pytest.approx(np.median(want))
    assert r.share_above == pytest.approx((want > 0.3).mean()) and r.n_valid == 4


def test_merge_equals_one_pass():
    acts, judge, text, _ = _setup(seed=1)
    emb = unit_rows(torch.tensor(judge), "j")
    one = label_correlation(acts, judge, text)
    a, b = LabelCorrelationAccumulator(6, 5), LabelCorrelationAccumulator(6, 5)
    a.update(to_entries(acts[:50], "f", 6), emb[:50])
    b.update(to_entries(acts[50:], "f", 6), emb[50:])
    a.merge(b)
    np.testing.assert_allclose(a.result(text).per_feature, one.per_feature, atol=1e-7)


def test_label_text_from_vocab_and_agreement():
    vocab = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])
    labels = FeatureLabels(np.array([[0, 1], [2, -1], [-1, -1]]), np.zeros((3, 2), np.float32), "text_tower")
    lt = label_text_from_vocab(labels, vocab)
    np.testing.assert_array_equal(lt[:2], vocab[[0, 2]])
    assert np.isnan(lt[2]).all()
    # feature 0's top images point at word 0 (match); feature 1's at word 3 (text label is 2)
    means = np.array([[2.0, 0.1, 0], [1.0, 1.1, 0], [0, 0, 1]])
    r = label_agreement(labels.top, means, np.array([True, True, True]), vocab)
    np.testing.assert_array_equal(r.image_label, [0, 3, -1])
    assert r.n_compared == 2 and r.exact == pytest.approx(0.5)
    assert r.cosine == pytest.approx((1.0 + 0.0) / 2)
