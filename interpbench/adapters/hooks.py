"""Reading and rewriting activations inside an open_clip vision tower.

Hook sites (see sae_canonical.HookSite):
    image_embed / text_embed   the final CLIP embedding (after the projection, not normalised)
    resid_post:L               output of `visual.transformer.resblocks[L]` (the residual stream)
    mlp_out:L                  output of `visual.transformer.resblocks[L].mlp`
Tokens: `cls` = token 0 (open_clip ViTs always prepend one class token), `patch` = tokens 1..,
`all` = every token. Per-token reads come back as [B, T, d]; cls reads as [B, d].

We use plain forward hooks on open_clip's own modules rather than re-implementing the ViT,
so whatever open_clip computes is what the SAE sees.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from interpbench.adapters.sae_canonical import LAYER_SITES, HookSite
from interpbench.errors import ShapeMismatchError


def _visual(model):
    return model.clip.visual if hasattr(model, "clip") else model.visual


def _blocks(model):
    visual = _visual(model)
    tr = getattr(visual, "transformer", None)
    if tr is None or not hasattr(tr, "resblocks"):
        raise ShapeMismatchError(f"the base model's image tower ({type(visual).__name__}) is not an open_clip "
                                 "VisionTransformer, so residual-stream hooks cannot be placed; use an SAE on "
                                 "image_embed or a ViT base model")
    return tr


def n_blocks(model) -> int:
    """Number of residual blocks in the base model's vision transformer."""
    return len(_blocks(model).resblocks)


def site_width(model, hook: HookSite) -> int:
    """Width of the activations at `hook` in `model`; checks the block index exists."""
    if hook.site not in LAYER_SITES:
        clip = model.clip if hasattr(model, "clip") else model
        proj = getattr(clip, "text_projection", None)
        if hook.site == "text_embed" and proj is not None:
            return int(proj.shape[1])
        return int(_visual(model).output_dim)
    tr = _blocks(model)
    n = n_blocks(model)
    if hook.layer >= n:
        raise ShapeMismatchError(f"hook {hook.site}:{hook.layer} is past the base model's last block: its vision "
                                 f"transformer has {n} blocks (0..{n - 1}); pick a base model with more layers "
                                 "or override the hook with ?layer=N")
    return int(tr.width)


def check_width(model, hook: HookSite, sae) -> None:
    """Fail before any compute when the SAE's input width differs from the base model's at the hook."""
    width = site_width(model, hook)
    if width != sae.d_in:
        where = hook.site if hook.layer is None else f"{hook.site}:{hook.layer}"
        raise ShapeMismatchError(
            f"the SAE reads vectors of width {sae.d_in}, but the base model gives width {width} at {where}. "
            f"The SAE was trained on a different CLIP (file says base model {sae.settings.base_model or 'unknown'!r}); "
            "put the matching base model after '@' in the spec, or fix the hook (?hook=...)")


def _module(model, hook: HookSite):
    block = _blocks(model).resblocks[hook.layer]
    return block.mlp if hook.site == "mlp_out" else block


def _to_btd(out, batch_first: bool):
    return out if batch_first else out.transpose(0, 1)


def select_tokens(x: torch.Tensor, tokens: str) -> torch.Tensor:
    """[B, T, d] -> [B, d] for cls, [B, T-1, d] for patch, unchanged for all."""
    if tokens == "cls":
        return x[:, 0]
    if tokens == "patch":
        return x[:, 1:]
    return x


@contextmanager
def _forward_hook(module, fn):
    handle = module.register_forward_hook(fn)
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def activations_at(model, images: torch.Tensor, hook: HookSite) -> torch.Tensor:
    """Activations at a residual-stream / MLP hook for a batch of transformed images."""
    batch_first = getattr(_blocks(model), "batch_first", True)
    seen = {}

    def grab(_m, _inp, out):
        seen["x"] = _to_btd(out, batch_first).float()

    with _forward_hook(_module(model, hook), grab):
        _visual(model)(images)
    return select_tokens(seen["x"], hook.tokens)


@torch.inference_mode()
def encode_image_with_replacement(model, images: torch.Tensor, hook: HookSite, fn) -> torch.Tensor:
    """The image embedding with the selected tokens at `hook` replaced by fn(tokens) (e.g. an SAE's
    reconstruction); the rest of the forward pass is open_clip's own."""
    batch_first = getattr(_blocks(model), "batch_first", True)

    def swap(_m, _inp, out):
        x = _to_btd(out, batch_first).clone()
        if hook.tokens == "cls":
            x[:, 0] = fn(x[:, 0].float()).to(x.dtype)
        elif hook.tokens == "patch":
            x[:, 1:] = fn(x[:, 1:].float()).to(x.dtype)
        else:
            x = fn(x.float()).to(out.dtype)
        return _to_btd(x, batch_first)

    with _forward_hook(_module(model, hook), swap):
        return model.encode_image(images).float()
