"""Clarity (Sparse CLIP Eq. 2), Active F%, L0, baseline and top-n Clarity against brute force."""

import itertools

import numpy as np
import pytest
import scipy.sparse
import torch

from interpbench.errors import NumericalError, ShapeMismatchError
from interpbench.metrics.clarity import ClarityAccumulator, clarity, clarity_topn
from interpbench.metrics.inputs import to_entries, unit_rows


def _data(seed=0, n=60, f=12, d=8, density=0.3):
    rng = np.random.default_rng(seed)
    acts = rng.exponential(1.0, (n, f)) * (rng.random((n, f)) < density)
    acts[rng.random((n, f)) < 0.1] = 0.0005  # below tau: must not count
    judge = rng.normal(size=(n, d))
    return acts, judge


def _brute_pairwise(vectors: np.ndarray) -> float:
    """Mean over ordered pairs j != k of cosine, by explicit pairs."""
    sims = [vectors[j] @ vectors[k] / (np.linalg.norm(vectors[j]) * np.linalg.norm(vectors[k]))
            for j, k in itertools.permutations(range(len(vectors)), 2)]
    return float(np.mean(sims))


def _brute_clarity(acts, judge, tau=0.001, n_min=2):
    per = []
    for i in range(acts.shape[1]):
        members = np.nonzero(acts[:, i] > tau)[0]
        per.append(_brute_pairwise(judge[members]) if len(members) >= n_min else np.nan)
    per = np.array(per)
    return float(np.nanmean(per)), per


def test_clarity_equals_brute_force_pairwise_cosine():
    acts, judge = _data()
    want, want_per = _brute_clarity(acts, judge)
    r = clarity(acts, judge)
    assert r.clarity == pytest.approx(want, abs=1e-6)
    np.testing.assert_allclose(r.per_feature, want_per, atol=1e-6)
    active = (acts > 0.001).sum(0) >= 2
    assert r.active_features_pct == pytest.approx(100 * active.mean())
    assert r.l0 == pytest.approx((acts > 0.001).sum(1).mean())
    assert r.l0_nonzero == pytest.approx((acts != 0).sum(1).mean())
    assert r.baseline == pytest.approx(_brute_pairwise(judge), abs=1e-6)
    np.testing.assert_array_equal(r.counts, (acts > 0.001).sum(0))


def test_n_min_and_tau_parameters():
    acts, judge = _data(seed=1)
    for tau, n_min in [(0.0, 2), (0.5, 3), (1.0, 5)]:
        want, want_per = _brute_clarity(acts, judge, tau, n_min)
        r = clarity(acts, judge, tau=tau, n_min=n_min)
        np.testing.assert_allclose(r.per_feature, want_per, atol=1e-6)
        assert r.clarity == pytest.approx(want, abs=1e-6)


def test_known_answer_identical_and_opposite_embeddings():
    # feature 0: three images with the same direction -> 1; feature 1: two opposite -> -1;
    # feature 2: a single image -> not active.
    judge = np.array([[1.0, 0], [2.0, 0], [3.0, 0], [0, 1.0], [0, -1.0]])
    acts = np.zeros((5, 3))
    acts[:3, 0] = 1
    acts[3:, 1] = 1
    acts[0, 2] = 1
    r = clarity(acts, judge)
    assert r.per_feature[0] == pytest.approx(1.0)
    assert r.per_feature[1] == pytest.approx(-1.0)
    assert np.isnan(r.per_feature[2])
    assert r.clarity == pytest.approx(0.0)
    assert r.active_features_pct == pytest.approx(200 / 3)


def test_merging_two_halves_equals_one_pass():
    acts, judge = _data(seed=2)
    emb = unit_rows(torch.tensor(judge), "judge")
    one = ClarityAccumulator(acts.shape[1], judge.shape[1])
    one.update(to_entries(acts, "f", acts.shape[1]), emb)
    a, b = ClarityAccumulator(acts.shape[1], judge.shape[1]), ClarityAccumulator(acts.shape[1], judge.shape[1])
    a.update(to_entries(acts[:25], "f", acts.shape[1]), emb[:25])
    b.update(to_entries(acts[25:], "f", acts.shape[1]), emb[25:])
    a.merge(b)
    r1, r2 = one.result(), a.result()
    np.testing.assert_allclose(r1.per_feature, r2.per_feature, atol=1e-7)
    assert (r1.clarity, r1.l0, r1.baseline) == pytest.approx((r2.clarity, r2.l0, r2.baseline), abs=1e-7)
    c = ClarityAccumulator(acts.shape[1], judge.shape[1])
    c.load_state_dict(a.state_dict())
    assert c.result().clarity == pytest.approx(r1.clarity, abs=1e-7)


def test_state_does_not_grow_with_n():
    sizes = []
    for n in (50, 500):
        acts, judge = _data(seed=3, n=n)
        acc = ClarityAccumulator(acts.shape[1], judge.shape[1])
        acc.update(to_entries(acts, "f", acts.shape[1]), unit_rows(torch.tensor(judge), "j"))
        sizes.append(sum(t.numel() for t in acc.state_dict().values()))
    assert sizes[0] == sizes[1]


@pytest.mark.parametrize("kind", ["numpy", "scipy", "torch_coo", "torch_csr"])
def test_sparse_inputs_give_the_same_answer(kind):
    acts, judge = _data(seed=4)
    conv = {"numpy": lambda a: a, "scipy": scipy.sparse.csr_matrix,
            "torch_coo": lambda a: torch.tensor(a).to_sparse_coo(),
            "torch_csr": lambda a: torch.tensor(a).to_sparse_csr()}[kind]
    assert clarity(conv(acts), judge).clarity == pytest.approx(clarity(acts, judge).clarity, abs=1e-6)


def test_topn_clarity_uses_the_n_strongest_images():
    acts, judge = _data(seed=5, density=0.6)
    n = 4
    val, per = clarity_topn(acts, judge, n=n)
    want = []
    for i in range(acts.shape[1]):
        above = np.nonzero(acts[:, i] > 0.001)[0]
        top = above[np.lexsort((above, -acts[above, i]))][:n]  # value desc, id asc
        want.append(_brute_pairwise(judge[top]) if len(top) >= 2 else np.nan)
    np.testing.assert_allclose(per, want, atol=1e-6)
    assert val == pytest.approx(np.nanmean(want), abs=1e-6)


def test_bad_inputs_raise_clear_errors():
    acts, judge = _data()
    bad = acts.copy()
    bad[7, 3] = np.nan
    with pytest.raises(NumericalError, match="row 7"):
        clarity(bad, judge)
    neg = acts.copy()
    neg[2, 1] = -1
    with pytest.raises(NumericalError, match="negative"):
        clarity(neg, judge)
    assert clarity(neg, judge, nonnegative=False).clarity is not None
    zero = judge.copy()
    zero[4] = 0
    with pytest.raises(NumericalError, match="row 4 is all zeros"):
        clarity(acts, zero)
    with pytest.raises(ShapeMismatchError, match="rows"):
        clarity(acts[:10], judge)
    with pytest.raises(ShapeMismatchError, match="expected"):
        ClarityAccumulator(3, 4).merge(ClarityAccumulator(3, 5))


def test_no_active_feature_gives_none_not_nan():
    r = clarity(np.zeros((5, 3)), np.eye(5, 4) + 0.1)
    assert r.clarity is None and r.active_features_pct == 0.0 and r.l0 == 0.0


def test_csr_with_repeated_columns_is_refused():
    """A non-canonical CSR (a column twice in one row) would be double counted: refuse it by name."""
    from interpbench.errors import ShapeMismatchError

    bad = torch.sparse_csr_tensor(torch.tensor([0, 2, 3]), torch.tensor([1, 1, 0]), torch.tensor([1.0, 2.0, 3.0]),
                                  (2, 4), check_invariants=False)
    with pytest.raises(ShapeMismatchError, match="feats: CSR row 0"):
        to_entries(bad, "feats", 4)


def test_csr_entries_equal_dense_entries():
    acts, _ = _data(seed=8)
    dense = to_entries(acts, "f", acts.shape[1])
    csr = to_entries(torch.tensor(acts).to_sparse_csr(), "f", acts.shape[1])
    for field in ("rows", "cols", "vals"):
        assert torch.equal(getattr(dense, field), getattr(csr, field)), field


def test_row_sums_fold_across_batches_equals_one_dense_product():
    """RowSums over 5 batches, folding every 2, equals the float64 dense product of all of them."""
    from interpbench.metrics.inputs import RowSums

    g = torch.Generator().manual_seed(11)
    acc, want = RowSums(7, 3, fold_every=2), torch.zeros(7, 3, dtype=torch.float64)
    for _ in range(5):
        m = torch.rand(4, 7, generator=g) * (torch.rand(4, 7, generator=g) < 0.4)
        emb = torch.randn(4, 3, generator=g)
        rows, cols = torch.nonzero(m, as_tuple=True)
        acc.add(cols, rows, m[rows, cols], emb)
        want += m.double().T @ emb.double()
    torch.testing.assert_close(acc.total, want, atol=1e-5, rtol=1e-5)
    assert acc._buf is None  # reading the total folded and freed the float32 buffer
