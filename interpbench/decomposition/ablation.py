"""Zero-shot scoring of (modified) decomposed embeddings, and mean-ablation.

Mean-ablation replaces a component's per-image contribution by its mean contribution. The
authors' code takes the means from the very set it scores (their issue #4); here the means
always come from a separate `ComponentMeans`, which callers compute on a different split, so
the ablated component carries no information about the scored images at all. The pipeline
takes them from the same population as the scored images (one-object images for object
attributes; pipeline._population_means), so ablation does not also shift the embedding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from clip_benchmark.metrics.zeroshot_classification import zero_shot_classifier

from interpbench.decomposition.core import Decomposition
from interpbench.errors import ShapeMismatchError

Head = tuple[int, int]


def text_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model whose `encode_text` matches the decomposed (pre-ReLU for SparseCLIP) image side."""
    return getattr(model, "clip", model)


def class_directions(model, tokenizer, classnames: Sequence[str], templates) -> torch.Tensor:
    """Zero-shot class vectors [d, C] via clip-benchmark (mean of unit prompt embeddings, renormalised)."""
    with torch.inference_mode():
        w = zero_shot_classifier(text_model(model).eval(), tokenizer, list(classnames), templates,
                                 "cpu", amp=False)
    return w.float().clone()


def encode_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Unit-norm text embeddings [M, d] (the TextSpan pool)."""
    m = text_model(model).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            z = m.encode_text(tokenizer(list(texts[i:i + batch_size])))
            out.append(torch.nn.functional.normalize(z.float(), dim=-1))
    return torch.cat(out).clone()


def accuracy(embeddings: torch.Tensor, classifier: torch.Tensor, labels) -> float:
    """Top-1 accuracy of argmax(embeddings @ classifier) against integer labels."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if embeddings.shape[0] != labels.shape[0]:
        raise ShapeMismatchError(f"{embeddings.shape[0]} embeddings but {labels.shape[0]} labels")
    if embeddings.shape[0] == 0:
        return float("nan")
    return (embeddings @ classifier).argmax(-1).eq(labels).float().mean().item()


def group_accuracy(embeddings, classifier, labels, groups) -> dict[str, float | dict]:
    """Overall accuracy, accuracy per group, and the worst group (groups with >= 1 image)."""
    pred = (embeddings @ classifier).argmax(-1).numpy()
    labels, groups = np.asarray(labels), np.asarray(groups)
    correct = pred == labels
    per_group = {int(g): float(correct[groups == g].mean()) for g in np.unique(groups)}
    return {"average": float(correct.mean()), "worst_group": min(per_group.values()),
            "worst_group_id": min(per_group, key=per_group.get), "per_group": per_group,
            "group_sizes": {int(g): int((groups == g).sum()) for g in np.unique(groups)}}


@dataclass
class ComponentMeans:
    """Mean contribution of every component over a reference set of images."""

    embed: torch.Tensor  # [d]
    mlps: torch.Tensor  # [L, d]
    heads: torch.Tensor  # [L, H, d]
    normalized: bool
    n_images: int

    @classmethod
    def of(cls, dec: Decomposition) -> ComponentMeans:
        return cls(dec.embed.mean(0), dec.mlps.mean(0), dec.heads.mean(0), dec.is_normalized, len(dec))


def ablate(dec: Decomposition, means: ComponentMeans, *, heads: Iterable[Head] = (),
           layers: Iterable[int] = (), mlps: Iterable[int] = (), embed: bool = False) -> torch.Tensor:
    """Embeddings [B, d] with the chosen components replaced by their means.

    heads: (layer, head) pairs; layers: whole attention layers (all heads); mlps: MLP layers;
    embed: the embedding term.
    """
    if means.normalized != dec.is_normalized:
        raise ShapeMismatchError(
            "means and decomposition differ in normalisation: compute both with the same normalize= setting")
    if means.heads.shape != dec.heads.shape[1:]:
        raise ShapeMismatchError(f"means are for heads {tuple(means.heads.shape)}, decomposition has "
                                 f"{tuple(dec.heads.shape[1:])}: they come from different models")
    L, H = dec.n_layers, dec.n_heads
    head_mask = torch.zeros(L, H, dtype=torch.bool)
    for layer, head in heads:
        _check_index(layer, L, "layer"), _check_index(head, H, "head")
        head_mask[layer, head] = True
    for layer in layers:
        head_mask[_check_index(layer, L, "layer")] = True
    mlp_mask = torch.zeros(L, dtype=torch.bool)
    for layer in mlps:
        mlp_mask[_check_index(layer, L, "layer")] = True
    hm, mm = head_mask.view(1, L, H, 1), mlp_mask.view(1, L, 1)
    out = dec.embed if not embed else means.embed.expand_as(dec.embed)
    out = out + torch.where(mm, means.mlps.unsqueeze(0), dec.mlps).sum(1)
    return out + torch.where(hm, means.heads.unsqueeze(0), dec.heads).sum((1, 2))


def _check_index(i: int, n: int, what: str) -> int:
    if not -n <= i < n:
        raise IndexError(f"{what} index {i} out of range for a model with {n} {what}s")
    return i % n


def ablation_sweep(dec: Decomposition, means: ComponentMeans, classifier, labels) -> dict[str, float]:
    """The authors' ablation table, with means from another split.

    base; all MLPs (+ embedding term) mean-ablated; each attention layer alone; attention layers
    0..k mean-ablated cumulatively (MLPs intact, as in the authors' sweep).
    """
    L = dec.n_layers
    out = {"base": accuracy(dec.total(), classifier, labels),
           "mlps_and_embed": accuracy(ablate(dec, means, mlps=range(L), embed=True), classifier, labels)}
    for k in range(L):
        out[f"attn_layer_{k}"] = accuracy(ablate(dec, means, layers=[k]), classifier, labels)
    for k in range(L):
        out[f"attn_layers_0_to_{k}"] = accuracy(ablate(dec, means, layers=range(k + 1)), classifier, labels)
    return out
