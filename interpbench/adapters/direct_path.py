"""Decoder atoms of an SAE mapped into CLIP's joint image-text space along the direct path.

A residual-stream SAE writes its atom a (a direction of width W) into the vision tower's
residual stream after block L (`resid_post:L`) or as part of block L's MLP output
(`mlp_out:L`). Its *direct* effect on the image embedding skips every later block (they
only read the stream; what they do with it is the indirect, non-linear effect) and goes
through the final LayerNorm `ln_post` and the projection `proj`, which is what TextSpan
(Gandelsman et al., ICLR 2024) and `decomposition/core.py` decompose. With ln_post's per-image
mean and scale held fixed (the data set's statistics), ln_post is affine, and the atom's part
of the embedding is

    m(a) = ((a - mean(a)) * gamma / sigma) @ proj

(the centring is linear, so it applies to the atom itself; the mean and bias shares of the
decomposition are constants, the same for every atom, and are not part of the atom's
direction). sigma is a positive scalar of the data, so it scales every m(a) alike and leaves
cosines with words, hence labels and their scores, unchanged: the map uses sigma = 1 unless
given. Exact for the class token of the last block up to the frozen LayerNorm scale.

Approximations, documented in docs/metrics.md#label-routes: for earlier blocks the map ignores
what later blocks do with the atom (attention and MLPs read it); for patch tokens
(`tokens=patch`/`all`) the atom never reaches the class token directly at all, and the map is
the one open_clip would apply to a patch token's output (as dense-CLIP segmentation does).
SAEs on `image_embed` / `text_embed` already decode into the joint space: m(a) = a.
"""

from __future__ import annotations

import torch


def direct_path_matrix(model, sigma: float = 1.0) -> torch.Tensor:
    """[W, d] the linear map a -> m(a) of a residual write a [W] (float32)."""
    visual = model.clip.visual if hasattr(model, "clip") else model.visual  # SparseCLIP keeps its CLIP in .clip
    ln = visual.ln_post
    width = ln.normalized_shape[0]
    gamma = ln.weight.detach().float() if ln.weight is not None else torch.ones(width)
    proj = visual.proj.detach().float() if getattr(visual, "proj", None) is not None else torch.eye(width)
    centre = torch.eye(width) - torch.full((width, width), 1.0 / width)  # a - mean(a), as a matrix
    return (centre * (gamma / float(sigma))[None, :]) @ proj


def decoder_directions(rep, sigma: float = 1.0) -> torch.Tensor:
    """[F, d] each atom of an SAE representation in the joint space (see the module docstring).

    The atoms are the rows of W_dec in the SAE's normalised input space; every input
    normalisation (fixed affine, per-row layer norm, norm rescale) maps a direction to the
    same direction times a positive factor, so W_dec's rows are the raw-space directions."""
    atoms = rep.sae.W_dec.detach().float().cpu()
    if rep.hook.site in ("image_embed", "text_embed"):
        return atoms
    return atoms @ direct_path_matrix(rep.base.model, sigma).to(atoms.device)
