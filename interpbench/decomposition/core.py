"""Direct-effect decomposition of an open_clip ViT image embedding into layers, heads and tokens.

Following Gandelsman, Efros & Steinhardt (ICLR 2024), the CLS output of the vision tower is a
sum of residual-stream writes: the embedding term (class/position/patch embeddings through
`ln_pre`), one term per MLP, and one term per (layer, head, image token) for attention. With
`ln_post`'s per-image mean and scale held fixed, `ln_post` is affine, so every term can be
mapped into the joint image-text space on its own and the mapped terms add up to
`model.encode_image(images)` exactly (up to float rounding).

How the affine part of the frozen LayerNorm is shared out (the authors' convention): the 2L+1
layer-level terms (embedding, L MLPs, L attention layers) each carry 1/(2L+1) of the mean
and of the LN bias; inside an attention layer that share is split evenly over its H heads
(and over the N tokens x H heads cells in the per-token view). The attention `out_proj` bias
is split the same way (bias/H per head, bias/(N*H) per cell); the value bias is already inside
each token's value and so travels with the attention weight.

open_clip calls `nn.MultiheadAttention` with `need_weights=False`, so per-head outputs cannot be
read from the module; we recompute the attention from `in_proj_*` / `out_proj` weights and run
the residual stream ourselves. The exactness tests compare the sum with `encode_image`, which
also checks this re-implementation against PyTorch's own attention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from open_clip.transformer import LayerScale, ResidualAttentionBlock, VisionTransformer

from interpbench.errors import ShapeMismatchError, UnknownFormatError


def vision_tower(model: torch.nn.Module) -> VisionTransformer:
    """The open_clip VisionTransformer inside a CLIP, a SparseCLIP wrapper, or the tower itself.

    For a SparseCLIP the decomposed quantity is the embedding *before* its ReLU: the ReLU is
    not linear, so there is no additive decomposition of the sparse output.
    """
    inner = getattr(model, "clip", model)  # SparseCLIP keeps the open_clip model in .clip
    visual = inner if isinstance(inner, VisionTransformer) else getattr(inner, "visual", None)
    if not isinstance(visual, VisionTransformer):
        raise UnknownFormatError(
            f"decomposition needs an open_clip ViT (model.visual must be open_clip.transformer."
            f"VisionTransformer), got {type(visual).__name__}; ResNet and timm towers are not supported")
    _check_supported(visual)
    return visual


def _check_supported(visual: VisionTransformer) -> None:
    def bad(what: str):
        raise UnknownFormatError(f"decomposition supports the standard open_clip ViT only: {what}. "
                                 "Use a plain CLIP ViT config (no attentional pool, tok pooling, "
                                 "ResidualAttentionBlock with nn.MultiheadAttention)")

    if visual.attn_pool is not None:
        bad("model.visual.attn_pool is set (CoCa-style attentional pooling)")
    if visual.pool_type != "tok":
        bad(f"model.visual.pool_type is {visual.pool_type!r}, expected 'tok' (CLS token)")
    if not isinstance(visual.ln_post, torch.nn.LayerNorm):
        bad(f"model.visual.ln_post is {type(visual.ln_post).__name__}, expected a LayerNorm")
    for i, block in enumerate(visual.transformer.resblocks):
        if not isinstance(block, ResidualAttentionBlock) or hasattr(block, "ln_1_kv"):
            bad(f"resblocks[{i}] is {type(block).__name__} (custom or cross-attention block)")
        attn = block.attn
        if not isinstance(attn, torch.nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
            bad(f"resblocks[{i}].attn is not a packed-qkv nn.MultiheadAttention")
        if attn.bias_k is not None or attn.add_zero_attn:
            bad(f"resblocks[{i}].attn uses bias_k/add_zero_attn")
        for name in ("ls_1", "ls_2"):
            if not isinstance(getattr(block, name), (LayerScale, torch.nn.Identity)):
                bad(f"resblocks[{i}].{name} is {type(getattr(block, name)).__name__}")


def _ls_gamma(module: torch.nn.Module) -> torch.Tensor | None:
    return module.gamma if isinstance(module, LayerScale) else None


@dataclass
class _Weights:
    """What the lazy per-token view needs from the model, detached (no reference to the module)."""

    out_w: list[torch.Tensor]  # per layer out_proj.weight [W, W]
    out_b: list[torch.Tensor | None]  # per layer out_proj.bias [W]
    ls1: list[torch.Tensor | None]  # per layer LayerScale gamma of the attention branch
    ln_gamma: torch.Tensor  # ln_post weight [W]
    ln_beta: torch.Tensor  # ln_post bias [W]
    proj: torch.Tensor  # [W, d]; identity when the model has no projection
    n_heads: int

    @classmethod
    def from_visual(cls, visual: VisionTransformer) -> _Weights:
        blocks = list(visual.transformer.resblocks)
        width = visual.ln_post.normalized_shape[0]
        ln = visual.ln_post
        gamma = ln.weight if ln.weight is not None else torch.ones(width)
        beta = ln.bias if ln.bias is not None else torch.zeros(width)
        proj = visual.proj if visual.proj is not None else torch.eye(width)

        def d(t):
            return None if t is None else t.detach().float()

        return cls(
            out_w=[d(b.attn.out_proj.weight) for b in blocks],
            out_b=[d(b.attn.out_proj.bias) for b in blocks],
            ls1=[d(_ls_gamma(b.ls_1)) for b in blocks],
            ln_gamma=d(gamma), ln_beta=d(beta), proj=d(proj), n_heads=blocks[0].attn.num_heads,
        )


def _readout(c: torch.Tensor, share: float, mu: torch.Tensor, sigma: torch.Tensor, w: _Weights,
             scale: torch.Tensor) -> torch.Tensor:
    """Map residual vectors c [B, ..., W] through the frozen ln_post and the projection.

    `share` is this term's fraction of the LN mean and bias; mu, sigma, scale are per image [B].
    """
    view = (-1,) + (1,) * (c.dim() - 1)
    mu, sigma, scale = mu.view(view), sigma.view(view), scale.view(view)
    y = (c - mu * share) * (w.ln_gamma / sigma) + w.ln_beta * share
    return (y @ w.proj) * scale


@dataclass
class Decomposition:
    """Additive terms of a batch of image embeddings, all in the joint space [.., d].

    total() = embed + mlps.sum(1) + heads.sum((1, 2)) reproduces `encode_image` (or the
    L2-normalised embedding after `normalized()`). Per-token terms are recomputed on demand
    from the stored CLS attention weights and values (`head_tokens`), so memory stays
    O(B * L * N * W) instead of O(B * L * N * H * d).
    """

    embed: torch.Tensor  # [B, d]
    mlps: torch.Tensor  # [B, L, d]
    heads: torch.Tensor  # [B, L, H, d], summed over tokens
    tokens: torch.Tensor  # [B, N, d], attention terms summed over layers and heads (token 0 = CLS)
    attention: torch.Tensor  # [B, L, H, N], CLS-query attention weights
    mu: torch.Tensor  # [B], ln_post mean of the final CLS residual
    sigma: torch.Tensor  # [B], sqrt(var + eps) of the same
    scale: torch.Tensor  # [B], factor already applied to every term (1, or 1/||embedding||)
    values: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [B, N, W] values
    weights: _Weights | None = None
    grid: tuple[int, int] = (0, 0)  # patch grid (rows, cols); tokens[:, 1:] are in row-major order
    is_normalized: bool = False

    @property
    def n_layers(self) -> int:
        return self.heads.shape[1]

    @property
    def n_heads(self) -> int:
        return self.heads.shape[2]

    @property
    def n_tokens(self) -> int:
        return self.attention.shape[-1]

    def __len__(self) -> int:
        return self.embed.shape[0]

    def total(self) -> torch.Tensor:
        return self.embed + self.mlps.sum(1) + self.heads.sum((1, 2))

    def head_tokens(self, layer: int) -> torch.Tensor:
        """Per-(token, head) terms of one attention layer, [B, N, H, d]; sums over N to `heads`."""
        if layer < 0:
            layer += self.n_layers
        if layer not in self.values:
            raise KeyError(f"per-token values of layer {layer} were not kept; call decompose(..., "
                           f"keep_tokens=True) or include {layer} in keep_tokens (kept: {sorted(self.values)})")
        w = self.weights
        B, N, W = self.values[layer].shape
        H = self.n_heads
        v = self.values[layer].view(B, N, H, W // H)
        weighted = self.attention[:, layer].permute(0, 2, 1).unsqueeze(-1) * v  # [B, N, H, dh]
        cells = torch.einsum("bnhk,whk->bnhw", weighted, w.out_w[layer].view(W, H, W // H))
        if w.out_b[layer] is not None:
            cells = cells + w.out_b[layer] / (N * H)
        if w.ls1[layer] is not None:
            cells = cells * w.ls1[layer]
        share = 1.0 / ((2 * self.n_layers + 1) * N * H)
        return _readout(cells, share, self.mu, self.sigma, w, self.scale)

    def normalized(self) -> Decomposition:
        """Every term divided by the norm of the embedding, so the terms sum to the unit vector
        (the authors' `finalize`): dot products with unit text embeddings are then cosines."""
        factor = 1.0 / self.total().norm(dim=-1).clamp_min(1e-12)
        col = factor.view(-1, 1)
        return replace(self, embed=self.embed * col, mlps=self.mlps * col.unsqueeze(1),
                       heads=self.heads * col.view(-1, 1, 1, 1), tokens=self.tokens * col.unsqueeze(1),
                       scale=self.scale * factor, is_normalized=True)

    def subset(self, index) -> Decomposition:
        """Rows `index` (a slice, index tensor or boolean mask) of every per-image tensor."""
        return replace(self, embed=self.embed[index], mlps=self.mlps[index], heads=self.heads[index],
                       tokens=self.tokens[index], attention=self.attention[index], mu=self.mu[index],
                       sigma=self.sigma[index], scale=self.scale[index],
                       values={k: v[index] for k, v in self.values.items()})

    @staticmethod
    def cat(parts: Sequence[Decomposition]) -> Decomposition:
        if not parts:
            raise ShapeMismatchError("Decomposition.cat needs at least one part (no images were decomposed)")
        first = parts[0]

        def c(name):
            return torch.cat([getattr(p, name) for p in parts])

        return replace(first, embed=c("embed"), mlps=c("mlps"), heads=c("heads"), tokens=c("tokens"),
                       attention=c("attention"), mu=c("mu"), sigma=c("sigma"), scale=c("scale"),
                       values={k: torch.cat([p.values[k] for p in parts]) for k in first.values})


def _attention(block: ResidualAttentionBlock, x: torch.Tensor):
    """Multi-head self-attention of one block, recomputed from its weights.

    Returns the block's attention output for every query (to continue the residual stream),
    the CLS-query attention weights [B, H, N], the values [B, N, W] and the per-head CLS
    outputs before out_proj [B, H, dh].
    """
    attn = block.attn
    B, N, W = x.shape
    H = attn.num_heads
    dh = W // H
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, vh = (t.view(B, N, H, dh).transpose(1, 2) for t in (q, k, v))  # [B, H, N, dh]
    weights = torch.softmax((q * dh ** -0.5) @ k.transpose(-1, -2), dim=-1)  # [B, H, N, N]
    heads_out = weights @ vh  # [B, H, N, dh]
    out = F.linear(heads_out.transpose(1, 2).reshape(B, N, W), attn.out_proj.weight, attn.out_proj.bias)
    return block.ls_1(out), weights[:, :, 0], v, heads_out[:, :, 0]


def _decompose_batch(visual: VisionTransformer, images: torch.Tensor, w: _Weights,
                     keep: set[int]) -> Decomposition:
    x = visual._embeds(images)
    L = len(visual.transformer.resblocks)
    B, N, W = x.shape
    H = w.n_heads
    dh = W // H
    embed_res = x[:, 0]
    mlp_res, head_res, token_res, attn_w, values = [], [], [], [], {}
    for layer, block in enumerate(visual.transformer.resblocks):
        attn_out, alpha, v, cls_heads = _attention(block, x)
        x = x + attn_out
        mlp_out = block.ls_2(block.mlp(block.ln_2(x)))
        x = x + mlp_out
        # Per-head CLS write: head h's output through its slice of out_proj, plus bias/H.
        per_head = torch.einsum("bhk,whk->bhw", cls_heads, w.out_w[layer].view(W, H, dh))
        # Per-token write summed over heads: sum_h alpha[h, n] v[n, h] W_o[:, h]^T, plus bias/N.
        weighted = (alpha.permute(0, 2, 1).unsqueeze(-1) * v.view(B, N, H, dh)).reshape(B, N, W)
        per_token = weighted @ w.out_w[layer].T
        if w.out_b[layer] is not None:
            per_head, per_token = per_head + w.out_b[layer] / H, per_token + w.out_b[layer] / N
        if w.ls1[layer] is not None:
            per_head, per_token = per_head * w.ls1[layer], per_token * w.ls1[layer]
        mlp_res.append(mlp_out[:, 0])
        head_res.append(per_head)
        token_res.append(per_token)
        attn_w.append(alpha)
        if layer in keep:
            values[layer] = v.contiguous()
    final = x[:, 0]
    mu = final.mean(-1)
    sigma = torch.sqrt(final.var(-1, unbiased=False) + visual.ln_post.eps)
    one = torch.ones(B, dtype=x.dtype, device=x.device)
    n_terms = 2 * L + 1

    def out(c, share):
        return _readout(c, share, mu, sigma, w, one)

    return Decomposition(
        embed=out(embed_res, 1.0 / n_terms),
        mlps=out(torch.stack(mlp_res, 1), 1.0 / n_terms),
        heads=out(torch.stack(head_res, 1), 1.0 / (n_terms * H)),
        tokens=out(torch.stack(token_res, 0).sum(0), L / (n_terms * N)),
        attention=torch.stack(attn_w, 1), mu=mu, sigma=sigma, scale=one, values=values, weights=w,
        grid=tuple(visual.grid_size),
    )


def _batches(images, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ShapeMismatchError(f"images must be a float tensor [B, 3, H, W], got shape {tuple(images.shape)}")
        yield from images.split(batch_size)
    else:
        for batch in images:  # an iterable of tensors, e.g. a DataLoader yielding (images, ...)
            yield batch[0] if isinstance(batch, (tuple, list)) else batch


def decompose(model: torch.nn.Module, images, *, batch_size: int = 64, keep_tokens: bool | Iterable[int] = True,
              normalize: bool = False, device: str | torch.device | None = None) -> Decomposition:
    """Decompose the image embeddings of `images` ([B, 3, H, W] tensor, or an iterable of batches).

    keep_tokens: True keeps per-token values for every layer (needed by `head_tokens`), False
        keeps none, or give the layer indices to keep (e.g. the last four) to bound memory.
    normalize: divide every term by the embedding norm (terms sum to the unit embedding).
    Results are float32 on the CPU.
    """
    visual = vision_tower(model)
    L = len(visual.transformer.resblocks)
    keep = set(range(L)) if keep_tokens is True else set() if keep_tokens is False else \
        {k % L for k in keep_tokens}
    device = torch.device(device) if device is not None else next(visual.parameters()).device
    dtype = next(visual.parameters()).dtype
    was_training = visual.training
    visual.eval()
    parts = []
    try:
        with torch.inference_mode():
            w = _Weights.from_visual(visual)
            for batch in _batches(images, batch_size):
                part = _decompose_batch(visual, batch.to(device=device, dtype=dtype), _to(w, device), keep)
                parts.append(_cpu(part, w))
    finally:
        visual.train(was_training)
    dec = _plain(Decomposition.cat(parts))
    return dec.normalized() if normalize else dec


def _to(w: _Weights, device) -> _Weights:
    def m(t):
        return None if t is None else t.to(device)

    return replace(w, out_w=[m(t) for t in w.out_w], out_b=[m(t) for t in w.out_b], ls1=[m(t) for t in w.ls1],
                   ln_gamma=m(w.ln_gamma), ln_beta=m(w.ln_beta), proj=m(w.proj))


def _plain(d: Decomposition) -> Decomposition:
    """Clone out of inference mode so callers may edit the tensors in place."""
    w = d.weights

    def c(t):
        return None if t is None else t.clone()

    w = replace(w, out_w=[c(t) for t in w.out_w], out_b=[c(t) for t in w.out_b], ls1=[c(t) for t in w.ls1],
                ln_gamma=c(w.ln_gamma), ln_beta=c(w.ln_beta), proj=c(w.proj))
    return replace(d, embed=c(d.embed), mlps=c(d.mlps), heads=c(d.heads), tokens=c(d.tokens),
                   attention=c(d.attention), mu=c(d.mu), sigma=c(d.sigma), scale=c(d.scale),
                   values={k: c(v) for k, v in d.values.items()}, weights=w)


def _cpu(d: Decomposition, w_cpu: _Weights) -> Decomposition:
    def c(t):
        return t.detach().float().cpu()

    return replace(d, embed=c(d.embed), mlps=c(d.mlps), heads=c(d.heads), tokens=c(d.tokens),
                   attention=c(d.attention), mu=c(d.mu), sigma=c(d.sigma), scale=c(d.scale),
                   values={k: c(v) for k, v in d.values.items()}, weights=w_cpu)
