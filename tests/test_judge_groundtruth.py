"""The default judge is the Shapes ground truth, not a contestant: Clarity on concept vectors,
label correlation against the labelled concept's presence (through the vocabulary's
word -> concept map, synonyms included), and a clear error where there is no ground truth."""

import numpy as np
import pytest

from interpbench.data.shapes import CONCEPTS, SYNONYMS, concept_words, word_concept_matrix
from interpbench.errors import JudgeError
from interpbench.evaluation import steps
from interpbench.evaluation.runner import EvalSettings
from interpbench.metrics.label_correlation import label_agreement, label_text_from_vocab
from interpbench.metrics.labels import FeatureLabels
from interpbench.metrics.suite import MetricSuite, SuiteConfig


def test_default_judge_is_groundtruth_not_a_ranked_model():
    from interpbench.cli.evaluate import DEFAULT_MODELS

    assert EvalSettings().judge == "groundtruth" and EvalSettings().judge not in DEFAULT_MODELS


def test_every_shapes_vocabulary_word_names_exactly_one_concept():
    words = concept_words()
    m = word_concept_matrix(words)
    assert m.shape == (len(words), len(CONCEPTS)) and (m.sum(1) == 1).all()
    for value, syns in SYNONYMS.items():
        cols = {int(np.argmax(word_concept_matrix([w]))) for w in syns}
        assert len(cols) == 1 and CONCEPTS[cols.pop()].endswith(":" + value), value  # synonyms share it
    assert word_concept_matrix(["  Round   SHAPE "])[0, CONCEPTS.index("shape:circle")] == 1  # case, spacing
    assert not word_concept_matrix(["dog", "object"]).any()  # names no concept: zero row


def _world(seed=0, n=300):
    """Activations built from known concepts: feature 0 fires on circles (with noise),
    feature 1 on anything red, feature 2 at random."""
    rng = np.random.default_rng(seed)
    concepts = (rng.random((n, len(CONCEPTS))) < 0.3).astype(np.float64)
    concepts[0] = 0
    concepts[0, 0] = 1  # no all-zero judge row
    circle, red = CONCEPTS.index("shape:circle"), CONCEPTS.index("color:red")
    acts = np.zeros((n, 3))
    acts[:, 0] = concepts[:, circle] * rng.uniform(0.5, 1.5, n)
    acts[:, 1] = concepts[:, red] * 2.0
    acts[:, 2] = rng.exponential(1, n) * (rng.random(n) < 0.4)
    return acts, concepts


def test_label_correlation_with_the_groundtruth_judge_is_pearson_with_concept_presence():
    acts, concepts = _world()
    words = ["disc", "red", "hexagon"]  # feature 0 labelled by a synonym of circle
    vj = word_concept_matrix(words)
    labels = FeatureLabels(np.array([[0], [1], [2]]), np.ones((3, 1), np.float32), "text_tower")
    s = MetricSuite(3, len(CONCEPTS), SuiteConfig(polysemanticity_max_features=None),
                    label_text_judge=label_text_from_vocab(labels, vj), label_similarity="dot")
    s.update_images(acts, concepts, np.arange(len(acts)))
    m, per = s.finalize(labels, words, vj)
    presence = concepts @ vj.T  # [n, 3]: is the labelled concept in the image
    want = [np.corrcoef(acts[:, i], presence[:, i])[0, 1] for i in range(3)]
    np.testing.assert_allclose(per["label_corr"], want, atol=1e-6)
    assert per["label_corr"][1] == pytest.approx(1.0, abs=1e-9)  # fires exactly on red
    assert abs(per["label_corr"][2]) < 0.2  # random feature
    # Clarity on unit concept vectors, against numpy
    unit = concepts / np.linalg.norm(concepts, axis=1, keepdims=True)

    def brute(mask):
        k, total = mask.sum(), unit[mask].sum(0)
        return (total @ total - k) / (k * (k - 1))

    assert m["clarity"] == pytest.approx(np.mean([brute(acts[:, i] > 0.001) for i in range(3)]), abs=1e-6)
    assert brute(acts[:, 1] > 0.001) > m["clarity_baseline"]  # red images share a concept


def test_label_agreement_skips_words_that_name_no_concept():
    vj = word_concept_matrix(["dog", "circle", "disc", "red"])  # "dog" has a zero row
    labels = np.array([1, 0, 3])  # feature 1's top word names no concept: skipped
    means = np.zeros((3, len(CONCEPTS)))
    means[0, CONCEPTS.index("shape:circle")] = 1.0
    means[1, CONCEPTS.index("shape:circle")] = 1.0
    means[2, CONCEPTS.index("shape:circle")] = 1.0
    r = label_agreement(labels, means, np.ones(3, bool), vj)
    assert r.n_compared == 2
    assert r.image_label.tolist() == [1, -1, 1]  # nearest concept word: circle (lower id than its synonym)
    assert r.exact == pytest.approx(0.5) and r.cosine == pytest.approx(0.5)  # circle = circle; red != circle


class _NoConcepts:
    name, concept_names = "folder-x", None


def test_data_without_ground_truth_needs_a_model_judge():
    with pytest.raises(JudgeError, match="--judge MODEL_SPEC") as err:
        steps.check_judge(_NoConcepts(), EvalSettings())
    assert "folder-x" in str(err.value)
    steps.check_judge(_NoConcepts(), EvalSettings(judge="shapes:dense"))  # a model judge is fine


def test_a_judge_with_the_models_own_weights_is_refused_before_extraction(tmp_path):
    """--judge X --model X would rank X in its own embedding space (docs/metrics.md#judge)."""
    import torch
    from typer.testing import CliRunner

    from interpbench.adapters import load_representation
    from interpbench.cli.main import app
    from interpbench.evaluation.runner import RunContext

    tiny = "openclip:shapes-vit-tiny/random"
    ctx = RunContext(device=torch.device("cpu"), cache_dir=tmp_path / "cache")
    rep = load_representation(tiny)
    with pytest.raises(JudgeError, match=r"--judge openclip:shapes-vit-tiny/random is the model being evaluated"):
        steps.check_judge_is_not_the_model(rep, EvalSettings(judge=tiny), ctx)
    control = load_representation(f"control:random-codes@{tiny}")  # another model: accepted
    steps.check_judge_is_not_the_model(control, EvalSettings(judge=tiny), ctx)
    steps.check_judge_is_not_the_model(rep, EvalSettings(), ctx)  # ground truth judges everything

    out = CliRunner().invoke(app, ["evaluate", "-m", tiny, "--judge", tiny, "--n-images", "8", "--quiet",
                                   "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")])
    assert isinstance(out.exception, JudgeError) and JudgeError.exit_code == 15
    assert not (tmp_path / "results").exists()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))  # refused before any extraction
