"""TextSpan (Gandelsman et al., ICLR 2024, Algorithm 1): a text basis for one head's outputs.

Given one head's direct contributions C [K images, d] and a pool of unit text embeddings
R [M, d], greedily pick m texts whose directions explain the most variance of C:

1. Restrict the texts to the head's output space: project every text onto the span of the top
   `rank` right singular vectors of C (uncentred, as the authors do). The head's value path
   writes through a rank-(head dim) map (the value bias included: attention weights sum to 1),
   but the linearised ln_post (core.py) adds three more directions, each a fixed vector times a
   per-image scalar: the head's share of the out_proj bias (scaled by 1/σ(x)), of the LN mean
   (μ(x)/σ(x)) and of the LN bias (scaled by the embedding's normalisation factor; a constant
   vector without it, still a direction of the uncentred C). So C spans up to head dim + 3
   dimensions. Measured on shapes:dense (200 eval images, head dim 32): every one of its 16
   heads has numerical rank 35, and the three directions beyond the top 32 hold at most 1e-5
   of C's energy (median 2e-6) and of its centred variance. rank = head dim (the default, as
   the authors' 80 = ViT-H head dim) therefore keeps the head's space up to that remainder;
   `rank` = head dim + 3 keeps all of it.
2. Centre C; the reconstruction starts at the mean.
3. Repeat m times: score every remaining text by the standard deviation over images of
   C @ r_j (texts are *not* renormalised, so a text that lost most of its norm to earlier picks
   scores low); take the best r*; add the projection of C onto r* to the reconstruction,
   remove it from C, and remove r*'s direction from every remaining text (Gram-Schmidt).

Because each picked direction is orthogonal to the earlier ones, the fitted basis can also
reconstruct new images (`TextSpanResult.reconstruct`), which lets us fit on one split and score
on another. `explained[i]` is the share of the centred variance of C removed by pick i, so
sum(explained) is the paper's V(T) divided by the head's total variance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from interpbench.decomposition.ablation import ComponentMeans, accuracy
from interpbench.decomposition.core import Decomposition
from interpbench.errors import ShapeMismatchError

Head = tuple[int, int]


@dataclass
class TextSpanResult:
    texts: list[str]  # picked texts, in order
    indices: list[int]  # their rows in the pool
    explained: list[float]  # share of the head's centred variance each pick explains
    mean: torch.Tensor  # [d] mean head output on the fit set
    basis: torch.Tensor  # [m, d] picked text directions after Gram-Schmidt (mutually orthogonal)
    total_variance: float  # mean squared norm of the centred head outputs on the fit set

    @property
    def variance_explained(self) -> float:
        return float(sum(self.explained))

    def reconstruct(self, outputs: torch.Tensor) -> torch.Tensor:
        """Project head outputs [B, d] onto mean + span(basis): the head replaced by its texts."""
        centred = outputs.double() - self.mean.double()
        b = self.basis.double()
        if b.shape[0] == 0:
            return self.mean.expand_as(outputs).to(outputs.dtype).clone()
        coef = (centred @ b.T) / (b * b).sum(-1)
        return (self.mean.double() + coef @ b).to(outputs.dtype)

    def to_dict(self) -> dict:
        return {"texts": self.texts, "explained": [round(e, 6) for e in self.explained],
                "variance_explained": round(self.variance_explained, 6)}


def text_span(outputs: torch.Tensor, text_embeddings: torch.Tensor, texts: Sequence[str], n_texts: int,
              rank: int | None = None) -> TextSpanResult:
    """Greedy TextSpan over one head's outputs [K, d] and a pool of text embeddings [M, d]."""
    if outputs.dim() != 2 or text_embeddings.dim() != 2 or outputs.shape[1] != text_embeddings.shape[1]:
        raise ShapeMismatchError(f"TextSpan needs head outputs [K, d] and texts [M, d] of the same d; got "
                                 f"{tuple(outputs.shape)} and {tuple(text_embeddings.shape)}")
    if len(texts) != text_embeddings.shape[0]:
        raise ShapeMismatchError(f"{len(texts)} texts but {text_embeddings.shape[0]} text embeddings")
    data = outputs.double()
    pool = text_embeddings.double()
    if rank is not None and rank < data.shape[1]:
        _, _, vh = torch.linalg.svd(data, full_matrices=False)
        top = vh[:rank]  # [rank, d], orthonormal rows
        pool = pool @ top.T @ top
    mean = data.mean(0)
    data = data - mean
    total = (data * data).sum(-1).mean().item()
    picked, explained, basis = [], [], []
    for _ in range(min(n_texts, pool.shape[0])):
        scores = data @ pool.T  # [K, M]
        spread = scores.std(0, unbiased=False)
        j = int(spread.argmax())
        r = pool[j].clone()
        norm2 = float(r @ r)
        if norm2 <= 1e-20 or spread[j] <= 1e-12:
            break  # the pool has no direction left that varies over these images
        part = torch.outer(data @ r / norm2, r)
        explained.append(float((part * part).sum(-1).mean()) / total if total > 0 else 0.0)
        data = data - part
        pool = pool - torch.outer(pool @ r / norm2, r)
        picked.append(j)
        basis.append(r)
    return TextSpanResult(
        texts=[texts[j] for j in picked], indices=picked, explained=explained, mean=mean.float(),
        basis=torch.stack(basis).float() if basis else torch.zeros(0, data.shape[1]), total_variance=total,
    )


def text_span_heads(dec: Decomposition, text_embeddings: torch.Tensor, texts: Sequence[str], n_texts: int,
                    layers: Iterable[int], rank: int | None = None) -> dict[Head, TextSpanResult]:
    """TextSpan for every head of the given layers, on the images of `dec` (the fit set)."""
    return {(layer, head): text_span(dec.heads[:, layer, head], text_embeddings, texts, n_texts, rank)
            for layer in layers for head in range(dec.n_heads)}


def duplicate_texts(results: dict[Head, TextSpanResult]) -> dict[str, list[Head]]:
    """Texts picked by more than one head (the authors note this happens; their issue #9)."""
    seen: dict[str, list[Head]] = {}
    for head, res in results.items():
        for text in res.texts:
            seen.setdefault(text, []).append(head)
    return {t: hs for t, hs in seen.items() if len(hs) > 1}


def reconstruction_accuracy(dec: Decomposition, results: dict[Head, TextSpanResult], means: ComponentMeans,
                            classifier: torch.Tensor, labels) -> dict[str, float]:
    """Zero-shot accuracy when each fitted head is replaced by its TextSpan reconstruction.

    As in the authors' `main`: heads of layers before the first fitted layer are mean-ablated,
    MLP and embedding terms are kept. Also reports the same setting with the fitted heads left
    intact ("early_layers_ablated"), so the cost of the text bottleneck alone is visible, and the
    unmodified model ("base"). `means` should come from a split other than the scored one.
    """
    fitted = sorted({layer for layer, _ in results})
    first = fitted[0] if fitted else dec.n_layers
    heads = dec.heads.clone()
    early = list(range(first))
    if early:
        heads[:, early] = means.heads[early].unsqueeze(0).expand_as(heads[:, early])
    intact = dec.embed + dec.mlps.sum(1) + heads.sum((1, 2))
    for (layer, head), res in results.items():
        heads[:, layer, head] = res.reconstruct(dec.heads[:, layer, head])
    recon = dec.embed + dec.mlps.sum(1) + heads.sum((1, 2))
    return {"base": accuracy(dec.total(), classifier, labels),
            "early_layers_ablated": accuracy(intact, classifier, labels),
            "textspan": accuracy(recon, classifier, labels)}
