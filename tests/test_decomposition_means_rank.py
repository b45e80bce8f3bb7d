"""Two facts the decomposition docs state: ablation means come from the scored population, and a
head's direct terms span head dim + 3 directions (the linearised LayerNorm adds three)."""

from __future__ import annotations

import pytest
import torch

from interpbench.clipmodels import create_random
from interpbench.data.shapes import ShapesWorld
from interpbench.decomposition import decompose
from interpbench.decomposition.inputs import images_tensor, load_model, samples_of
from interpbench.decomposition.pipeline import _population_means


def test_object_attribute_means_come_from_one_object_images_only():
    model = create_random("shapes-vit-tiny", seed=0).eval()
    samples = samples_of(ShapesWorld("eval", 40, 0))
    dec = decompose(model, images_tensor(model, samples), normalize=True, keep_tokens=False)
    one = [i for i, x in enumerate(samples) if len(x.objects) == 1]
    assert 0 < len(one) < len(samples)
    for attribute in ("shape", "color", "size", "position"):
        means = _population_means(dec, samples, attribute)
        assert means.n_images == len(one)
        torch.testing.assert_close(means.heads, dec.heads[one].mean(0))
        torch.testing.assert_close(means.mlps, dec.mlps[one].mean(0))
    for attribute in ("count", "background"):
        means = _population_means(dec, samples, attribute)
        assert means.n_images == len(samples)
        torch.testing.assert_close(means.heads, dec.heads.mean(0))


@pytest.mark.slow  # loads the shipped shapes:dense and decomposes 96 images (~10 s on a loaded machine)
def test_head_terms_of_shapes_dense_span_head_dim_plus_three():
    model = load_model("shapes:dense")[0]
    samples = samples_of(ShapesWorld("eval", 96, 0))
    dec = decompose(model, images_tensor(model, samples), normalize=True, keep_tokens=False)
    dh = model.visual.transformer.resblocks[0].attn.head_dim
    for layer in range(dec.n_layers):
        for head in range(dec.n_heads):
            s = torch.linalg.svdvals(dec.heads[:, layer, head].double())
            rank = int((s > s[0] * 1e-6).sum())  # float32 noise sits near 1e-7 relative
            assert rank == dh + 3, (layer, head, rank)
            assert (s[dh:] ** 2).sum() / (s ** 2).sum() < 1e-4  # what rank = head dim leaves out
