"""Labelling features with vocabulary words through a Shapes-trained sparse CLIP's text tower.

The model is the shipped `shapes:sparse` when it exists, else a 30-step sparse CLIP trained
here once per session. The labelling path is the evaluation's: `encode_vocab` (cached) then
`metrics.labels.vocabulary_labels`.
"""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from interpbench.adapters import load_representation
from interpbench.metrics.labels import vocabulary_labels
from interpbench.training.clip import ClipTrainCfg, train_clip
from interpbench.vocab import encode_vocab, load_vocab

REFERENCE = Path(__file__).resolve().parents[1] / "interpbench" / "reference_models"


def reference_available(name: str) -> bool:
    return (REFERENCE / name).is_dir()


@pytest.fixture(scope="session")
def sparse_rep(tmp_path_factory):
    if reference_available("sparse"):
        return load_representation("shapes:sparse")
    folder = tmp_path_factory.mktemp("vocab-labels") / "sparse"
    cfg = ClipTrainCfg(arch="shapes-vit-tiny-sparse", sparse=True, logit_scale_cap=50.0, steps=30, batch_size=16,
                       warmup=5, lr=2e-3, seed=0)
    train_clip(cfg, out_dir=folder, log_every=0)
    return load_representation(f"sparseclip:{folder}")


def _encode(rep, words, cache_dir):
    return encode_vocab(rep.encode_text_features, words, cache_dir,
                        {"model": rep.meta.fingerprint, "spec": rep.meta.spec, "what": "features"})


def test_labels_equal_a_brute_force_ranking_and_a_cache_hit_is_identical(sparse_rep, tmp_path):
    words = list(load_vocab("shapes").words)
    feats = _encode(sparse_rep, words, tmp_path)
    labels = vocabulary_labels(feats, k=3)
    # Independent computation: the text tower on all words at once, words ranked per feature in Python.
    with torch.no_grad():
        direct = sparse_rep.encode_text_features(words).numpy()
    checked = 0
    for f in range(direct.shape[1]):
        order = sorted((i for i in range(len(words)) if direct[i, f] > 1e-4), key=lambda i: (-direct[i, f], i))
        got = [int(i) for i in labels.word_ids[f] if i >= 0]
        if len(order) >= 2 and direct[order[0], f] - direct[order[1], f] > 1e-3:  # a clear winner
            assert got[0] == order[0], f"feature {f}"
            checked += 1
        if not order:
            assert got == [] and np.isnan(labels.scores[f]).all()
    assert checked >= 50  # shapes:sparse labels ~16% of its 2,048 features (the rest never fire on words)
    again = _encode(sparse_rep, words, tmp_path)
    assert torch.equal(again, feats)
    assert np.array_equal(vocabulary_labels(again, k=3).word_ids, labels.word_ids)


def test_planted_concept_words_win_the_labels_among_common_english_words(sparse_rep, tmp_path):
    """Plant the 48 Shapes concept words among 500 common English words: a model trained on
    Shapes captions names its features with the planted words far above their 9% share."""
    planted = set(load_vocab("shapes").words)
    distractors = [w for w in load_vocab("common-20k").words if w not in planted]
    random.Random(0).shuffle(distractors)
    words = sorted(planted | set(distractors[:500]))
    base_rate = len(planted) / len(words)
    labels = vocabulary_labels(_encode(sparse_rep, words, tmp_path), k=1)
    top = [w for w in labels.top_words(words) if w is not None]
    share = sum(w in planted for w in top) / len(top)
    assert base_rate < 0.09 and len(top) >= 50
    assert share > 0.5, f"only {share:.2f} of {len(top)} labelled features carry a planted word"


@pytest.mark.slow
@pytest.mark.skipif(not reference_available("sparse"), reason="needs the shipped shapes:sparse reference model")
def test_shipped_sparse_model_names_the_concepts_it_detects(tmp_path):
    """Ground truth: for concepts the best feature detects (AUROC >= 0.9 on Shapes images),
    that feature's top vocabulary word names the concept (metrics.ground_truth.label_accuracy)."""
    from PIL import Image

    from interpbench.data.shapes import CONCEPTS, SYNONYMS, ShapesWorld
    from interpbench.metrics.ground_truth import ground_truth, label_accuracy

    rep = load_representation("shapes:sparse")
    world = ShapesWorld("eval", length=400, seed=0)
    samples = [world[i] for i in range(len(world))]
    with torch.no_grad():
        feats = rep.encode_image_features(torch.stack([rep.transform(Image.fromarray(s.image)) for s in samples]))
    concepts = torch.from_numpy(np.stack([s.concepts for s in samples]))
    words = list(load_vocab("shapes").words)
    labels = vocabulary_labels(_encode(rep, words, tmp_path), k=1)
    gt = ground_truth(feats, concepts, list(CONCEPTS), threshold=0.9)
    accuracy = label_accuracy(gt, list(CONCEPTS), labels.top_words(words), SYNONYMS, threshold=0.9)
    assert gt.coverage is not None and gt.coverage >= 0.2
    assert accuracy is not None and accuracy >= 0.5
