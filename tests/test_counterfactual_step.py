"""The counterfactual step of `interpbench evaluate` on a real (random, tiny) open_clip model,
against the metric recomputed from features taken straight from the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interpbench.data.counterfactual import CounterfactualSource, concept_attributes
from interpbench.data.shapes import CONCEPTS, word_concepts
from interpbench.evaluation.runner import EvalSettings, RunContext, evaluate_model
from interpbench.metrics.selectivity import counterfactual_selectivity

SPEC = "openclip:shapes-vit-tiny/random"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    settings = EvalSettings(n_images=24, judge="groundtruth", zeroshot=False, batch_size=64, seed=2, cf_scenes=8)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=tmp_path_factory.mktemp("cf") / "cache")
    return (*evaluate_model(SPEC, settings, ctx), settings)


def test_default_scene_count_follows_the_image_count():
    assert EvalSettings().cf_scenes == 250 and EvalSettings(n_images=80).cf_scenes == 10
    assert EvalSettings(n_images=4).cf_scenes == 0 and EvalSettings(cf_scenes=3).record()["cf_scenes"] == 3
    with pytest.raises(ValueError, match="cf_scenes"):
        EvalSettings(cf_scenes=-1)


def test_step_matches_the_metric_on_features_from_the_model(run):
    from interpbench.adapters import load_representation

    record, per_feature, labels, settings = run
    rep = load_representation(SPEC)
    cf = CounterfactualSource(8, seed=2)
    images = torch.stack([rep.transform(cf.image(i)) for i in range(len(cf))])
    with torch.inference_mode():
        feats = rep.encode_image_features(images).float().numpy()
    base, edited, scene = cf.pairs()
    words = {int(f): pairs[0][0] for f, pairs in labels.items() if pairs}
    index = {c: i for i, c in enumerate(CONCEPTS)}
    vocab = np.array([index.get(word_concepts().get(words.get(f, ""), ""), -1) for f in range(feats.shape[1])])
    gt = per_feature["gt_best_concept"].astype(np.int64)
    m = record["metrics"]
    assert m["cf_pairs"] == 8 * 5
    for key, fc in (("cf_selectivity", vocab), ("cf_selectivity_gt", gt)):
        want = counterfactual_selectivity(feats[base], feats[edited], cf.toggled(), concept_attributes(), fc,
                                          units=scene, seed=2)
        np.testing.assert_allclose(per_feature[key], want.per_feature, atol=2e-4, equal_nan=True)
        assert m[f"{key}_n"] == want.n_scored and m[key] == pytest.approx(want.mean, abs=2e-4)
        iv = record["intervals"][key]
        assert iv["method"] == "bootstrap-scenes+features" and iv["seed"] == 2
        assert iv["lo"] <= m[key] <= iv["hi"]


def test_off_shapes_or_zero_scenes_the_step_is_skipped():
    from interpbench.evaluation.counterfactual import counterfactual_selectivity_step

    assert counterfactual_selectivity_step(None, object(), None, {}, EvalSettings(), None) == ({}, {}, {})
    assert counterfactual_selectivity_step(None, None, None, {}, EvalSettings(cf_scenes=0), None) == ({}, {}, {})
