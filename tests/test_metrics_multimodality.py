"""Modality score, density, multimodal fraction, bridge and the paired score: known answers,
brute-force numpy re-implementations, the shuffled-caption and random controls, and
invariance to rescaling either tower."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interpbench.errors import NumericalError, ShapeMismatchError
from interpbench.metrics.inputs import to_entries
from interpbench.metrics.multimodality import (
    MultimodalityAccumulator,
    PairedAccumulator,
    caption_unit_sum,
    modality_scores,
    paired_multimodality,
    pairing_derangement,
)
from interpbench.metrics.suite import MetricSuite, SuiteConfig


def _hand_built():
    n = 4
    img, txt = np.zeros((n, 5)), np.zeros((n, 5))
    img[:, 0] = 1.0  # image-only -> 1
    txt[:, 1] = 2.0  # text-only -> 0
    img[:2, 2], txt[2:, 2] = 1.0, 1.0  # same raw energy, never on the same pair
    img[:, 3], txt[:, 3] = 3.0, 1.0
    # feature 4 never fires -> undefined
    return img, txt


def test_known_modality_scores_density_and_bridge():
    img, txt = _hand_built()
    r = modality_scores(img, txt)
    # image mass 4 + 2 + 12 = 18, text mass 8 + 2 + 4 = 14: shares of each tower's mass
    s_i, s_t = np.array([4, 0, 2, 12]) / 18, np.array([0, 8, 2, 4]) / 14
    np.testing.assert_allclose(r.modality_score[:4], [1.0, 0.0, 7 / 16, 0.7])
    np.testing.assert_allclose(r.modality_score[:4], s_i / (s_i + s_t))
    assert np.isnan(r.modality_score[4])
    np.testing.assert_allclose(r.energy_image, [1, 0, 0.5, 3, 0])
    np.testing.assert_allclose(r.energy_text, [0, 2, 0.5, 1, 0])
    # density: mean over towers of sum / (N * that tower's max)
    np.testing.assert_allclose(r.density, [0.5, 0.5, 0.5, 1.0, 0])
    # bridge: E[a_img a_txt] / (mean L1 norm of images 18/4 * of texts 14/4)
    np.testing.assert_allclose(r.bridge, [0, 0, 0, 3 / (18 / 4 * 14 / 4), 0])
    assert r.n_scored == 4
    assert r.multimodal_fraction == pytest.approx(2 / 4)  # 0.4375 and 0.7 lie in [0.1, 0.9]


def test_band_is_closed_and_configurable():
    img, txt = _hand_built()
    assert modality_scores(img, txt, band=(0.4375, 0.7)).multimodal_fraction == pytest.approx(0.5)
    assert modality_scores(img, txt, band=(0.0, 1.0)).multimodal_fraction == pytest.approx(1.0)
    assert modality_scores(img, txt, band=(0.5, 0.6)).multimodal_fraction == pytest.approx(0.0)


def _sparse(rng, n, f, p=0.3):
    return rng.exponential(1, (n, f)) * (rng.random((n, f)) < p)


def test_independent_computation_on_random_data_and_merge():
    rng = np.random.default_rng(0)
    img, txt = _sparse(rng, 50, 7), _sparse(rng, 50, 7)
    r = modality_scores(img, txt)
    p_i, p_t = img.sum(0) / img.sum(), txt.sum(0) / txt.sum()
    np.testing.assert_allclose(r.modality_score, p_i / (p_i + p_t), atol=1e-6)
    np.testing.assert_allclose(r.density, 0.5 * (img.mean(0) / img.max(0) + txt.mean(0) / txt.max(0)), atol=1e-6)
    m_i, m_t = img.sum(1).mean(), txt.sum(1).mean()
    np.testing.assert_allclose(r.bridge, (img * txt).mean(0) / (m_i * m_t), atol=1e-6)
    a, b = MultimodalityAccumulator(7), MultimodalityAccumulator(7)
    a.update(to_entries(img[:20], "i", 7), to_entries(txt[:20], "t", 7))
    b.update(to_entries(img[20:], "i", 7), to_entries(txt[20:], "t", 7))
    a.merge(b)
    m = a.result()
    for k in ("modality_score", "density", "energy_image", "energy_text", "bridge"):
        np.testing.assert_allclose(getattr(m, k), getattr(r, k), atol=1e-12)
    assert m.multimodal_fraction == pytest.approx(r.multimodal_fraction)


def test_n_min_counts_non_zero_inputs():
    img, txt = np.zeros((5, 2)), np.zeros((5, 2))
    img[0, 0], txt[0, 0] = 1e-6, 1e-6  # fires on 2 inputs (below tau, still counted: no unit)
    img[:3, 1], txt[:3, 1] = 1, 1
    assert modality_scores(img, txt, n_min=3).n_scored == 1
    assert modality_scores(img, txt, n_min=2).n_scored == 2


def test_errors():
    img, txt = _hand_built()
    with pytest.raises(ShapeMismatchError, match="paired"):
        MultimodalityAccumulator(5).update(to_entries(img, "i", 5), to_entries(txt[:2], "t", 5))
    with pytest.raises(NumericalError, match="negative"):
        modality_scores(-img, txt)


# ---- the paired score ------------------------------------------------------------------

def _brute_paired(img, txt, seed=0):
    """Independent O(N^2) numpy: the full cosine matrix C[b, c] = cos(image_b, caption_c), then
    per pair C[b, b] minus the mean of C[b, c] over the other captions c (with an active feature)."""
    pi = pairing_derangement(len(img), seed)
    ni, nt = np.linalg.norm(img, axis=1), np.linalg.norm(txt, axis=1)
    ui = img / np.where(ni > 0, ni, 1)[:, None]
    ut = txt / np.where(nt > 0, nt, 1)[:, None]
    c = ui @ ut.T
    active = nt > 0
    n = len(img)
    diff, ctrl = np.full(n, np.nan), np.full(n, np.nan)
    per_feature = np.zeros(img.shape[1])
    for b in range(n):
        if ni[b] == 0:
            continue
        others = active.copy()
        others[b] = False
        if active[b]:
            diff[b] = c[b, b] - c[b, others].mean()
            per_feature += ui[b] * (ut[b] - ut[others].mean(0))
        if active[pi[b]]:
            others[pi[b]] = False
            ctrl[b] = c[b, pi[b]] - c[b, others].mean()
    ok = ~np.isnan(diff)
    return np.nanmean(diff), np.nanmean(ctrl), per_feature / ok.sum(), int(ok.sum())


def _planted(seed=0, n=400, f=32):
    """Captions that share the image's concepts: each pair draws a sparse concept set z."""
    rng = np.random.default_rng(seed)
    z = rng.random((n, f)) < 0.1
    img = z * rng.exponential(1, (n, f)) + _sparse(rng, n, f, 0.02)
    txt = z * rng.exponential(1, (n, f)) + _sparse(rng, n, f, 0.02)
    return img, txt


def test_derangement_is_one_cycle():
    pi = pairing_derangement(50, seed=3)
    assert sorted(pi) == list(range(50)) and (pi != np.arange(50)).all()
    b, seen = 0, set()
    while b not in seen:
        seen.add(b)
        b = pi[b]
    assert len(seen) == 50  # one cycle
    assert pairing_derangement(2) is None


def test_paired_score_equals_numpy_and_splits_over_features():
    img, txt = _planted(seed=1, n=60, f=9)
    img[3] = 0  # a pair without image activations is left out
    want, want_ctrl, want_per, want_n = _brute_paired(img, txt)
    r = paired_multimodality(img, txt)
    assert r.paired == pytest.approx(want, abs=1e-6)
    assert r.control == pytest.approx(want_ctrl, abs=1e-6)
    np.testing.assert_allclose(r.per_feature, want_per, atol=1e-6)
    assert r.per_feature.sum() == pytest.approx(r.paired, abs=1e-6)
    assert r.n_valid == want_n < 59  # pair 3 and pairs with an empty caption are left out


def test_shuffled_captions_drive_the_paired_score_to_chance():
    img, txt = _planted()
    trained = paired_multimodality(img, txt)
    assert trained.paired > 0.3
    assert abs(trained.control) < 0.05  # the built-in control: captions re-paired by pi
    perm = np.random.default_rng(7).permutation(len(txt))
    assert abs(paired_multimodality(img, txt[perm]).paired) < 0.05
    # the marginal numbers do not see the pairing at all
    a, b = modality_scores(img, txt), modality_scores(img, txt[perm])
    np.testing.assert_allclose(a.modality_score, b.modality_score, atol=1e-12)
    assert a.multimodal_fraction == b.multimodal_fraction


def test_independent_random_features_score_near_zero():
    rng = np.random.default_rng(2)
    for density in (0.006 * 5, 0.5):  # sparse and dense random ReLU features
        img, txt = _sparse(rng, 500, 64, density), _sparse(rng, 500, 64, density)
        assert abs(paired_multimodality(img, txt).paired) < 0.05


def test_paired_accumulator_shards_in_any_order_equal_one_pass():
    img, txt = _planted(seed=4, n=90, f=12)
    pi = pairing_derangement(90, seed=0)
    e = lambda x: to_entries(x, "x", 12)  # noqa: E731
    one = paired_multimodality(img, txt)
    a, b = PairedAccumulator(12), PairedAccumulator(12)
    # the caption sums, built chunk by chunk, add up to the one-pass sums
    s1, s2 = caption_unit_sum(e(txt[:30])), caption_unit_sum(e(txt[30:]))
    sums = (s1[0] + s2[0], s1[1] + s2[1])
    for acc, sl in ((b, slice(50, 90)), (a, slice(0, 50))):
        acc.update(e(img[sl]), e(txt[sl]), e(txt[pi][sl]), sums, ids=np.arange(90)[sl])
    b.merge(a)
    restored = PairedAccumulator(12)
    restored.load_state_dict(b.state_dict())  # a checkpoint round trip keeps everything
    for acc in (b, restored):
        r = acc.result()
        assert r.paired == pytest.approx(one.paired, abs=1e-12)
        np.testing.assert_allclose(r.per_pair, one.per_pair, atol=1e-12)  # pair-id order, not arrival order
        np.testing.assert_allclose(r.per_feature, one.per_feature, atol=1e-12)


def _suite_numbers(img, txt, scale_img=1.0, scale_txt=1.0):
    n, f = img.shape
    pi = pairing_derangement(n, seed=0)
    s = MetricSuite(f, 3, SuiteConfig(polysemanticity_max_features=2))
    i, t = img * scale_img, txt * scale_txt
    s.update_pairs(i, t, shuffled=t[pi], ids=np.arange(n), caption_sum=caption_unit_sum(to_entries(t, "t", f)))
    s.update_images(i, np.ones((n, 3)), np.arange(n))
    m, p = s.finalize()
    return m, p, s.extras()


@settings(max_examples=15, deadline=None)
@given(st.floats(1e-3, 1e3), st.booleans(), st.integers(0, 5))
def test_rescaling_one_tower_changes_no_modality_number(c, text_side, seed):
    img, txt = _planted(seed=seed, n=40, f=8)
    m0, p0, x0 = _suite_numbers(img, txt)
    m1, p1, x1 = _suite_numbers(img, txt, *((1.0, c) if text_side else (c, 1.0)))
    for k in ("multimodal_fraction", "modality_score_median", "paired_multimodality"):
        assert m1[k] == pytest.approx(m0[k], abs=1e-6), k
        assert x1["controls"]["shuffled_pairs"][k] == pytest.approx(x0["controls"]["shuffled_pairs"][k], abs=1e-6)
    for k in ("modality_score", "density", "bridge", "paired_multimodality"):
        np.testing.assert_allclose(p1[k], p0[k], atol=1e-6, err_msg=k)


def test_suite_stores_intervals_and_shuffled_controls():
    img, txt = _planted(seed=5, n=200, f=16)
    m, p, extras = _suite_numbers(img, txt)
    for key, method in (("paired_multimodality", "bootstrap-pairs"), ("multimodal_fraction", "bootstrap-features"),
                        ("modality_score_median", "bootstrap-features")):
        ci = extras["intervals"][key]
        assert ci["method"] == method and ci["lo"] <= m[key] <= ci["hi"], key
    ctrl = extras["controls"]["shuffled_pairs"]
    assert ctrl["multimodal_fraction"] == m["multimodal_fraction"]
    assert abs(ctrl["paired_multimodality"]) < 0.1 < m["paired_multimodality"]
    assert m["paired_n"] == _brute_paired(img, txt)[3]
    # without shuffled captions there is no paired score, and nothing claims otherwise
    s = MetricSuite(16, 3)
    s.update_pairs(torch.tensor(img), torch.tensor(txt))
    s.update_images(img, np.ones((200, 3)), np.arange(200))
    m2, _ = s.finalize()
    assert "paired_multimodality" not in m2 and "paired_multimodality" not in s.extras()["intervals"]
