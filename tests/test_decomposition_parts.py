"""Mean-ablation, zero-shot scoring, head roles, retrieval, segmentation, spurious-cue removal and
text pools: each checked against a computation written out here."""

import numpy as np
import pytest
import torch

from interpbench.clipmodels import create_random
from interpbench.data.shapes import ATTRIBUTES, SYNONYMS, ZEROSHOT_TEMPLATES, ShapesWorld
from interpbench.decomposition import ComponentMeans, ablate, ablation_sweep, class_directions, decompose
from interpbench.decomposition.ablation import accuracy, group_accuracy
from interpbench.decomposition.pools import general_pool, resolve_pool, shapes_pool
from interpbench.decomposition.roles import (
    agreement,
    attribute_shares,
    nearest_images,
    probe_skill,
    retrieval_precision,
    text_attributes,
)
from interpbench.decomposition.segmentation import (
    attention_maps,
    binarise,
    decomposition_maps,
    mean_average_precision,
    mean_iou,
    pixel_accuracy,
    score_maps,
    soft_masks,
)
from interpbench.decomposition.spurious import cue_heads, spurious_ablation
from interpbench.decomposition.textspan import TextSpanResult
from interpbench.errors import (
    ConfigError,
    CorruptFileError,
    EmptyDatasetError,
    MissingFileError,
    ShapeMismatchError,
)


@pytest.fixture(scope="module")
def model():
    return create_random("shapes-vit-tiny", seed=0).eval()


@pytest.fixture(scope="module")
def decs(model):
    g = torch.Generator().manual_seed(0)
    fit = decompose(model, torch.randn(12, 3, 64, 64, generator=g), normalize=True, keep_tokens=False)
    score = decompose(model, torch.randn(10, 3, 64, 64, generator=g), normalize=True)
    return fit, score


# --- mean-ablation and scoring -------------------------------------------------------------

def test_ablate_replaces_exactly_the_chosen_terms(decs):
    fit, score = decs
    means = ComponentMeans.of(fit)  # means from another set of images than the scored one
    torch.testing.assert_close(means.heads, fit.heads.mean(0))
    got = ablate(score, means, heads=[(3, 1), (2, 0)], mlps=[1], embed=True)
    expected = (score.total() - score.heads[:, 3, 1] - score.heads[:, 2, 0] - score.mlps[:, 1] - score.embed
                + fit.heads[:, 3, 1].mean(0) + fit.heads[:, 2, 0].mean(0) + fit.mlps[:, 1].mean(0)
                + fit.embed.mean(0))
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    whole = ablate(score, means, layers=[0])
    torch.testing.assert_close(whole, score.total() - score.heads[:, 0].sum(1) + fit.heads[:, 0].mean(0).sum(0),
                               atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ablate(score, means), score.total(), atol=1e-6, rtol=1e-5)


def test_ablate_rejects_mismatched_means(model, decs):
    fit, score = decs
    raw = decompose(model, torch.zeros(2, 3, 64, 64), keep_tokens=False)  # not normalised
    with pytest.raises(ShapeMismatchError, match="normalisation"):
        ablate(score, ComponentMeans.of(raw), heads=[(0, 0)])
    with pytest.raises(IndexError, match="layer index 7"):
        ablate(score, ComponentMeans.of(fit), heads=[(7, 0)])


def test_ablation_sweep_and_accuracy(decs):
    fit, score = decs
    g = torch.Generator().manual_seed(1)
    clf = torch.nn.functional.normalize(torch.randn(64, 3, generator=g), dim=0)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    means = ComponentMeans.of(fit)
    sweep = ablation_sweep(score, means, clf, labels)
    manual = (score.embed + score.mlps.sum(1) + fit.heads.mean(0).sum((0, 1))) @ clf
    assert sweep["attn_layers_0_to_3"] == pytest.approx(float((manual.argmax(-1).numpy() == labels).mean()))
    assert sweep["base"] == pytest.approx(float(((score.total() @ clf).argmax(-1).numpy() == labels).mean()))
    assert set(sweep) >= {"mlps_and_embed", "attn_layer_0", "attn_layer_3"}


def test_group_accuracy_known_answer():
    emb = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1], [1, 0]])
    clf = torch.eye(2)
    labels, groups = [0, 1, 1, 1, 0], [0, 0, 1, 1, 2]
    res = group_accuracy(emb, clf, labels, groups)
    assert res["average"] == pytest.approx(0.8) and res["per_group"] == {0: 0.5, 1: 1.0, 2: 1.0}
    assert res["worst_group"] == 0.5 and res["worst_group_id"] == 0
    assert accuracy(emb, clf, labels) == pytest.approx(0.8)
    with pytest.raises(ShapeMismatchError, match="labels"):
        accuracy(emb, clf, [0, 1])


def test_class_directions_are_clip_benchmark_prompts(model):
    import open_clip

    tok = open_clip.get_tokenizer("shapes-vit-tiny")
    names, templates = ["circle", "star"], list(ZEROSHOT_TEMPLATES["shape"])
    got = class_directions(model, tok, names, templates)
    with torch.no_grad():
        cols = []
        for n in names:
            e = torch.nn.functional.normalize(model.encode_text(tok([t.format(c=n) for t in templates])), dim=-1)
            cols.append(torch.nn.functional.normalize(e.mean(0), dim=0))
    torch.testing.assert_close(got, torch.stack(cols, 1), atol=1e-5, rtol=1e-4)


# --- head roles and retrieval ----------------------------------------------------------------

def _result(texts, explained):
    return TextSpanResult(texts, list(range(len(texts))), explained, torch.zeros(2), torch.zeros(len(texts), 2), 1.0)


def test_text_attributes_and_shares():
    assert text_attributes("a red circle") == ["shape", "color"]
    assert text_attributes("an object on a checkerboard background") == ["background"]
    assert text_attributes("three shapes") == ["count"]
    assert text_attributes("a reddish sunset") == []  # whole words only
    shares = attribute_shares(_result(["a red circle", "a striped background", "a sunset"], [0.4, 0.4, 0.2]))
    assert shares == pytest.approx({"shape": 0.2, "color": 0.2, "background": 0.4, "other": 0.2})


def test_probe_skill_known_answers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    separable = np.eye(3)[y] * 5 + rng.normal(0, 0.1, size=(200, 3))
    assert probe_skill(separable, y, seed=0) == pytest.approx(1.0)
    constant = np.ones((200, 3))
    assert probe_skill(constant, y, seed=0) <= 0.0 + 1e-9  # no better than the majority class
    assert np.isnan(probe_skill(separable[:5], y[:5], seed=0))


def test_agreement_known_answer():
    rows = [{"probe_best": "color", "textspan_attribute": "color", "agree": True, "probe_best_skill": 0.9},
            {"probe_best": "shape", "textspan_attribute": "color", "agree": False, "probe_best_skill": 0.5},
            {"probe_best": "shape", "textspan_attribute": "shape", "agree": True, "probe_best_skill": 0.1},
            {"probe_best": "size", "textspan_attribute": None, "agree": None, "probe_best_skill": 0.9}]
    a = agreement(rows)
    assert a["n_heads"] == 3 and a["agreement"] == pytest.approx(2 / 3)
    assert a["chance"] == pytest.approx((1 * 2 + 2 * 1) / 9)  # p_probe . p_text
    assert agreement(rows, min_skill=0.2)["agreement"] == pytest.approx(0.5)


def test_retrieval_known_answers():
    samples = ShapesWorld("eval", 60, seed=0)
    samples = [samples[i] for i in range(60)]
    bg = np.array([ATTRIBUTES["background"].index(s.background) for s in samples])
    vectors = torch.as_tensor(np.eye(4)[bg] + 0.01 * np.arange(60)[:, None] / 60, dtype=torch.float32)
    prec = retrieval_precision(vectors, samples, k=3, attributes=["background"])
    assert prec["background"]["precision_at_k"] == 1.0  # neighbours share the background
    freq = np.bincount(bg, minlength=4) / 60
    assert prec["background"]["chance"] == pytest.approx(round(float((freq ** 2).sum()), 4))
    idx, _ = nearest_images(vectors, 0, 3)
    assert 0 not in idx and all(bg[i] == bg[0] for i in idx)


# --- segmentation ---------------------------------------------------------------------------

def test_segmentation_metrics_known_answers():
    gt = np.array([[[1, 1, 0, 0]]], bool)
    pred = np.array([[[1, 0, 0, 1]]], bool)
    assert pixel_accuracy(pred, gt) == 0.5
    assert mean_iou(pred, gt) == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert mean_average_precision(gt.astype(float), gt) == pytest.approx(1.0)
    soft = soft_masks(torch.tensor([[[-1.0, 2.0], [0.5, 1.0]]]), (2, 2))
    torch.testing.assert_close(soft, torch.tensor([[[0.0, 1.0], [0.25, 0.5]]]))
    assert binarise(soft).tolist() == [[[False, True], [False, True]]]


def test_maps_from_the_decomposition(decs):
    _, score = decs
    g = torch.Generator().manual_seed(3)
    clf = torch.nn.functional.normalize(torch.randn(64, 4, generator=g), dim=0)
    maps = decomposition_maps(score, clf)
    # independent: per-token terms summed over the (token, head) cells of every layer
    tokens = sum(score.head_tokens(layer).sum(2) for layer in range(score.n_layers))[:, 1:]
    pred = (score.total() @ clf).argmax(-1)
    s = tokens @ clf
    expected = (s[torch.arange(10), :, pred] - s.mean(-1)).reshape(10, 8, 8)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attention_maps(score), score.attention[:, -1, :, 1:].mean(1).reshape(10, 8, 8))
    masks = np.zeros((10, 64, 64), bool)
    masks[:, :32] = True
    perfect = torch.zeros(10, 8, 8)
    perfect[:, :4] = 1.0
    sc = score_maps(perfect, masks)
    assert sc["miou"] > 0.9 and sc["pixel_accuracy"] > 0.95 and sc["map"] > 0.95


# --- spurious-cue removal -------------------------------------------------------------------

def test_cue_heads_ranking():
    res = {(3, 0): _result(["a striped background", "a red circle"], [0.6, 0.2]),
           (3, 1): _result(["a dotted background"], [0.5]),
           (2, 0): _result(["a red circle"], [0.5])}
    assert cue_heads(res) == [(3, 1), (3, 0)]
    assert cue_heads(res, n_heads=1) == [(3, 1)]
    assert cue_heads(res, min_share=0.9) == [(3, 1)]


def test_spurious_ablation_against_manual(decs):
    fit, score = decs
    clf = torch.nn.functional.normalize(torch.randn(64, 2, generator=torch.Generator().manual_seed(4)), dim=0)
    labels, groups = np.array([0, 1] * 5), np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    means = ComponentMeans.of(fit)
    cands = [(3, h) for h in range(4)]
    res = spurious_ablation(score, means, clf, labels, groups, [(3, 2)], cands, n_random=4, seed=0)
    manual = score.total() - score.heads[:, 3, 2] + means.heads[3, 2]
    assert res["ablated"]["average"] == pytest.approx(group_accuracy(manual, clf, labels, groups)["average"])
    assert len(res["random_trials"]) == 4
    assert res["random_best_of_n"]["worst_group"] == max(t["worst_group"] for t in res["random_trials"])
    assert all(len(t["heads"]) == 1 for t in res["random_trials"])


# --- text pools and settings ----------------------------------------------------------------

def test_pools(tmp_path):
    pool = shapes_pool()
    assert len(pool) == len(set(pool))
    words = {w for values in ATTRIBUTES.values() for v in values for w in SYNONYMS[v]}
    assert all(any(w in t for t in pool) for w in words)
    general = general_pool()
    assert len(general) >= 300 and len(general) == len(set(general))
    assert resolve_pool("shapes+general") == list(dict.fromkeys(pool + general))
    f = tmp_path / "pool.txt"
    f.write_text("# my pool\na cat\n\na dog\na cat\n", encoding="utf-8")
    assert resolve_pool(str(f)) == ["a cat", "a dog"]
    with pytest.raises(MissingFileError, match="nope.txt"):
        resolve_pool("shapes+nope.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(EmptyDatasetError, match="empty.txt"):
        resolve_pool(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CorruptFileError, match="UTF-8"):
        resolve_pool(str(tmp_path / "bad.txt"))


def test_settings_refuse_fitting_on_the_scored_split():
    from interpbench.decomposition.pipeline import Settings

    with pytest.raises(ConfigError, match="fitted on other images"):
        Settings(fit_split="test", score_split="test")
    with pytest.raises(ConfigError, match="n_images"):
        Settings(n_images=5)
