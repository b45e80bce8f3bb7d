"""What every analysis reads: a model's image codes, the map from codes to the zero-shot
embedding space, and the zero-shot classifier of a Shapes attribute.

"Decode" maps (edited) feature codes to the embedding the zero-shot classifier scores:
identity for a natively sparse CLIP (its ReLU output is both code and embedding), the SAE
decoder for SAEs on a final embedding, and f[:d] - f[d:] for the dense baseline, whose
features are [relu(e), relu(-e)].
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from interpbench.errors import BadSpecError

# decode(z, rows): codes [n, F] of images `rows` (indices into Codes; None = all) -> embeddings [n, d]
Decoder = Callable[..., torch.Tensor]


@dataclass
class Codes:
    features: torch.Tensor  # [N, F] non-negative codes
    embedding: torch.Tensor | None  # [N, d] the dense image embedding (base CLIP for SAEs)
    sae_input: torch.Tensor | None  # [N, d] SAE input (per-row normalisations need it to decode)
    attributes: dict[str, list[str | None]]  # Shapes attribute -> value per image (None: several)


def collect_codes(rep, source, cache_dir: Path, device: str = "cpu", batch_size: int = 256) -> Codes:
    """Codes of every image of `source`, through the shared (resumable) activation cache."""
    from interpbench.extraction.extract import extract_images, iter_image_chunks

    cache = extract_images(rep, source, cache_dir, batch_size=batch_size, device=device)
    feats, other = [], {}
    for f, t in iter_image_chunks(cache, rep.n_features):
        feats.append(f)
        for k, v in t.items():
            other.setdefault(k, []).append(v)
    cat = {k: torch.cat(v) for k, v in other.items()}
    return Codes(torch.cat(feats).float(), cat.get("embedding"), cat.get("sae_input"), shapes_attributes(source))


def shapes_attributes(source) -> dict[str, list[str | None]]:
    """Ground-truth attribute values per image; needs a Shapes source."""
    world = getattr(source, "world", None)
    if world is None:
        raise BadSpecError(f"the analyses score against Shapes ground truth; data set {source.name!r} has none "
                           "(use --dataset shapes or shapes-spurious)")
    from interpbench.data.shapes import ATTRIBUTES

    samples = [world[i].attributes for i in range(len(world))]
    return {a: [s[a] for s in samples] for a in ATTRIBUTES}


def decoder_for(rep, codes: Codes | None = None) -> Decoder:
    """codes [N, F] -> the embedding [N, d] the model's zero-shot classifier scores."""
    kind = rep.meta.kind
    if kind == "sparse-clip":
        return lambda z, rows=None: z
    if kind == "dense":
        d = rep.meta.embed_dim
        return lambda z, rows=None: z[:, :d] - z[:, d:]
    if kind == "sae":
        if not rep.meta.has_text:
            raise BadSpecError(f"{rep.meta.name}: steering needs an SAE on a final embedding (its decoder output "
                               "is what zero-shot scores); this SAE reads the vision residual stream")
        x = None if codes is None else codes.sae_input

        def decode(z, rows=None):
            # the input is needed only by per-row input normalisations and skip connections
            xr = None if x is None else (x if rows is None else x[rows])
            with torch.inference_mode():
                return rep.sae.decode(z, xr).float()

        return decode
    raise BadSpecError(f"{rep.meta.name}: unknown representation kind {kind!r}")


def text_side(rep) -> Callable[[list[str]], torch.Tensor]:
    """The text encoder whose outputs live in the zero-shot space (features for sparse CLIP)."""
    return rep.encode_text_features if rep.meta.kind == "sparse-clip" else rep.encode_text_embedding


def zeroshot_classifier(rep, classnames, templates) -> torch.Tensor:
    """[d, C] class vectors via clip-benchmark (mean of unit prompt embeddings, renormalised)."""
    from clip_benchmark.metrics.zeroshot_classification import zero_shot_classifier

    from interpbench.metrics.zeroshot import EncoderView, PassthroughTokenizer

    encode = text_side(rep)
    view = EncoderView(lambda x: x, lambda texts: encode(list(texts)))
    # clip-benchmark draws a tqdm bar per call; these classifiers are tiny, so keep stderr quiet
    with torch.inference_mode(), open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        w = zero_shot_classifier(view, PassthroughTokenizer(), list(classnames), list(templates), "cpu", amp=False)
    return w.float().clone()


def class_text_features(rep, classnames, templates) -> torch.Tensor:
    """[C, F] mean feature activation of each class's prompts (one per template)."""
    with torch.inference_mode():
        return torch.stack([rep.encode_text_features([t.format(c=c) for t in templates]).float().mean(0)
                            for c in classnames])


def predict(embeddings: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """argmax of cosine to the class vectors (argmax is unchanged by the image norm, kept for clarity)."""
    return (torch.nn.functional.normalize(embeddings.float(), dim=-1) @ classifier).argmax(-1)
