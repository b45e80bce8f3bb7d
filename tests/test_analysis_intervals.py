"""Intervals of the analyses' headline numbers, checked against brute-force bootstraps.

Each brute force below loops over the same seeded resamples (metrics.bootstrap.resample_indices)
and recomputes the statistic from the raw per-image values with plain Python lists, so it shares
no code with analysis/intervals.py but the resampling convention itself.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from interpbench.analysis import clustering, duplicates, intervals, retrieval
from interpbench.metrics.bootstrap import resample_indices, studentized_interval


def _pct(stats, point):
    """Percentile interval of the replicates with their bias (mean - point) removed."""
    s = np.array([x for x in stats if np.isfinite(x)])
    return tuple(np.quantile(s - s.mean() + point, [0.025, 0.975]))


def test_attribute_mean_interval_matches_brute_force():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 1, (3, 30))
    v[0, ::3] = np.nan  # image not scored for attribute 0
    v[2, 10:] = np.nan
    stats = []
    for idx in [np.arange(30), *resample_indices(30, 50, 7)]:
        per = [[v[a, i] for i in idx if np.isfinite(v[a, i])] for a in range(3)]
        stats.append(np.mean([np.mean(p) for p in per if p]))
    got = intervals.attribute_mean_interval(v, b=50, seed=7)
    assert got == pytest.approx(_pct(stats[1:], stats[0]), abs=1e-12)
    assert got[0] <= stats[0] <= got[1]


def test_attribute_score_interval_matches_brute_force():
    rng = np.random.default_rng(1)
    n = 40
    rows = {"a": np.arange(0, 40, 2), "b": np.arange(40)}
    truth = {k: rng.integers(0, 3, len(r)) for k, r in rows.items()}
    pred = {k: np.where(rng.uniform(size=len(t)) < 0.7, t, rng.integers(0, 3, len(t))) for k, t in truth.items()}
    stats = []
    for idx in [np.arange(n), *resample_indices(n, 40, 3)]:
        vals = []
        for k in rows:
            where = {img: j for j, img in enumerate(rows[k])}
            j = [where[i] for i in idx if i in where]
            vals.append(adjusted_rand_score(truth[k][j], pred[k][j]))
        stats.append(np.mean(vals))
    got = intervals.attribute_score_interval(truth, pred, rows, n, intervals.ari_from_table, b=40, seed=3)
    assert got == pytest.approx(_pct(stats[1:], stats[0]), abs=1e-12)


@pytest.mark.parametrize("case", range(8))
def test_table_scores_equal_scikit_learn(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(2, 30))
    t = rng.integers(0, [1, 2, 3, 4, 5, 1, 3, 6][case], n)
    p = t.copy() if case in (4, 5) else rng.integers(0, [1, 2, 3, 4, 5, 1, 1, 2][case], n)
    table = np.zeros((t.max() + 1, p.max() + 1))
    np.add.at(table, (t, p), 1.0)
    assert intervals.ari_from_table(table) == pytest.approx(adjusted_rand_score(t, p), abs=1e-12)
    assert intervals.nmi_from_table(table) == pytest.approx(normalized_mutual_info_score(t, p), abs=1e-12)


def test_clustering_and_retrieval_reports_carry_intervals():
    rng = np.random.default_rng(4)
    truth = [f"v{j}" for j in range(4) for _ in range(40)]
    x = np.abs(np.repeat(np.eye(32)[:4] * 3, 40, axis=0) + 0.8 * rng.standard_normal((160, 32)))
    rep = clustering.clustering_report(x, {"a": truth}, seed=0, b=30)
    n = len(truth)
    pred = np.asarray(clustering.cluster_scores(x, truth, seed=0)["clusters"])
    t = np.asarray(truth)
    stats = [adjusted_rand_score(t[idx], pred[idx]) for idx in resample_indices(n, 30, 0)]
    assert rep["mean_ari_interval"] == pytest.approx(_pct(stats, adjusted_rand_score(t, pred)), abs=1e-12)
    assert clustering.clustering_report(x, {"a": truth}, b=0)["mean_ari_interval"] is None
    ret = retrieval.retrieval_report(x, x, {"a": truth}, k=5, b=30, seed=2)
    # brute force per-query precision, then the same resamples
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn @ xn.T
    np.fill_diagonal(sim, -np.inf)
    prec = [np.mean([truth[j] == truth[q] for j in np.argsort(-sim[q], kind="stable")[:5]]) for q in range(n)]
    assert ret["mean"]["codes"] == pytest.approx(np.mean(prec))
    stats = [np.mean([prec[i] for i in idx]) for idx in resample_indices(n, 30, 2)]
    assert ret["interval"] == pytest.approx(_pct(stats, np.mean(prec)), abs=1e-12)


def test_duplicate_share_interval_resamples_features():
    z = torch.zeros(50, 6)
    z[:20, 0] = z[:20, 1] = z[:20, 2] = 1.0  # three identical features
    z[20:40, 3] = 1.0
    z[torch.arange(0, 50, 2), 4] = 1.0
    z[25:, 5] = 1.0
    dup = duplicates.duplicate_groups(z, b=80, seed=1)
    assert dup["share_in_groups"] == pytest.approx(3 / 6)
    member = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    stats = [np.mean([member[i] for i in idx]) for idx in resample_indices(6, 80, 1)]
    # a mean over 6 features: the studentized interval of metrics.bootstrap.mean_interval
    assert len(stats) == 80
    want = studentized_interval(np.array(member), resample_indices(6, 80, 1))
    assert dup["share_interval"] == pytest.approx(want, abs=1e-12)


def test_headline_intervals_follow_the_bootstrap_record_format():
    from interpbench.analysis.run import headline, headline_intervals

    analyses = {"steering": {"steerability": 0.4, "steerability_interval": [0.3, 0.5],
                             "ablation": {"ratio": None, "win_rate": 0.7, "win_rate_interval": (0.6, 0.8),
                                          "ratio_interval": None, "share_features_label_beats_random": 0.9}},
                "latent": {"clustering": {"mean_ari": 0.2, "mean_nmi": 0.3, "mean_ari_interval": (0.1, 0.3),
                                          "mean_nmi_interval": (0.2, 0.4)},
                           "retrieval": {"mean": {"codes": 0.5, "baseline": 0.6}, "interval": (0.45, 0.55)},
                           "duplicates": {"share_in_groups": 0.0, "share_interval": (0.0, 0.0)}}}
    got = headline_intervals(analyses, b=200, seed=3)
    assert set(got) <= set(headline(analyses))
    assert got["steerability"] == {"lo": 0.3, "hi": 0.5, "level": 0.95, "method": "bootstrap-images",
                                   "b": 200, "seed": 3, "interval": "centred"}
    assert got["duplicate_share"]["method"] == "bootstrap-features"
    assert "ablation_ratio" not in got  # no interval where the ratio is undefined
    assert got["retrieval_p_at_k_codes"]["lo"] == 0.45 and got["cluster_nmi_mean"]["hi"] == 0.4
