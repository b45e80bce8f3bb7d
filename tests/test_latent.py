"""Clustering, retrieval and duplicate features on planted codes (issue 11)."""

import numpy as np
import pytest
import torch

from interpbench.analysis import clustering, duplicates, retrieval
from interpbench.errors import EmptyDatasetError, ShapeMismatchError


def _planted(n_per: int = 40, k: int = 4, dim: int = 32, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:k] * 3
    x = np.concatenate([c + noise * rng.standard_normal((n_per, dim)) for c in centres])
    truth = [f"v{j}" for j in range(k) for _ in range(n_per)]
    return np.abs(x), truth


def test_planted_clusters_give_ari_one():
    x, truth = _planted()
    r = clustering.cluster_scores(x, truth, seed=0)
    assert r["k"] == 4 and r["n"] == 160
    assert r["ari"] > 0.99 and r["nmi"] > 0.99


def test_random_codes_give_ari_near_zero():
    rng = np.random.default_rng(1)
    x = np.abs(rng.standard_normal((300, 32)))
    truth = [f"v{j}" for j in rng.integers(0, 4, 300)]
    r = clustering.cluster_scores(x, truth, seed=0)
    assert abs(r["ari"]) < 0.05 and r["nmi"] < 0.05


def test_clustering_skips_images_without_a_single_value():
    x, truth = _planted()
    truth = [None if i % 2 else t for i, t in enumerate(truth)]
    r = clustering.clustering_report(x, {"shape": truth})
    assert r["per_attribute"]["shape"]["n"] == 80 and r["mean_ari"] > 0.99
    with pytest.raises(ShapeMismatchError):
        clustering.cluster_scores(x[:5], truth)
    with pytest.raises(EmptyDatasetError):
        clustering.cluster_scores(x[:3], truth[:3])


def test_retrieval_precision_matches_a_hand_count():
    # Directions (angles in degrees) and values. By cosine, each point's 2 nearest are:
    #   0 (0°,  a): 1 (10°, a), 2 (20°, a)        -> 2/2 share a
    #   1 (10°, a): 0, 2                          -> 2/2
    #   2 (20°, a): 1 (10° away), 0 (20° away)    -> 2/2   [3 at 60° is further]
    #   3 (80°, b): 4 (90°, b), 5 (105°, a)       -> 1/2
    #   4 (90°, b): 3 (10° away), 5 (15° away)    -> 1/2
    #   5 (105°, a): 4 (15° away), 3 (25° away)   -> 0/2
    # precision@2 = (1 + 1 + 1 + 0.5 + 0.5 + 0) / 6 = 4/6
    ang = np.deg2rad([0, 10, 20, 80, 90, 105])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    truth = ["a", "a", "a", "b", "b", "a"]
    r = retrieval.precision_at_k(x, truth, k=2)
    assert r["precision"] == pytest.approx(4 / 6)
    # chance: sum n_v (n_v - 1) / (n (n - 1)) = (4*3 + 2*1) / 30
    assert r["chance"] == pytest.approx(14 / 30)
    nn = retrieval.nearest(torch.tensor(x), torch.tensor([4]), 2)
    assert nn.tolist() == [[3, 5]]


def test_retrieval_report_compares_with_baseline():
    x, truth = _planted(n_per=20)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(x.shape)
    r = retrieval.retrieval_report(x, noise, {"shape": truth}, k=5)
    assert r["per_attribute"]["shape"]["codes"] == 1.0
    assert r["per_attribute"]["shape"]["baseline"] < 0.6
    with pytest.raises(EmptyDatasetError):
        retrieval.precision_at_k(x[:4], truth[:4], k=5)


def test_planted_identical_features_are_duplicates():
    g = torch.Generator().manual_seed(0)
    n = 500
    base = (torch.rand(n, generator=g) < 0.3).float()
    z = torch.stack([base * 1.0, base * 2.5,  # features 0, 1: same images, different scale
                     (torch.rand(n, generator=g) < 0.3).float(),  # 2, 3: independent
                     (torch.rand(n, generator=g) < 0.3).float(),
                     torch.zeros(n)], 1)  # 4: dead
    w_dec = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    r = duplicates.duplicate_groups(z, threshold=0.9, w_dec=w_dec, top_labels=["red", "red", "blue", None, None])
    assert r["n_alive"] == 4 and r["n_groups"] == 1
    g0 = r["groups"][0]
    assert g0["features"] == [0, 1]
    assert g0["decoder_cosine"] == pytest.approx(0.6)
    assert g0["same_label"] is True and r["share_groups_same_label"] == 1.0
    assert r["share_in_groups"] == pytest.approx(2 / 4)


def test_jaccard_pairs_match_brute_force():
    g = torch.Generator().manual_seed(1)
    z = (torch.rand(200, 30, generator=g) < 0.2).float() * torch.rand(200, 30, generator=g)
    z[:, 5] = z[:, 3]
    z[:, 7] = z[:, 3] * (torch.rand(200, generator=g) < 0.97)  # nearly the same images as 3
    alive, r, c = duplicates.jaccard_pairs(z, threshold=0.5, n_min=1, chunk=7)
    a = (z > 0).numpy()
    expected = {(i, j) for i in range(30) for j in range(i + 1, 30)
                if (a[:, i] & a[:, j]).sum() / max((a[:, i] | a[:, j]).sum(), 1) > 0.5}
    assert {(int(alive[i]), int(alive[j])) for i, j in zip(r, c, strict=True)} == expected
    assert {(3, 5), (3, 7), (5, 7)} <= expected
