"""Counterfactual selectivity: known answers against an independent loop implementation."""

import numpy as np
import pytest

from interpbench.errors import ShapeMismatchError
from interpbench.metrics.selectivity import SelectivityAccumulator, counterfactual_selectivity

# Two attributes: concepts 0-2 are attribute 0 (three values), concepts 3-4 attribute 1.
GROUPS = np.array([0, 0, 0, 1, 1])


def _pairs(n_scenes, rng):
    """Per scene one edit of each attribute; toggled marks the old and the new value."""
    toggled, units = [], []
    for s in range(n_scenes):
        for lo, hi in ((0, 3), (3, 5)):
            old, new = rng.choice(np.arange(lo, hi), size=2, replace=False)
            t = np.zeros(5, dtype=np.int8)
            t[[old, new]] = 1
            toggled.append(t)
            units.append(s)
    return np.array(toggled), np.array(units)


def _brute(base, edited, toggled, feature_concept, min_changes=10):
    """S_f by explicit loops over features and pairs."""
    out = []
    for f, c in enumerate(feature_concept):
        moves = sum(float(edited[p, f]) != float(base[p, f]) for p in range(base.shape[0]))
        if c < 0 or moves < min_changes:
            out.append(np.nan)
            continue
        own, other = [], []
        for p in range(base.shape[0]):
            d = abs(float(edited[p, f]) - float(base[p, f]))
            if toggled[p, c]:
                own.append(d)
            elif not any(toggled[p, k] for k in range(len(GROUPS)) if GROUPS[k] == GROUPS[c]):
                other.append(d)
        if not own or not other or sum(own) + sum(other) == 0:
            out.append(np.nan)
            continue
        mo, mt = np.mean(own), np.mean(other)
        out.append((mo - mt) / (mo + mt))
    return np.array(out)


def test_matches_independent_loops_on_a_hand_built_case():
    rng = np.random.default_rng(0)
    toggled, units = _pairs(12, rng)
    base = rng.exponential(size=(len(toggled), 6)) * (rng.random((len(toggled), 6)) < 0.6)
    edited = rng.exponential(size=(len(toggled), 6)) * (rng.random((len(toggled), 6)) < 0.6)
    fc = np.array([0, 2, 3, -1, 4, 1])
    r = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units, b=50)
    want = _brute(base, edited, toggled, fc)
    np.testing.assert_allclose(r.per_feature, want, rtol=1e-6, equal_nan=True)
    assert r.n_scored == 5 and r.mean == pytest.approx(np.nanmean(want), rel=1e-6)
    assert r.interval[0] <= r.mean <= r.interval[1]


def test_own_only_scores_one_equal_response_scores_zero_and_scale_is_irrelevant():
    rng = np.random.default_rng(1)
    toggled, units = _pairs(30, rng)
    base = np.zeros((len(toggled), 3))
    edited = np.zeros_like(base)
    edited[:, 0] = 2.0 * toggled[:, 1]  # moves exactly when its own concept 1 is toggled
    edited[:, 1] = 0.5  # moves by the same amount under every edit
    edited[:, 2] = 7.0 * toggled[:, 4]
    fc = np.array([1, 3, 4])
    r = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units)
    np.testing.assert_allclose(r.per_feature, [1.0, 0.0, 1.0], atol=1e-12)
    scaled = counterfactual_selectivity(base * 1e3, edited * 1e3, toggled, GROUPS, fc, units=units)
    np.testing.assert_allclose(scaled.per_feature, r.per_feature, atol=1e-12)
    assert scaled.interval == pytest.approx(r.interval)


def test_only_other_attributes_scores_minus_one_and_silent_features_are_not_scored():
    rng = np.random.default_rng(2)
    toggled, _ = _pairs(10, rng)
    base = np.zeros((len(toggled), 2))
    edited = np.zeros_like(base)
    edited[:, 0] = toggled[:, 3:].any(axis=1)  # labelled with concept 0, responds to attribute 1 only
    r = counterfactual_selectivity(base, edited, toggled, GROUPS, [0, 2])  # feature 0 moves on 10 pairs
    assert r.per_feature[0] == -1.0 and np.isnan(r.per_feature[1]) and r.n_scored == 1


def test_random_representation_scores_near_zero():
    rng = np.random.default_rng(3)
    toggled, units = _pairs(300, rng)
    acts = np.maximum(rng.normal(size=(2, len(toggled), 40)), 0)  # independent of every edit
    fc = rng.integers(0, 5, size=40)
    r = counterfactual_selectivity(acts[0], acts[1], toggled, GROUPS, fc, units=units, b=100)
    assert abs(r.mean) < 0.05 and r.interval[0] < 0 < r.interval[1]


def test_interval_resamples_scenes_and_features_as_documented():
    rng = np.random.default_rng(4)
    toggled, units = _pairs(20, rng)
    base, edited = rng.random((2, len(toggled), 4))
    fc = np.array([0, 1, 3, 4])
    b, seed = 30, 5
    r = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units, b=b, seed=seed)
    scenes = np.random.default_rng(seed).integers(0, 20, size=(b, 20))
    feats = np.random.default_rng(seed + 1).integers(0, 4, size=(b, 4))
    stats = []
    for sc, fe in zip(scenes, feats, strict=True):
        rows = np.concatenate([np.flatnonzero(units == s) for s in sc])
        per = _brute(base[rows], edited[rows], toggled[rows], fc)
        stats.append(np.nanmean(per[fe]))
    point = np.nanmean(_brute(base, edited, toggled, fc))
    s = np.asarray(stats)
    lo, hi = np.quantile(s - s.mean() + point, [0.025, 0.975])  # bias (mean - point) removed
    assert r.interval == pytest.approx((lo, hi), rel=1e-6)  # |delta| is kept in float32
    assert lo <= r.mean <= hi


def test_merge_and_state_dict_equal_one_pass():
    rng = np.random.default_rng(5)
    toggled, units = _pairs(16, rng)
    base, edited = rng.random((2, len(toggled), 5))
    fc = np.array([0, -1, 2, 3, 4])
    whole = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units, b=40)
    a, c = SelectivityAccumulator(GROUPS, fc), SelectivityAccumulator(GROUPS, fc)
    a.update(base[:10], edited[:10], toggled[:10], units[:10])
    c.update(base[10:], edited[10:], toggled[10:], units[10:])
    a.merge(c)
    restored = SelectivityAccumulator(GROUPS, fc)
    restored.load_state_dict(a.state_dict())
    for acc in (a, restored):
        r = acc.result(b=40)
        np.testing.assert_allclose(r.per_feature, whole.per_feature, rtol=1e-6, equal_nan=True)
        assert r.interval == pytest.approx(whole.interval, rel=1e-6)


def test_pairs_without_units_stay_separate_units_across_merges():
    rng = np.random.default_rng(6)
    toggled, _ = _pairs(10, rng)
    base, edited = rng.random((2, len(toggled), 3))
    fc = np.array([0, 3, 4])
    whole = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=np.arange(len(toggled)), b=40)
    a, c = SelectivityAccumulator(GROUPS, fc), SelectivityAccumulator(GROUPS, fc)
    a.update(base[:7], edited[:7], toggled[:7])
    c.update(base[7:], edited[7:], toggled[7:])
    a.merge(c)
    assert a.result(b=40).interval == pytest.approx(whole.interval, rel=1e-6)


def test_bad_inputs_name_the_field():
    with pytest.raises(ShapeMismatchError, match="feature_concept"):
        SelectivityAccumulator(GROUPS, [0, 9])
    acc = SelectivityAccumulator(GROUPS, [0, 1])
    with pytest.raises(ShapeMismatchError, match="toggled"):
        acc.update(np.zeros((2, 2)), np.zeros((2, 2)), np.full((2, 5), 2))
    with pytest.raises(ShapeMismatchError, match="edited"):
        acc.update(np.zeros((2, 2)), np.zeros((3, 2)), np.zeros((2, 5)))


def test_a_feature_is_scored_only_from_min_changes_pairs_on():
    rng = np.random.default_rng(7)
    toggled, units = _pairs(40, rng)  # 80 pairs
    base = np.zeros((len(toggled), 3))
    edited = np.zeros_like(base)
    own = np.flatnonzero(toggled[:, 1])
    edited[own[:9], 0] = 1.0  # moves with its concept, but on 9 pairs only
    edited[own[:10], 1] = 1.0  # on 10
    edited[own[:2], 2] = 1.0  # on 2: scored 1.0 with min_changes=1
    fc = np.array([1, 1, 1])
    r = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units, b=20)
    assert np.isnan(r.per_feature[0]) and r.per_feature[1] == 1.0 and np.isnan(r.per_feature[2]) and r.n_scored == 1
    np.testing.assert_allclose(r.per_feature, _brute(base, edited, toggled, fc), equal_nan=True)
    loose = counterfactual_selectivity(base, edited, toggled, GROUPS, fc, units=units, b=20, min_changes=1)
    np.testing.assert_allclose(loose.per_feature, [1.0, 1.0, 1.0])
