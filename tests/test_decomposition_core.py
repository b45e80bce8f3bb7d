"""The direct-effect decomposition adds up to open_clip's own encode_image, and its per-head
terms agree with an ablation done through PyTorch's own attention."""

from pathlib import Path

import pytest
import torch
from open_clip.transformer import VisionTransformer

from interpbench.clipmodels import (
    SparseCLIP,
    SparseHeadCfg,
    create_random,
    load_model_folder,
    save_model_folder,
)
from interpbench.decomposition import decompose
from interpbench.errors import ShapeMismatchError, UnknownFormatError

REFERENCE = Path(__file__).resolve().parents[1] / "interpbench" / "reference_models"


def _images(model, n, seed=1):
    size = model.visual.image_size
    size = size[0] if isinstance(size, tuple) else size
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _rel(a, b):
    return ((a - b).norm(dim=-1) / b.norm(dim=-1)).max().item()


def _check_sums(model, images, reference):
    dec = decompose(model, images)
    assert _rel(dec.total(), reference) < 1e-4
    # Per-token view: summing tokens (all layers and heads) or per-layer (token, head) cells
    # gives the same embedding.
    assert _rel(dec.embed + dec.mlps.sum(1) + dec.tokens.sum(1), reference) < 1e-4
    cells = sum(dec.head_tokens(layer).sum((1, 2)) for layer in range(dec.n_layers))
    assert _rel(dec.embed + dec.mlps.sum(1) + cells, reference) < 1e-4
    for layer in range(dec.n_layers):
        torch.testing.assert_close(dec.head_tokens(layer).sum(1), dec.heads[:, layer], atol=1e-5, rtol=1e-4)
    unit = decompose(model, images, normalize=True, keep_tokens=False)
    assert _rel(unit.total(), torch.nn.functional.normalize(reference, dim=-1)) < 1e-4
    return dec


@pytest.fixture(scope="module")
def tiny():
    return create_random("shapes-vit-tiny", seed=0).eval()


def test_sum_reproduces_encode_image_tiny(tiny):
    images = _images(tiny, 5)
    with torch.no_grad():
        ref = tiny.encode_image(images)
    dec = _check_sums(tiny, images, ref)
    L, H = 4, 4  # shapes-vit-tiny: 4 layers, width 128, head width 32
    assert dec.heads.shape == (5, L, H, 64) and dec.mlps.shape == (5, L, 64)
    assert dec.tokens.shape == (5, 65, 64) and dec.attention.shape == (5, L, H, 65)
    torch.testing.assert_close(dec.attention.sum(-1), torch.ones(5, L, H))


@pytest.mark.slow  # ~5 s idle, ~25 s on a loaded 2-core machine; the tiny test runs by default
def test_sum_reproduces_encode_image_vit_b32():
    model = create_random("ViT-B-32", seed=0).eval()
    images = _images(model, 2)
    with torch.no_grad():
        ref = model.encode_image(images)
    dec = decompose(model, images, keep_tokens=[11])
    assert _rel(dec.total(), ref) < 1e-4
    assert dec.heads.shape == (2, 12, 12, 512) and dec.grid == (7, 7)
    torch.testing.assert_close(dec.head_tokens(-1).sum(1), dec.heads[:, 11], atol=1e-5, rtol=1e-4)


def test_layerscale_tower_without_wrapper():
    """A bare VisionTransformer with LayerScale: both gammas must be carried."""
    torch.manual_seed(0)
    tower = VisionTransformer(image_size=32, patch_size=8, width=64, layers=2, heads=2, mlp_ratio=2.0,
                              ls_init_value=0.7, output_dim=16).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = tower(images)
    _check_sums(tower, images, ref)


def test_last_layer_head_equals_pytorch_ablation(tiny):
    """Independent check of one head's term: zero its slice of out_proj in the real
    nn.MultiheadAttention, take the change of the module's CLS output (the head's write) and map
    it through ln_post frozen at the unmodified final residual, and the projection."""
    images = _images(tiny, 3)
    dec = decompose(tiny, images)
    visual = tiny.visual
    block = visual.transformer.resblocks[-1]
    W, H, L = 128, 4, 4
    dh = W // H
    seen = {}
    hooks = [visual.ln_post.register_forward_pre_hook(lambda m, a: seen.__setitem__("final", a[0][:, 0])),
             block.attn.register_forward_hook(lambda m, a, out: seen.__setitem__("attn", out[0][:, 0]))]
    try:
        with torch.no_grad():
            tiny.encode_image(images)
            final, attn_full = seen["final"].clone(), seen["attn"].clone()
            sigma = torch.sqrt(final.var(-1, unbiased=False) + visual.ln_post.eps)[:, None]
            mu = final.mean(-1, keepdim=True)
            gamma, beta = visual.ln_post.weight, visual.ln_post.bias
            share = 1.0 / ((2 * L + 1) * H)
            for head in range(H):
                saved = block.attn.out_proj.weight.clone()
                block.attn.out_proj.weight[:, head * dh:(head + 1) * dh] = 0
                tiny.encode_image(images)
                block.attn.out_proj.weight.copy_(saved)
                write = attn_full - seen["attn"]  # this head's write, without its bias share
                expected = (write * gamma / sigma) @ visual.proj
                # the decomposition's term also carries the head's constant shares (bias/H, mean, beta)
                bias = block.attn.out_proj.bias / H
                offset = ((bias - mu * share) * gamma / sigma + beta * share) @ visual.proj
                torch.testing.assert_close(dec.heads[:, -1, head] - offset, expected, atol=1e-5, rtol=1e-4)
    finally:
        for h in hooks:
            h.remove()


def test_sparse_model_folder_round_trip(tmp_path):
    """A saved SparseCLIP folder: the decomposition is of the pre-ReLU embedding."""
    clip = create_random("shapes-vit-tiny-sparse", seed=3)
    save_model_folder(tmp_path / "m", SparseCLIP(clip), "shapes-vit-tiny-sparse", sparse=SparseHeadCfg())
    model, _ = load_model_folder(tmp_path / "m")
    assert isinstance(model, SparseCLIP)
    images = _images(model.clip, 3)
    with torch.no_grad():
        ref = model.clip.encode_image(images)
    dec = decompose(model, images, keep_tokens=False)
    assert _rel(dec.total(), ref) < 1e-4
    assert dec.total().shape[-1] == 2048  # the shapes-vit-tiny-sparse config (32x)


@pytest.mark.parametrize("name", ["dense", "sparse"])
def test_shipped_reference_models(name):
    folder = REFERENCE / name
    if not (folder / "open_clip_model.safetensors").is_file():
        pytest.skip(f"interpbench/reference_models/{name} not built yet (interpbench train reference)")
    model, _ = load_model_folder(folder)
    inner = getattr(model, "clip", model)
    images = _images(inner, 4)
    with torch.no_grad():
        ref = inner.encode_image(images)
    _check_sums(model, images, ref)


def test_batches_give_the_same_terms(tiny):
    images = _images(tiny, 5)
    one = decompose(tiny, images, batch_size=5)
    split = decompose(tiny, images, batch_size=2)
    torch.testing.assert_close(one.heads, split.heads)
    torch.testing.assert_close(one.head_tokens(1), split.head_tokens(1))


def test_subset_and_missing_tokens(tiny):
    dec = decompose(tiny, _images(tiny, 4), keep_tokens=[3])
    sub = dec.subset(torch.tensor([0, 2]))
    torch.testing.assert_close(sub.total(), dec.total()[[0, 2]])
    with pytest.raises(KeyError, match="keep_tokens"):
        dec.head_tokens(0)


def test_bad_inputs_raise_clear_errors(tiny):
    with pytest.raises(ShapeMismatchError, match=r"\[B, 3, H, W\]"):
        decompose(tiny, torch.zeros(2, 64, 64))
    avg = VisionTransformer(image_size=32, patch_size=8, width=64, layers=1, heads=2, mlp_ratio=2.0,
                            output_dim=16, pool_type="avg")
    with pytest.raises(UnknownFormatError, match="pool_type"):
        decompose(avg, torch.zeros(1, 3, 32, 32))
    with pytest.raises(UnknownFormatError, match="VisionTransformer"):
        decompose(torch.nn.Linear(2, 2), torch.zeros(1, 3, 32, 32))
