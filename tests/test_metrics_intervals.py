"""Bootstrap intervals of the suite's metrics against brute-force replicates in numpy.

Each test recomputes the B replicates independently (explicit pairs, one-call metric
functions on the resampled rows) with the same seeded resamples and checks the interval
ends, so the fast weighted paths in metrics/intervals.py must equal streaming the
resampled rows through the metrics.
"""

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from interpbench.metrics.bootstrap import bca_interval, mean_jackknife, resample_indices
from interpbench.metrics.clarity import pairwise_cosine_from_sums
from interpbench.metrics.ground_truth import ground_truth
from interpbench.metrics.inputs import to_entries, unit_rows
from interpbench.metrics.intervals import (
    FeatureChunks,
    IntervalInputs,
    metric_intervals,
    weighted_pairwise_cosine,
)
from interpbench.metrics.label_correlation import label_correlation
from interpbench.metrics.suite import MetricSuite, SuiteConfig
from interpbench.metrics.zeroshot import (
    EncoderView,
    PassthroughTokenizer,
    zeroshot_accuracy,
    zeroshot_correct,
)

B, SEED = 25, 3


def _data(seed=0, n=40, f=6, d=5):
    rng = np.random.default_rng(seed)
    acts = rng.exponential(1.0, (n, f)) * (rng.random((n, f)) < 0.3)
    acts[:, 0] = 0.0
    acts[:3, 0] = 1.0  # a rare feature: three images
    judge = rng.normal(size=(n, d))
    return acts, judge


def _inputs(acts, judge, **kw):
    return IntervalInputs(features=to_entries(acts, "f", acts.shape[1]),
                          judge_unit=unit_rows(torch.as_tensor(judge, dtype=torch.float64), "j"), **kw)


def _check(rec, values, point, jack=None):
    """The record's replicates are the brute-force ones, and its ends the BCa interval of them
    around the brute-force point (bca_interval itself is checked against scipy elsewhere)."""
    values = np.asarray(values, dtype=np.float64)
    got = np.array([np.nan if v is None else v for v in rec["replicates"]])
    np.testing.assert_allclose(got, values, atol=2e-6)  # interval_record keeps 6 decimals
    lo, hi = bca_interval(values, point, jack)
    assert [rec["lo"], rec["hi"]] == pytest.approx([lo, hi], abs=2e-6)
    assert rec["interval"] == ("bc" if jack is None else "bca")


def _share_se(hits) -> float:
    """se of a share of n 0/1 values with half a success and half a failure added."""
    hits = np.asarray(hits, dtype=float)
    if hits.size == 0:
        return np.nan
    p = (hits.sum() + 0.5) / (hits.size + 1)
    return np.sqrt(p * (1 - p) / hits.size)


def _check_studentized(rec, values, point, point_se, ses):
    """Replicates as brute force, and the ends the bootstrap-t interval (written out here)
    clipped to [0, 1]."""
    values, ses = np.asarray(values, dtype=float), np.asarray(ses, dtype=float)
    got = np.array([np.nan if v is None else v for v in rec["replicates"]])
    np.testing.assert_allclose(got, values, atol=2e-6)
    ok = np.isfinite(values) & np.isfinite(ses) & (ses > 0)
    t = (values[ok] - point) / ses[ok]
    lo, hi = point - np.quantile(t, 0.975) * point_se, point - np.quantile(t, 0.025) * point_se
    assert [rec["lo"], rec["hi"]] == pytest.approx([min(max(lo, 0), 1), min(max(hi, 0), 1)], abs=2e-6)
    assert rec["interval"] == "studentized"


def _u_clarity(members: np.ndarray, emb: np.ndarray) -> float:
    """Mean cosine over ordered pairs of copies of *different* images (explicit pairs)."""
    pairs = [emb[a] @ emb[b] for a, b in itertools.permutations(range(len(members)), 2) if members[a] != members[b]]
    return float(np.mean(pairs)) if pairs else np.nan


def test_weighted_cosine_is_plain_clarity_at_unit_weights_and_a_u_statistic_otherwise():
    acts, judge = _data()
    emb = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    mask = (acts > 0.001).astype(np.float64)
    sums = torch.from_numpy(mask.T @ emb)
    n = torch.from_numpy(mask.sum(0))
    got = weighted_pairwise_cosine(sums, n, n)
    np.testing.assert_allclose(got.numpy(), pairwise_cosine_from_sums(sums, n).numpy(), atol=1e-12)
    w = np.random.default_rng(1).integers(0, 3, acts.shape[0]).astype(np.float64)
    got = weighted_pairwise_cosine(torch.from_numpy(mask.T @ (w[:, None] * emb)), torch.from_numpy(mask.T @ w),
                                   torch.from_numpy(mask.T @ (w * w)))
    for i in range(acts.shape[1]):
        copies = np.repeat(np.arange(acts.shape[0]), w.astype(int))
        members = copies[mask[copies, i] > 0]
        expect = _u_clarity(members, emb[members])
        assert got[i].item() == pytest.approx(expect, abs=1e-12) if np.isfinite(expect) else np.isnan(got[i].item())


def test_clarity_l0_baseline_and_active_match_brute_force_replicates():
    acts, judge = _data()
    cfg = SuiteConfig()
    got = metric_intervals(_inputs(acts, judge), cfg, B, SEED)
    emb = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    idx, fidx = resample_indices(len(acts), B, SEED), resample_indices(acts.shape[1], B, SEED + 1)
    base, l0 = [], []
    point = np.array([_u_clarity(np.flatnonzero(acts[:, j] > cfg.tau), emb[acts[:, j] > cfg.tau])
                      for j in range(acts.shape[1])])
    for i in idx:
        base.append(_u_clarity(i, emb[i]))
        l0.append((acts[i] > cfg.tau).sum(1).mean())
    # Clarity: the features are resampled, each keeping its full-sample value (images are not)
    clar = [np.nanmean(point[f]) for f in fidx]
    per_image = (acts > cfg.tau).sum(1)
    _check(got["clarity"], clar, np.nanmean(point), mean_jackknife(point[np.isfinite(point)]))
    _check(got["clarity_baseline"], base, _u_clarity(np.arange(len(acts)), emb))
    _check(got["l0"], l0, per_image.mean(), mean_jackknife(per_image))
    active = 100 * ((acts > cfg.tau).sum(0) >= cfg.n_min)
    _check(got["active_features_pct"], active[fidx].mean(1), active.mean(), mean_jackknife(active))
    assert got["clarity"] == {**got["clarity"], "method": "bootstrap-features", "b": B, "seed": SEED}
    assert got["active_features_pct"]["method"] == "bootstrap-features"
    assert metric_intervals(_inputs(acts, judge), cfg, B, SEED) == got  # seeded: same numbers again
    assert metric_intervals(_inputs(acts, judge), cfg, B, SEED + 7) != got


def test_clarity_replicates_keep_rare_features_and_center_on_the_point():
    """Many features on 2-3 images, clearer than the common ones: an image bootstrap that
    dropped the features whose images a replicate misses pulled every replicate below the
    point; resampling the features keeps every feature's value."""
    rng = np.random.default_rng(11)
    n, d, f_rare, f_common = 400, 8, 150, 30
    centres = rng.normal(size=(f_rare, d))
    judge = rng.normal(size=(n, d))
    acts = np.zeros((n, f_rare + f_common))
    for j in range(f_rare):  # a rare, clear feature: 2-3 images close to one direction
        members = rng.choice(n, size=rng.integers(2, 4), replace=False)
        acts[members, j] = 1.0
        judge[members] = centres[j] + 0.2 * rng.normal(size=(len(members), d))
    acts[:, f_rare:] = rng.random((n, f_common)) < 0.3  # common, unclear features
    cfg = SuiteConfig()
    inputs = _inputs(acts, judge)
    got = metric_intervals(inputs, cfg, 200, 0)["clarity"]
    emb = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    point = np.nanmean([_u_clarity(np.flatnonzero(acts[:, j] > 0), emb[acts[:, j] > 0]) for j in range(acts.shape[1])])
    reps = np.array(got["replicates"], dtype=np.float64)
    assert got["lo"] < point < got["hi"]
    assert abs(reps.mean() - point) < 0.25 * reps.std()  # centred (the old replicates sat ~2 sd below)
    assert 0.2 < (reps < point).mean() < 0.8


def test_label_correlation_matches_the_one_call_metric_on_resampled_rows():
    acts, judge = _data()
    labels = np.random.default_rng(2).normal(size=(acts.shape[1], judge.shape[1]))
    labels[1] = np.nan  # unlabelled feature
    labels[4] = 3.0 * labels[3]  # two features, one word (the intervals score each word once)
    route = labels[[2, 2, 0, 5, 5, 0]]  # a second labelling route, every word shared
    route[3] = 0.0  # unlabelled (all zeros)
    cfg = SuiteConfig()
    got = metric_intervals(_inputs(acts, judge, label_text_judge=labels, label_routes={"decoder": route}), cfg, B, SEED)
    idx, fidx = resample_indices(len(acts), B, SEED), resample_indices(acts.shape[1], B, SEED + 1)
    for key, lab in (("label_corr_mean", labels), ("label_corr_mean@decoder", route)):
        corr = [np.nanmean(label_correlation(acts[i], judge[i], lab).per_feature[f])
                for i, f in zip(idx, fidx, strict=True)]
        _check(got[key], corr, np.nanmean(label_correlation(acts, judge, lab).per_feature))
    assert "multimodal_fraction" not in got  # the suite's own interval (MetricSuite.extras)


def test_frequency_matched_label_correlation_keeps_the_full_sample_features_with_n_images():
    acts, judge = _data()
    acts[:11, 5] = 0.0  # a feature left with fewer than n images
    labels = np.random.default_rng(2).normal(size=(acts.shape[1], judge.shape[1]))
    cfg = SuiteConfig(top_n=8)
    matched = (acts > cfg.tau).sum(axis=0) >= cfg.top_n  # fixed from the full sample
    assert 0 < matched.sum() < acts.shape[1] and not matched[0]  # the rare feature is left out
    got = metric_intervals(_inputs(acts, judge, label_text_judge=labels), cfg, B, SEED)
    idx, fidx = resample_indices(len(acts), B, SEED), resample_indices(acts.shape[1], B, SEED + 1)

    def mean(per, f):
        per = np.where(matched, per, np.nan)[f]
        return np.nanmean(per)
    corr = [mean(label_correlation(acts[i], judge[i], labels).per_feature, f) for i, f in zip(idx, fidx, strict=True)]
    point = mean(label_correlation(acts, judge, labels).per_feature, np.arange(acts.shape[1]))
    _check(got["label_corr_matched"], corr, point)
    # the suite's own point: the mean over the same features
    suite = MetricSuite(acts.shape[1], judge.shape[1], config=cfg, label_text_judge=labels)
    suite.update_images(torch.from_numpy(acts).float(), torch.from_numpy(judge).float(), torch.arange(len(acts)))
    metrics, _ = suite.finalize()
    assert metrics["label_corr_matched"] == pytest.approx(point, abs=1e-6)
    assert metrics["label_corr_matched_n"] == int(matched.sum())


def test_ground_truth_fvu_and_zeroshot_match_brute_force():
    acts, judge = _data(f=4)  # <= 4 features: every feature is a candidate, so the search is exact
    rng = np.random.default_rng(5)
    concepts = (rng.random((len(acts), 3)) < 0.4).astype(np.float32)
    concepts[:, 0] = (acts[:, 1] > 0.5).astype(np.float32)  # a recoverable concept
    names = ["color:red", "shape:circle", "size:big"]
    words = ["red", "red", "circle", None]
    x = rng.normal(size=(len(acts), 3))
    x_hat = x + rng.normal(scale=0.3, size=x.shape)
    ids = np.arange(0, len(acts), 2)
    correct = rng.random(len(ids)) < 0.7
    inputs = _inputs(acts, judge, concepts=concepts, concept_names=names, top_words=words,
                     sae_input=torch.from_numpy(x), sae_recon=torch.from_numpy(x_hat),
                     zeroshot={"zeroshot_a": (ids, correct), "zeroshot_b": (np.arange(len(acts)), np.ones(len(acts)))})
    cfg = SuiteConfig(gt_threshold=0.7)
    got = metric_intervals(inputs, cfg, B, SEED)
    cov, auc, acc, fvu, za, zm = [], [], [], [], [], []
    se = {"gt_coverage": [], "gt_auroc_mean": [], "gt_label_accuracy": []}
    full = ground_truth(acts, concepts, names, threshold=0.7)
    best = full.best_feature  # each concept keeps its full-sample best feature
    assert (best >= 0).all()
    hit = [words[best[c]] == names[c].split(":")[1] for c in range(3)]
    cidx = resample_indices(3, B, SEED + 2)  # the concepts' level
    for i, ci in zip(resample_indices(len(acts), B, SEED), cidx, strict=True):
        a = np.array([roc_auc_score(concepts[i, c], acts[i, best[c]]) for c in range(3)])
        covered = a[ci] >= 0.7
        cov.append(covered.mean())
        auc.append(a[ci].mean())
        acc.append(np.mean(np.array(hit)[ci][covered]) if covered.any() else np.nan)
        se["gt_coverage"].append(_share_se(covered))
        se["gt_auroc_mean"].append(a[ci].std(ddof=1) / np.sqrt(3))
        se["gt_label_accuracy"].append(_share_se(np.array(hit)[ci][covered]))
        fvu.append(np.mean(((x_hat[i] - x[i]) ** 2).mean(1) / (x[i] ** 2).mean(1)))
        mask = np.isin(i, ids)
        a = np.mean([correct[np.searchsorted(ids, j)] for j in i[mask]])
        za.append(a)
        zm.append((a + 1.0) / 2)
    assert got["gt_coverage"]["method"] == "bootstrap-images+concepts"
    a = full.best_auroc
    fvu_units = ((x_hat - x) ** 2).mean(1) / (x ** 2).mean(1)
    z = correct.astype(float)
    for key, values, point, point_se in (
            ("gt_coverage", cov, np.mean(a >= 0.7), _share_se(a >= 0.7)),
            ("gt_auroc_mean", auc, a.mean(), a.std(ddof=1) / np.sqrt(3)),
            ("gt_label_accuracy", acc, np.mean(np.array(hit)[a >= 0.7]), _share_se(np.array(hit)[a >= 0.7]))):
        _check_studentized(got[key], values, point, point_se, se[key])
    for key, values, point, jack in (
            ("fvu", fvu, fvu_units.mean(), mean_jackknife(fvu_units)), ("zeroshot_a", za, z.mean(), mean_jackknife(z)),
            ("zeroshot_mean", zm, (z.mean() + 1) / 2, None)):
        _check(got[key], values, point, jack)


def test_zeroshot_correct_averages_to_clip_benchmark_accuracy():
    g = torch.Generator().manual_seed(0)
    classes, n = ["a", "b", "c"], 50
    class_emb = torch.randn(3, 6, generator=g)
    target = torch.randint(0, 3, (n,), generator=g)
    images = class_emb[target] + torch.randn(n, 6, generator=g) * 1.2

    class _Set(torch.utils.data.Dataset):
        classes = ["a", "b", "c"]

        def __len__(self):
            return n

        def __getitem__(self, i):
            return images[i], int(target[i])

    view = EncoderView(lambda x: x, lambda texts: torch.stack([class_emb[classes.index(t[-1])] for t in texts]))
    dl = torch.utils.data.DataLoader(_Set(), batch_size=16)
    right = zeroshot_correct(view, PassthroughTokenizer(), dl, classes, ["x {c}"])
    acc = zeroshot_accuracy(view, PassthroughTokenizer(), dl, classes, ["x {c}"])["acc1"]
    assert right.shape == (n,) and right.mean() == pytest.approx(acc, abs=1e-12)


def test_frequency_matched_clarity_scores_each_feature_on_its_top_n_images():
    acts, judge = _data(seed=4, n=60, f=7)
    acts[:, 2] = 0.0
    acts[[4, 9], 2] = 1.0  # two images only: left out of the matched metric
    cfg = SuiteConfig(top_n=4)
    got = metric_intervals(_inputs(acts, judge), cfg, B, SEED)["clarity_matched"]
    emb = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    tops = {}
    for j in range(acts.shape[1]):
        above = np.flatnonzero(acts[:, j] > cfg.tau)
        if len(above) >= cfg.top_n:
            tops[j] = above[np.lexsort((above, -acts[above, j]))][:cfg.top_n]  # value desc, then smaller id
    assert 2 not in tops and len(tops) >= 4
    point = {j: _u_clarity(t, emb[t]) for j, t in tops.items()}
    per = np.full(acts.shape[1], np.nan)
    per[list(point)] = list(point.values())
    reps = [np.nanmean(per[f]) for f in resample_indices(acts.shape[1], B, SEED + 1)]  # features resampled
    _check(got, reps, np.mean(list(point.values())), mean_jackknife(np.array(list(point.values()))))
    # the suite's point value: mean top-n clarity over the features with n images
    from interpbench.metrics.suite import MetricSuite

    s = MetricSuite(acts.shape[1], judge.shape[1], SuiteConfig(top_n=4, polysemanticity_max_features=2))
    s.update_images(acts, judge, np.arange(len(acts)))
    m, _ = s.finalize()
    assert m["clarity_matched"] == pytest.approx(np.mean(list(point.values())), abs=1e-6)
    assert m["clarity_matched_n"] == len(tops)


def test_chunked_features_give_the_intervals_of_all_rows_at_once():
    """evaluate streams the activation cache a chunk at a time (FeatureChunks); every interval
    must equal the one computed from all rows in one Entries."""
    acts, judge = _data(seed=8, n=90, f=7)
    rng = np.random.default_rng(9)
    concepts = (rng.random((len(acts), 3)) < 0.4).astype(np.float32)
    concepts[:, 0] = (acts[:, 2] > 0.3).astype(np.float32)
    labels = rng.normal(size=(acts.shape[1], judge.shape[1]))
    labels[5] = labels[2]
    kw = dict(concepts=concepts, concept_names=["color:red", "shape:circle", "size:big"],
              top_words=["red", "red", "circle", None, "big", "red", "circle"], label_text_judge=labels,
              label_routes={"images": labels[::-1].copy()})
    cfg = SuiteConfig(gt_threshold=0.6, top_n=4)
    whole = metric_intervals(_inputs(acts, judge, **kw), cfg, B, SEED)
    bounds = [0, 17, 40, 41, 90]  # uneven chunks, one of a single row

    def read():
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield lo, to_entries(acts[lo:hi], "f", acts.shape[1])

    chunked = IntervalInputs(features=FeatureChunks(len(acts), acts.shape[1], read),
                             judge_unit=unit_rows(torch.as_tensor(judge, dtype=torch.float64), "j"), **kw)
    got = metric_intervals(chunked, cfg, B, SEED)
    assert set(got) == set(whole) and {"clarity_matched", "label_corr_mean@images", "gt_coverage"} <= set(got)
    for key in whole:
        assert got[key]["lo"] == pytest.approx(whole[key]["lo"], abs=1e-9), key
        assert got[key]["hi"] == pytest.approx(whole[key]["hi"], abs=1e-9), key
        assert got[key]["replicates"] == pytest.approx(whole[key]["replicates"], abs=2e-6, nan_ok=True), key
