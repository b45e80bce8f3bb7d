"""Shared helpers for the adapter tests (no tests here): a tiny random open_clip base model
saved as a real model folder, and random images for it."""

from __future__ import annotations

from pathlib import Path

import torch

ARCH = "shapes-vit-tiny"  # embed 64, vision width 128, 4 blocks, 64 px, 8 px patches -> 65 tokens
EMBED, WIDTH, LAYERS, TOKENS = 64, 128, 4, 65


def make_base_folder(folder: Path, sparse: bool = False) -> Path:
    from interpbench.clipmodels import SparseCLIP, SparseHeadCfg, create_random, save_model_folder

    model = create_random(ARCH, seed=0)
    cfg = SparseHeadCfg() if sparse else None
    save_model_folder(folder, SparseCLIP(model, cfg) if sparse else model, ARCH, sparse=cfg, dtype=torch.float32)
    return folder


_SHARED: dict = {}


def shared_base(sparse: bool = False) -> Path:
    """One random base-model folder per test session (writing it costs seconds on a busy CPU);
    removed when the interpreter exits."""
    import tempfile

    if sparse not in _SHARED:
        tmp = tempfile.TemporaryDirectory(prefix="ib-adapters-")
        _SHARED[sparse] = (tmp, make_base_folder(Path(tmp.name) / "clip", sparse=sparse))
    return _SHARED[sparse][1]


def images(n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 64, 64, generator=g)


def rand(*shape, seed: int = 0, scale: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def base_model(folder: Path):
    from interpbench.clipmodels import load_model_folder

    return load_model_folder(folder)[0].eval()


@torch.no_grad()
def resid_at(model, imgs: torch.Tensor, layer: int, mlp: bool = False) -> torch.Tensor:
    """Independent read of the residual stream after block `layer` (or its MLP output): re-runs
    open_clip's ViT by hand up to that block, [B, T, d]."""
    v = model.visual
    x = v.conv1(imgs).flatten(2).transpose(1, 2)
    cls = v.class_embedding.expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + v.positional_embedding
    x = v.ln_pre(x)
    for i, blk in enumerate(v.transformer.resblocks):
        if i == layer and mlp:
            h = x + blk.ls_1(blk.attention(blk.ln_1(x)))
            return blk.mlp(blk.ln_2(h))
        x = blk(x)
        if i == layer:
            return x
    raise AssertionError("layer out of range")


def base_spec(folder: Path) -> str:
    return f"openclip:local-dir:{folder}"


@torch.no_grad()
def site_input(model, imgs: torch.Tensor, hook: str) -> torch.Tensor:
    """Independent SAE input for a hook string: image_embed -> [B, d]; resid_post:L:tokens ->
    [B, d] (cls) or [B, T', d]."""
    if hook == "image_embed":
        return model.encode_image(imgs)
    site, layer, tokens = hook.split(":")
    x = resid_at(model, imgs, int(layer), mlp=site == "mlp_out")
    return {"cls": x[:, 0], "patch": x[:, 1:], "all": x}[tokens]


def pool(z: torch.Tensor) -> torch.Tensor:
    return z.amax(dim=1) if z.ndim == 3 else z


def write_json(path: Path, obj) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
