"""The counterfactual step of `interpbench evaluate` on a real (random, tiny) open_clip model,
against the metric recomputed from features taken straight from the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interpbench.adapters import load_representation
from interpbench.data import load_source
from interpbench.data.counterfactual import CounterfactualSource, concept_attributes
from interpbench.data.shapes import CONCEPTS, word_concepts
from interpbench.evaluation.runner import EvalSettings, RunContext, evaluate_model
from interpbench.metrics.selectivity import counterfactual_selectivity

SPEC = "openclip:shapes-vit-tiny/random"


@pytest.fixture(scope="module")
def step(tmp_path_factory):
    """The step on its own: the model's vocabulary labels, seeded stand-in ground-truth labels."""
    from interpbench.evaluation import steps
    from interpbench.evaluation.counterfactual import counterfactual_selectivity_step

    settings = EvalSettings(n_images=24, judge="groundtruth", zeroshot=False, batch_size=64, seed=2, cf_scenes=8)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=tmp_path_factory.mktemp("cf") / "cache")
    rep = load_representation(SPEC)
    labels = steps.vocabulary_labels(rep, steps.vocab_words(settings), settings, ctx)
    rng = np.random.default_rng(0)
    gt = {"gt_best_concept": rng.integers(0, len(CONCEPTS), rep.n_features).astype(np.float32),
          "gt_best_auroc": rng.uniform(0.5, 1.0, rep.n_features).astype(np.float32)}
    source = load_source("shapes", 24, 2)
    metrics, intervals, per = counterfactual_selectivity_step(rep, source, labels, gt, settings, ctx)
    record = {"metrics": metrics, "intervals": intervals}
    return rep, record, {**per, **gt}, steps.labels_for_record(labels)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    settings = EvalSettings(n_images=24, judge="groundtruth", zeroshot=False, batch_size=64, seed=2, cf_scenes=8)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=tmp_path_factory.mktemp("cf") / "cache")
    record, per_feature, labels = evaluate_model(SPEC, settings, ctx)
    return load_representation(SPEC), record, per_feature, labels


def test_default_scene_count_follows_the_image_count():
    assert EvalSettings().cf_scenes == 200 and EvalSettings(n_images=80).cf_scenes == 8
    assert EvalSettings(n_images=4).cf_scenes == 0 and EvalSettings(cf_scenes=3).record()["cf_scenes"] == 3
    with pytest.raises(ValueError, match="cf_scenes"):
        EvalSettings(cf_scenes=-1)


def _check_against_the_model(rep, record, per_feature, labels):
    cf = CounterfactualSource(8, seed=2)
    images = torch.stack([rep.transform(cf.image(i)) for i in range(len(cf))])
    with torch.inference_mode():
        feats = rep.encode_image_features(images).float().numpy()
    base, edited, scene = cf.pairs()
    words = {int(f): pairs[0][0] for f, pairs in labels.items() if pairs}
    index = {c: i for i, c in enumerate(CONCEPTS)}
    vocab = np.array([index.get(word_concepts().get(words.get(f, ""), ""), -1) for f in range(feats.shape[1])])
    gt = np.where(per_feature["gt_best_auroc"] >= 0.75, per_feature["gt_best_concept"], -1).astype(np.int64)
    m = record["metrics"]
    assert m["cf_pairs"] == 8 * 5 and (vocab >= 0).any()
    for key, fc in (("cf_selectivity", vocab), ("cf_selectivity_gt", gt)):
        want = counterfactual_selectivity(feats[base], feats[edited], cf.toggled(), concept_attributes(), fc,
                                          units=scene, seed=2)
        np.testing.assert_allclose(per_feature[key], want.per_feature, atol=2e-4, equal_nan=True)
        assert want.n_scored > 0 and m[f"{key}_n"] == want.n_scored
        assert m[key] == pytest.approx(want.mean, abs=2e-4)
        iv = record["intervals"][key]
        assert iv["method"] == "bootstrap-scenes+features" and iv["seed"] == 2
        assert iv["lo"] <= m[key] <= iv["hi"]


def test_step_matches_the_metric_on_features_from_the_model(step):
    _check_against_the_model(*step)


@pytest.mark.slow
def test_evaluate_writes_the_metrics_intervals_and_per_feature_values(run):
    _check_against_the_model(*run)


def test_off_shapes_or_zero_scenes_the_step_is_skipped():
    from interpbench.evaluation.counterfactual import counterfactual_selectivity_step

    assert counterfactual_selectivity_step(None, object(), None, {}, EvalSettings(), None) == ({}, {}, {})
    assert counterfactual_selectivity_step(None, None, None, {}, EvalSettings(cf_scenes=0), None) == ({}, {}, {})
