"""Vocabulary top-K labels, templates and SAE decoder-atom naming: planted answers and ties."""

import numpy as np
import pytest
import torch

from interpbench.errors import ConfigError, ShapeMismatchError
from interpbench.metrics.labels import apply_template, decoder_labels, vocabulary_labels


def test_planted_feature_gets_its_word():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    feats = rng.random((50, 6)) * (rng.random((50, 6)) < 0.3)
    feats[17, 2] = 10.0  # "w17" is the planted label of feature 2
    feats[:, 5] = 0.0  # no word activates feature 5
    lab = vocabulary_labels(feats, k=5, chunk=7)
    assert lab.top_words(words)[2] == "w17"
    assert lab.top_words(words)[5] is None and not lab.labelled[5]
    for f in range(5):  # independent: argsort by (value desc, index asc), positives only
        col = feats[:, f]
        order = [i for i in np.lexsort((np.arange(50), -col)) if col[i] > 0][:5]
        got = lab.word_ids[f][lab.word_ids[f] >= 0]
        np.testing.assert_array_equal(got, order)
        np.testing.assert_allclose(lab.scores[f][: len(order)], col[order], rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 4, 100])
def test_ties_go_to_lower_index_whatever_the_chunking(chunk):
    feats = np.zeros((12, 3), dtype=np.float32)
    feats[[9, 2, 5, 7], 0] = 1.0  # four-way tie, k=3 -> 2, 5, 7
    feats[[3, 11], 1] = [0.5, 0.5]
    feats[:, 2] = 0.25  # every word ties
    lab = vocabulary_labels(feats, k=3, chunk=chunk)
    np.testing.assert_array_equal(lab.word_ids[0], [2, 5, 7])
    np.testing.assert_array_equal(lab.word_ids[1], [3, 11, -1])
    np.testing.assert_array_equal(lab.word_ids[2], [0, 1, 2])
    # torch tensors in, same answer out
    np.testing.assert_array_equal(vocabulary_labels(torch.tensor(feats), k=3, chunk=chunk).word_ids, lab.word_ids)


def test_streaming_chunks_iterable():
    rng = np.random.default_rng(1)
    feats = rng.random((30, 4))
    one = vocabulary_labels(feats, k=4)
    chunks = vocabulary_labels((feats[i:i + 8] for i in range(0, 30, 8)), k=4)
    np.testing.assert_array_equal(one.word_ids, chunks.word_ids)
    with pytest.raises(ShapeMismatchError, match="empty"):
        vocabulary_labels(iter([]), k=2)


def test_decoder_atom_naming_by_cosine():
    rng = np.random.default_rng(2)
    words = rng.normal(size=(40, 8))
    w_dec = rng.normal(size=(5, 8))
    w_dec[3] = 7.0 * words[22]  # atom 3 points exactly at word 22
    w_dec[4] = 0.0  # a zero atom has no direction -> no label
    lab = decoder_labels(words, w_dec, k=2, chunk=9)
    assert lab.top[3] == 22 and lab.scores[3, 0] == pytest.approx(1.0, abs=1e-6)
    assert lab.top[4] == -1
    cos = (w_dec[:4] / np.linalg.norm(w_dec[:4], axis=1, keepdims=True)) @ (
        words / np.linalg.norm(words, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(lab.word_ids[:4], np.argsort(-cos, axis=1, kind="stable")[:, :2])
    np.testing.assert_allclose(lab.scores[:4], np.sort(cos, axis=1)[:, ::-1][:, :2], atol=1e-6)


def test_template():
    assert apply_template(["cat", "red car"], "a photo of a {}.") == ["a photo of a cat.", "a photo of a red car."]
    assert apply_template(["cat"]) == ["cat"]
    for bad in ("no placeholder", "{} and {}", "{0} x {}"):
        with pytest.raises(ConfigError, match="placeholder"):
            apply_template(["cat"], bad)
