"""TextSpan: known-answer tests with planted texts, and the variance bookkeeping checked against
an independent projection."""

import numpy as np
import pytest
import torch

from interpbench.decomposition import ComponentMeans, decompose, duplicate_texts, text_span, text_span_heads
from interpbench.decomposition.textspan import TextSpanResult, reconstruction_accuracy
from interpbench.errors import ShapeMismatchError


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def _planted(seed=0, d=32, n_pool=40, n_images=300, stds=(5.0, 3.0, 1.5), noise=0.0):
    """Head outputs = mean + sum_k a_k * t_k with t_k three pool texts (stds decreasing)."""
    g = torch.Generator().manual_seed(seed)
    pool = _unit(torch.randn(n_pool, d, generator=g, dtype=torch.float64))
    planted = [7, 23, 31]
    coef = torch.randn(n_images, len(planted), generator=g, dtype=torch.float64) * torch.tensor(stds)
    outputs = 2.0 * pool[0] + coef @ pool[planted] + noise * torch.randn(n_images, d, generator=g, dtype=torch.float64)
    texts = [f"text {i}" for i in range(n_pool)]
    return outputs, pool, texts, planted


def test_planted_texts_are_picked_first():
    outputs, pool, texts, planted = _planted()
    res = text_span(outputs, pool, texts, n_texts=5)
    assert res.indices[:3] == planted  # largest-variance planted text first
    assert res.texts[:3] == ["text 7", "text 23", "text 31"]
    # Three texts span the head exactly: they explain all of its variance, later picks nothing.
    assert sum(res.explained[:3]) == pytest.approx(1.0, abs=1e-9)
    assert all(e < 1e-9 for e in res.explained[3:])


def test_planted_texts_with_noise_and_rank():
    outputs, pool, texts, planted = _planted(seed=1, noise=0.05)
    res = text_span(outputs, pool, texts, n_texts=3, rank=4)
    assert sorted(res.indices) == sorted(planted)
    assert 0.99 < res.variance_explained < 1.0


def test_explained_matches_independent_projection():
    """sum(explained) = V(T) / total variance, with V(T) from a QR projection onto the picked texts
    (pool restricted to the head's top-rank subspace, as the algorithm does)."""
    g = torch.Generator().manual_seed(2)
    d, k = 16, 6
    outputs = torch.randn(200, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64)
    pool = _unit(torch.randn(30, d, generator=g, dtype=torch.float64))
    res = text_span(outputs, pool, [str(i) for i in range(30)], n_texts=k, rank=10)
    vh = np.linalg.svd(outputs.numpy(), full_matrices=False)[2][:10]
    texts = pool.numpy()[res.indices] @ vh.T @ vh
    q, _ = np.linalg.qr(texts.T)
    centred = outputs.numpy() - outputs.numpy().mean(0)
    v_t = ((centred @ q) ** 2).sum(1).mean()
    total = (centred ** 2).sum(1).mean()
    assert res.variance_explained == pytest.approx(v_t / total, rel=1e-6)
    assert res.total_variance == pytest.approx(total, rel=1e-6)
    # reconstruct() = mean + projection onto the picked span, also for new images
    new = torch.randn(5, d, generator=g, dtype=torch.float64)
    expected = outputs.mean(0).numpy() + ((new.numpy() - outputs.mean(0).numpy()) @ q) @ q.T
    np.testing.assert_allclose(res.reconstruct(new).numpy(), expected, atol=1e-5)  # basis kept in float32


def test_greedy_choice_is_the_largest_std():
    outputs, pool, texts, _ = _planted(seed=3, noise=0.3)
    res = text_span(outputs, pool, texts, n_texts=1)
    stds = ((outputs - outputs.mean(0)) @ pool.T).std(0)
    assert res.indices == [int(stds.argmax())]


def test_duplicates_across_heads():
    def r(texts):
        return TextSpanResult(texts, list(range(len(texts))), [0.1] * len(texts), torch.zeros(2),
                              torch.zeros(len(texts), 2), 1.0)

    dups = duplicate_texts({(3, 0): r(["a red circle", "two objects"]), (3, 1): r(["a red circle"]),
                            (2, 2): r(["two objects", "a star"])})
    assert dups == {"a red circle": [(3, 0), (3, 1)], "two objects": [(3, 0), (2, 2)]}


def test_shape_errors():
    with pytest.raises(ShapeMismatchError, match="same d"):
        text_span(torch.zeros(4, 3), torch.zeros(5, 2), ["x"] * 5, 2)
    with pytest.raises(ShapeMismatchError, match="2 texts but 5"):
        text_span(torch.zeros(4, 3), torch.zeros(5, 3), ["x"] * 2, 2)


def test_reconstruction_accuracy_on_a_real_model():
    """A full-span TextSpan (texts = basis of the joint space) reconstructs every head exactly, so
    accuracy equals the early-layers-ablated model; with one text per head it is recomputed by hand."""
    from interpbench.clipmodels import create_random

    model = create_random("shapes-vit-tiny", seed=0)
    g = torch.Generator().manual_seed(0)
    fit = decompose(model, torch.randn(30, 3, 64, 64, generator=g), normalize=True, keep_tokens=False)
    score = decompose(model, torch.randn(20, 3, 64, 64, generator=g), normalize=True, keep_tokens=False)
    basis = torch.eye(64)
    texts = [f"e{i}" for i in range(64)]
    classifier = _unit(torch.randn(64, 5, generator=g).T).T
    labels = (score.total() @ classifier).argmax(-1)  # base accuracy 1 by construction
    means = ComponentMeans.of(fit)
    full = text_span_heads(fit, basis, texts, n_texts=64, layers=[2, 3])
    acc = reconstruction_accuracy(score, full, means, classifier, labels)
    assert acc["base"] == 1.0 and acc["textspan"] == acc["early_layers_ablated"]
    one = text_span_heads(fit, basis, texts, n_texts=1, layers=[3])
    heads = score.heads.clone()
    heads[:, :3] = means.heads[:3]
    for (layer, head), res in one.items():
        b = res.basis[0] / res.basis[0].norm()
        heads[:, layer, head] = res.mean + ((score.heads[:, layer, head] - res.mean) @ b)[:, None] * b
    emb = score.embed + score.mlps.sum(1) + heads.sum((1, 2))
    expected = ((emb @ classifier).argmax(-1) == labels).float().mean().item()
    assert reconstruction_accuracy(score, one, means, classifier, labels)["textspan"] == pytest.approx(expected)
