"""Feature steering and ablation on constructed codes with known answers (issue 10)."""

import math

import numpy as np
import pytest
import torch

from interpbench.analysis import steering
from interpbench.analysis.codes import predict
from interpbench.errors import BadSpecError, ShapeMismatchError


def _world(seed: int, n: int = 400, C: int = 8, F: int = 64, d: int = 16):
    """Codes whose first C decoder atoms are exactly the class directions; the rest random."""
    g = torch.Generator().manual_seed(seed)
    W = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:, :C]  # orthonormal class vectors [d, C]
    atoms = torch.nn.functional.normalize(torch.randn(F, d, generator=g), dim=1)
    atoms[:C] = W.T
    y = torch.randint(0, C, (n,), generator=g)
    z = torch.zeros(n, F)
    z[torch.arange(n), y] = 1.0
    for _ in range(3):  # three random non-class features at 0.3
        z[torch.arange(n), torch.randint(C, F, (n,), generator=g)] = 0.3
    class_feats = torch.zeros(C, F)
    class_feats[torch.arange(C), torch.arange(C)] = 1.0
    class_feats += 0.05  # every prompt shares a little of everything: contrast removes it
    return z, y, W, (lambda codes, rows=None: codes @ atoms), class_feats


def test_label_features_pick_the_class_feature():
    *_, class_feats = _world(0)
    assert steering.label_features(class_feats, 1)[:, 0].tolist() == list(range(8))


def test_label_features_contrast_removes_shared_features():
    # feature 0 is high for every class (a template word); feature c+1 is specific to class c
    cf = torch.tensor([[5.0, 1.0, 0.0], [5.0, 0.0, 1.0]])
    assert steering.label_features(cf, 1, contrast=False)[:, 0].tolist() == [0, 0]
    assert steering.label_features(cf, 1, contrast=True)[:, 0].tolist() == [1, 2]
    with pytest.raises(BadSpecError):
        steering.label_features(cf, 4)


def test_edit_codes_known_values():
    z = torch.tensor([[1.0, 2.0, 0.0, 4.0]])
    out = steering.edit_codes(z, torch.tensor([[1]]), torch.tensor([[2]]), strength=0.5)
    assert out.tolist() == [[1.0, 0.0, 2.0, 4.0]]  # boost = 0.5 * max(z) = 2
    kept = steering.edit_codes(z, torch.tensor([[0, 1]]), protect=torch.tensor([[1]]))
    assert kept.tolist() == [[0.0, 2.0, 0.0, 4.0]]


def test_random_targets_never_the_true_class():
    y = torch.arange(1000) % 5
    t = steering.random_targets(y, 5, seed=3)
    assert (t != y).all() and set(t.tolist()) == set(range(5))


def test_class_direction_feature_steers_with_success_one():
    z, y, W, decode, cf = _world(0)
    lf = steering.label_features(cf, 1)
    res = steering.steering_curves(z, y, W, decode, lf, strengths=[0.0, 4.0], ks=[1], seed=0)
    # independent check of the unedited accuracy
    assert res["base_accuracy"] == pytest.approx(float((predict(decode(z), W) == y).float().mean()))
    assert res["n_correct"] > 300
    assert res["steering"]["1"][1] == 1.0  # 4 * W_t outweighs every other term (norm <= 0.9)
    assert res["suppression"]["1"][1] == 1.0
    # the label features of other classes are disjoint from the image's: no collateral damage
    assert res["collateral"]["1"] == 0.0


def test_suppression_only_matches_hand_computation():
    z, y, W, decode, cf = _world(1)
    lf = steering.label_features(cf, 1)
    res = steering.steering_curves(z, y, W, decode, lf, strengths=[0.0], ks=[1], seed=0)
    correct = predict(decode(z), W) == y
    zs = z.clone()
    zs[torch.arange(len(y)), y] = 0.0  # remove each image's class feature by hand
    expected = float((predict(decode(zs), W)[correct] != y[correct]).float().mean())
    assert res["suppression"]["1"][0] == pytest.approx(expected)


def test_random_features_steer_at_about_chance():
    rates = []
    for seed in range(30):
        z, y, W, decode, _ = _world(seed)
        ctrl = steering.random_label_features(8, 64, 1, seed=100 + seed)
        rates.append(steering.steering_curves(z, y, W, decode, ctrl, strengths=[8.0], ks=[1], seed=seed)
                     ["steering"]["1"][0])
    assert np.mean(rates) == pytest.approx(1 / 8, abs=0.07)


def test_steering_rejects_mismatched_inputs():
    z, y, W, decode, cf = _world(0)
    with pytest.raises(ShapeMismatchError):
        steering.steering_curves(z[:10], y, W, decode, steering.label_features(cf, 1), [1.0], [1])
    with pytest.raises(BadSpecError):
        steering.steering_curves(z, y, W, decode, steering.label_features(cf, 1), [1.0], [2])


def test_ablation_faithfulness_hand_computed():
    # feature 0's atom is its label word's direction w; feature 1's atom is orthogonal to w
    w, u = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    atoms = torch.stack([w, u])
    z = torch.tensor([[3.0, 4.0]])
    res = steering.ablation_faithfulness(z, lambda c, rows=None: c @ atoms, word_text=atoms.clone(),
                                         labelled=torch.tensor([True, False]), n_min=1)
    base = 3 / 5  # cos((3, 4), w)
    assert res["n_pairs"] == 1
    assert res["mean_drop_label"] == pytest.approx(base - 0.0)  # without feature 0 the embedding is u
    assert res["mean_drop_random"] == pytest.approx(base - 1.0)  # without feature 1 it is w
    assert res["ratio"] is None  # random removal raised the similarity: no meaningful ratio
    assert res["win_rate"] == 1.0
    assert res["share_features_label_beats_random"] == 1.0


def test_ablation_ratio_on_constructed_codes():
    z, y, W, decode, _ = _world(2)
    word_text = torch.cat([W.T, torch.zeros(64 - 8, 16)])  # class features are labelled by their class word
    res = steering.ablation_faithfulness(z, decode, word_text, torch.arange(64) < 8, seed=0)
    # by hand: every image has exactly one labelled active feature (its class feature, value 1)
    def cos(e):
        return (torch.nn.functional.normalize(e, dim=1) * W.T[y]).sum(1)

    emb = decode(z)
    expected = cos(emb) - cos(emb - W.T[y])
    assert res["n_pairs"] == 400
    assert res["mean_drop_label"] == pytest.approx(float(expected.mean()), rel=1e-5)
    # removing a random 0.3-feature barely moves (often raises) the similarity
    assert res["win_rate"] == 1.0 and res["share_features_label_beats_random"] == 1.0
    assert math.isfinite(res["mean_drop_random"]) and res["mean_drop_random"] < 0.2 * res["mean_drop_label"]
    assert (res["ratio"] is None) == (res["mean_drop_random"] <= 0)


def test_steerability_reads_the_reference_point():
    per = {"a": {"label": {"strengths": [0.0, 2.0], "steering": {"2": [0.1, 0.9]}},
                 "control": {"strengths": [0.0, 2.0], "steering": {"2": [0.0, 0.2]}}},
           "b": {"label": {"strengths": [0.0, 2.0], "steering": {"2": [0.0, 0.5]}},
                 "control": {"strengths": [0.0, 2.0], "steering": {"2": [0.0, 0.1]}}}}
    assert steering.steerability(per, 2, 2.0) == pytest.approx(((0.9 - 0.2) + (0.5 - 0.1)) / 2)


def test_headline_leaves_out_skipped_steering():
    from interpbench.analysis.run import headline

    assert headline({"steering": {"skipped": "no text side"}}) == {}


def test_steering_hits_are_the_curves_per_image():
    z, y, W, decode, cf = _world(3)
    lf = steering.label_features(cf, 2)
    curves = steering.steering_curves(z, y, W, decode, lf, [0.0, 2.0], [1, 2], seed=5)
    for k in (1, 2):
        for j, s in enumerate((0.0, 2.0)):
            hits = steering.steering_hits(z, y, W, decode, lf, k, s, seed=5)
            assert np.isnan(hits).sum() == 400 - curves["n_correct"]
            assert np.nanmean(hits) == pytest.approx(curves["steering"][str(k)][j], abs=1e-6)


def test_ablation_win_rate_interval_weights_pairs_by_image():
    from interpbench.metrics.bootstrap import resample_indices

    z, y, W, decode, _ = _world(2)
    n = z.shape[0]
    g = torch.Generator().manual_seed(9)
    z[:, 8:] = 0.0
    odd = torch.arange(1, n, 2)
    other = torch.randint(8, 64, (len(odd),), generator=g)
    z[odd, other] = torch.where(torch.arange(len(odd)) % 2 == 0, 0.3, 3.0)  # one unlabelled feature each
    # label words only near their class atom, so which removal hurts more varies by image
    word_text = torch.cat([torch.nn.functional.normalize(W.T + 1.5 * torch.randn(8, 16, generator=g), dim=1),
                           torch.zeros(64 - 8, 16)])
    res = steering.ablation_faithfulness(z, decode, word_text, torch.arange(64) < 8, seed=0, b=60)
    # by hand: even images have a lone active feature (no pair); odd image i pairs (y_i, other_i)
    def cos(e, w):
        return (torch.nn.functional.normalize(e, dim=1) * w).sum(1)

    w, zo = word_text[y[odd]], z[odd]
    keep_y, keep_o = zo.clone(), zo.clone()
    keep_y[torch.arange(len(odd)), y[odd]] = 0.0
    keep_o[torch.arange(len(odd)), other] = 0.0
    base = cos(decode(zo), w)
    win = dict(zip(odd.tolist(), ((base - cos(decode(keep_y), w)) > (base - cos(decode(keep_o), w))).double().tolist(),
                   strict=True))
    assert res["n_pairs"] == len(odd)
    assert res["win_rate"] == pytest.approx(np.mean(list(win.values())))
    assert 0.2 < res["win_rate"] < 0.95
    stats = [np.mean([win[i] for i in idx if i in win]) for idx in resample_indices(n, 60, 0)]
    centred = np.array(stats) - np.mean(stats) + res["win_rate"]  # the bootstrap's bias removed
    assert res["win_rate_interval"] == pytest.approx(tuple(np.quantile(centred, [0.025, 0.975])), abs=1e-12)
    assert res["win_rate_interval"][0] < res["win_rate"] < res["win_rate_interval"][1]


def test_steering_plot_draws_controls_after_contestants_in_grey():
    from interpbench.analysis.plots import model_palette

    records = [{"model": {"name": "control:untrained@b"}}, {"model": {"name": "b", "control": None}},
               {"model": {"name": "control:random-codes@a", "control": {"kind": "random-codes", "of": "a"}}},
               {"model": {"name": "a"}}]
    records[0]["model"]["control"] = {"kind": "untrained", "of": "b"}
    order, colours = model_palette(records)
    assert order == ["a", "b", "control:random-codes@a", "control:untrained@b"]
    for name in order[2:]:
        r, g, b = colours[name]
        assert r == g == b  # a grey
    assert len({colours[n] for n in order}) == 4 and all(len(set(colours[n])) > 1 for n in order[:2])
