"""Hook sites in an open_clip ViT: reads match a hand-written forward pass, and splicing a
replacement back in gives the embedding a hand-written forward pass gives."""

from __future__ import annotations

import pytest
import torch
from test_adapters_support import LAYERS, TOKENS, WIDTH, base_model, images, resid_at, shared_base

from interpbench.adapters import hooks
from interpbench.adapters.sae_canonical import HookSite


@pytest.fixture(scope="module")
def model():
    return base_model(shared_base())


@torch.no_grad()
def finish(model, x, start):
    """Hand-written rest of open_clip's ViT after block `start - 1`: blocks, ln_post, CLS, proj."""
    v = model.visual
    for blk in v.transformer.resblocks[start:]:
        x = blk(x)
    return v.ln_post(x)[:, 0] @ v.proj


@pytest.mark.parametrize("site,tokens", [("resid_post", "cls"), ("resid_post", "patch"), ("mlp_out", "all")])
def test_reads_match_manual_forward(model, site, tokens):
    imgs = images()
    got = hooks.activations_at(model, imgs, HookSite(site, 2, tokens))
    full = resid_at(model, imgs, 2, mlp=site == "mlp_out")
    want = {"cls": full[:, 0], "patch": full[:, 1:], "all": full}[tokens]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert full.shape == (3, TOKENS, WIDTH)


def test_replacement_matches_manual_splice(model):
    imgs = images()
    fn = lambda x: 0.5 * x + 0.1  # noqa: E731 - a stand-in for an SAE reconstruction
    got = hooks.encode_image_with_replacement(model, imgs, HookSite("resid_post", 1, "patch"), fn)
    x = resid_at(model, imgs, 1).clone()
    x[:, 1:] = fn(x[:, 1:])
    torch.testing.assert_close(got, finish(model, x, 2), atol=1e-5, rtol=1e-5)
    same = hooks.encode_image_with_replacement(model, imgs, HookSite("resid_post", LAYERS - 1, "all"), lambda x: x)
    torch.testing.assert_close(same, model.encode_image(imgs), atol=1e-5, rtol=1e-5)
