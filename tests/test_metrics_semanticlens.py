"""Top-n store, SemanticLens polysemanticity and redundancy against direct computations."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from interpbench.metrics.inputs import to_entries, unit_rows
from interpbench.metrics.semanticlens import polysemanticity, polysemanticity_score, redundancy
from interpbench.metrics.topn import TopNAccumulator


def _data(seed=0, n=80, f=10, d=6):
    rng = np.random.default_rng(seed)
    acts = np.round(rng.exponential(1.0, (n, f)), 1) * (rng.random((n, f)) < 0.4)  # rounding -> ties
    judge = rng.normal(size=(n, d))
    return acts, judge


def _fill(acts, judge, n=5, splits=(0,)):
    emb = unit_rows(torch.tensor(judge), "j")
    ids = torch.arange(acts.shape[0])
    acc = TopNAccumulator(acts.shape[1], n, judge.shape[1])
    bounds = [*splits, acts.shape[0]]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
        acc.update(to_entries(acts[lo:hi], "f", acts.shape[1]), ids[lo:hi], emb[lo:hi])
    return acc


def _brute_top(acts, i, n, tau=0.001):
    above = np.nonzero(acts[:, i] > tau)[0]
    return above[np.lexsort((above, -acts[above, i]))][:n]


def test_topn_matches_brute_force_with_ties():
    acts, judge = _data()
    acc = _fill(acts, judge, n=5, splits=(0, 13, 40, 41))
    unit = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    for i in range(acts.shape[1]):
        top = _brute_top(acts, i, 5)
        got = acc.ids[i][acc.ids[i] >= 0].numpy()
        np.testing.assert_array_equal(got, top)
        emb, mask = acc.embeddings(torch.tensor([i]))
        np.testing.assert_allclose(emb[0][mask[0]].numpy(), unit[top], atol=1e-6)


def test_merge_of_shards_equals_one_pass_in_any_order():
    acts, judge = _data(seed=1)
    one = _fill(acts, judge)
    a, b = _fill(acts[:30], judge[:30]), TopNAccumulator(acts.shape[1], 5, judge.shape[1])
    emb = unit_rows(torch.tensor(judge), "j")
    b.update(to_entries(acts[30:], "f", acts.shape[1]), torch.arange(30, 80), emb[30:])
    b.merge(a)  # reversed order on purpose
    assert torch.equal(one.ids, b.ids) and torch.equal(one.values, b.values)
    torch.testing.assert_close(one.sums(), b.sums(), atol=1e-6, rtol=0)
    c = TopNAccumulator(acts.shape[1], 5, judge.shape[1])
    c.load_state_dict(b.state_dict())
    torch.testing.assert_close(c.sums(), one.sums(), atol=1e-6, rtol=0)


def test_store_is_bounded_by_f_times_n():
    acts, judge = _data(seed=2, n=600)
    acc = _fill(acts, judge, n=3, splits=tuple(range(0, 600, 50)))
    assert acc.state_dict()["store"].shape[0] <= acts.shape[1] * 3


def _shuffled_stream(seed, n_img=400, f=12, n=4, signed=False):
    """Random batches with many ties, image ids shuffled (not increasing within a batch);
    signed values with tau = -inf, as for a dense representation."""
    rng = np.random.default_rng(seed)
    acts = (np.round(rng.exponential(1.0, (n_img, f)), 1) * (rng.random((n_img, f)) < 0.3)).astype(np.float32)
    if signed:
        acts *= np.where(rng.random((n_img, f)) < 0.5, -1, 1).astype(np.float32)
    ids = torch.tensor(rng.permutation(10 * n_img)[:n_img])
    emb = unit_rows(torch.tensor(rng.normal(size=(n_img, 5))), "j")
    cuts = [0, *sorted(rng.choice(np.arange(1, n_img), 6, replace=False).tolist()), n_img]
    return acts, ids, emb, cuts, n, (-np.inf if signed else 0.001)


def _stream(acts, ids, emb, cuts, n, tau):
    acc = TopNAccumulator(acts.shape[1], n, emb.shape[1], tau)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        acc.update(to_entries(acts[lo:hi], "f", acts.shape[1], nonnegative=tau > 0), ids[lo:hi], emb[lo:hi])
    return acc


@pytest.mark.parametrize("signed", [False, True])
def test_topn_stream_equals_per_feature_sort(signed):
    acts, ids, emb, cuts, n, tau = _shuffled_stream(seed=3, signed=signed)
    acc = _stream(acts, ids, emb, cuts, n, tau)
    for i in range(acts.shape[1]):
        rows = np.nonzero((acts[:, i] > tau) & (acts[:, i] != 0))[0]  # zeros are no entries
        top = rows[np.lexsort((ids.numpy()[rows], -acts[rows, i]))][:n]  # value desc, then smaller id
        np.testing.assert_array_equal(acc.ids[i][acc.ids[i] >= 0].numpy(), ids.numpy()[top])
        np.testing.assert_array_equal(acc.values[i][: top.size].numpy(), acts[top, i])
        got, mask = acc.embeddings(torch.tensor([i]))
        torch.testing.assert_close(got[0][mask[0]], emb[top].double(), atol=1e-6, rtol=0)
    # every stored row is referenced, and the counts say by how many slots
    held = acc.slots[acc.slots >= 0]
    assert torch.equal(acc.refs.long(), torch.bincount(held, minlength=acc.store.shape[0]))
    assert acc.store.shape[0] <= acts.shape[1] * n


def test_topn_two_shards_merged_equal_one_stream():
    acts, ids, emb, cuts, n, tau = _shuffled_stream(seed=4)
    one = _stream(acts, ids, emb, cuts, n, tau)
    half = cuts[len(cuts) // 2]
    a = _stream(acts[:half], ids[:half], emb[:half], [0, half], n, tau)
    b = _stream(acts[half:], ids[half:], emb[half:], [0, acts.shape[0] - half], n, tau)
    for first, second in ((a, b), (b, a)):
        merged = TopNAccumulator(acts.shape[1], n, emb.shape[1], tau)
        merged.load_state_dict(first.state_dict())
        merged.merge(second)
        assert torch.equal(merged.ids, one.ids) and torch.equal(merged.values, one.values)
        assert torch.equal(merged.sums(), one.sums())


def test_polysemanticity_known_answers():
    # two tight orthogonal groups -> centres orthogonal -> 1 - cos = 1
    x = np.array([[1, 0, 0.01], [1, 0, -0.01], [0, 1, 0.01], [0, 1, -0.01]], dtype=float)
    assert polysemanticity_score(x) == pytest.approx(1.0, abs=1e-9)
    # direct k-means, same settings as SemanticLens
    rng = np.random.default_rng(3)
    y = rng.normal(size=(20, 5))
    km = KMeans(n_clusters=2, n_init=10, random_state=123).fit(y)
    c1, c2 = km.cluster_centers_
    assert polysemanticity_score(y) == pytest.approx(1 - c1 @ c2 / np.linalg.norm(c1) / np.linalg.norm(c2))


def test_polysemanticity_fallback_when_a_cluster_is_tiny():
    # one outlier far away -> a cluster of size 1 -> 1 - mean cos(mean, first examples)
    x = np.array([[1, 0], [1, 0.001], [1, -0.001], [-50, 50]], dtype=float)
    mean = x.mean(0)
    want = 1 - np.mean([mean @ v / np.linalg.norm(mean) / np.linalg.norm(v) for v in x])
    assert polysemanticity_score(x) == pytest.approx(want)


def test_polysemanticity_subset_is_seeded():
    acts, judge = _data(seed=4)
    acc = _fill(acts, judge)
    m1, p1 = polysemanticity(acc, max_features=4, seed=7)
    m2, p2 = polysemanticity(acc, max_features=4, seed=7)
    assert (~np.isnan(p1)).sum() == 4
    np.testing.assert_array_equal(p1, p2)


def test_redundancy_equals_brute_force_max_cosine():
    acts, judge = _data(seed=5)
    acc = _fill(acts, judge)
    unit = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    means = [unit[_brute_top(acts, i, 5)].mean(0) for i in range(acts.shape[1])]
    ok = [i for i in range(acts.shape[1]) if len(_brute_top(acts, i, 5)) >= 2]
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    want = {i: max(cos(means[i], means[j]) for j in ok if j != i) for i in ok}
    val, per = redundancy(acc)
    for i in ok:
        assert per[i] == pytest.approx(want[i], abs=1e-5)
    assert val == pytest.approx(np.mean(list(want.values())), abs=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_blocked_redundancy_matches_full_matrix_for_any_chunk(chunk):
    """The upper-triangle block pass equals the max over the full cosine matrix (ragged blocks too)."""
    from interpbench.metrics.semanticlens import redundancy_from_means

    g = torch.Generator().manual_seed(3)
    means = torch.randn(23, 6, generator=g, dtype=torch.float64)
    valid = torch.ones(23, dtype=torch.bool)
    valid[[4, 17]] = False  # invalid features are neither scored nor candidates
    unit = torch.nn.functional.normalize(means, dim=1).numpy()
    ok = np.flatnonzero(valid.numpy())
    sims = unit[ok] @ unit[ok].T
    np.fill_diagonal(sims, -np.inf)
    _, per = redundancy_from_means(means, valid, chunk=chunk)
    np.testing.assert_allclose(per[ok], sims.max(axis=1), atol=1e-6)
    assert np.isnan(per[[4, 17]]).all()


def test_redundancy_of_identical_directions_is_at_most_one():
    """float32 dot products of unit rows can exceed 1 (here 1 + 1.2e-7); a cosine must not."""
    from interpbench.metrics.semanticlens import redundancy_from_means

    means = torch.tensor([[-0.7071, -0.7071], [-0.7071, -0.7071]])  # found by the suite's property test
    mean, per = redundancy_from_means(means, torch.tensor([True, True]))
    assert mean == 1.0 and (per == 1.0).all()
