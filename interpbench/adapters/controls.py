"""Random controls of a model, loaded like any other representation (`control:KIND[?seed=N]@SPEC`).

A metric means something only if it separates a trained representation from a random one
of the same shape. Each control keeps everything about its target except what training
learned, and is seeded (the seed is part of the spec and of every results file):

    random-codes    same width, same per-input activation values (so the same L0 at every
                    threshold and the same norms) as the target, but placed on random
                    features: input i's largest value goes to the feature j with the largest
                    |w_j . e_i|, its second largest to the second, ... where the w_j are
                    seeded Gaussian directions and e_i the target's embedding. Images and
                    texts alike, so multimodality and labels run; zero-shot runs on the
                    target's embedding (for an SAE, its base CLIP's), so it equals the base's.
    random-decoder  an untrained SAE of the target SAE's shape on the same base: the same
                    settings (activation, k, hook, input normalisation and its statistics,
                    JumpReLU thresholds), a seeded random unit-norm decoder, the encoder tied
                    to it (its transpose) and zero biases: the trainer's own initialisation
                    (training/sae.py), so reconstruction and every metric are an untrained SAE's.
    untrained       the target CLIP's architecture (the same config, and for a natively sparse
                    CLIP the same sparse head) with open_clip's random initialisation under
                    the seed; the target's tokenizer and image transform.

Results mark a control in `record["model"]["control"] = {"of", "kind", "seed"}`.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from interpbench.adapters.base import RepresentationMeta
from interpbench.errors import BadSpecError
from interpbench.specs import ModelSpec


def control_spec(kind: str, seed: int, target_spec: str) -> str:
    """The canonical spec results record (aliases resolved; the seed shown unless it is 0)."""
    return f"control:{kind}" + (f"?seed={seed}" if seed else "") + f"@{target_spec}"


def random_directions(n_features: int, dim: int, seed: int) -> torch.Tensor:
    """[n_features, dim] seeded standard Gaussian directions (the random-codes projection)."""
    return torch.randn(n_features, dim, generator=torch.Generator().manual_seed(seed))


def random_codes(embedding: torch.Tensor, features: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Row i: the values of features[i], sorted, placed on the features in order of |directions @ e_i|.

    Each row keeps its multiset of values (so its L0 at any threshold and its norms); only
    which features carry them is random."""
    score = (embedding.float() @ directions.t().to(embedding.device, torch.float32)).abs()
    values = features.float().sort(dim=1, descending=True).values
    return torch.zeros_like(values).scatter_(1, score.argsort(dim=1, descending=True), values)


def _image_features(target, images, emb):
    # Features from the embedding already computed where the target can (dense sign split,
    # sparse CLIP identity): one tower forward per batch instead of two, as in extraction.
    from_emb = getattr(target, "features_from_embedding", None) or getattr(target, "_features", None)
    return from_emb(emb) if from_emb is not None else target.encode_image_features(images)


class RandomCodesRepresentation:
    """The random-codes control: the target's activation values on random features."""

    def __init__(self, target, seed: int, meta: RepresentationMeta):
        if target.meta.embed_dim is None:
            raise BadSpecError(f"control:random-codes needs a model with a dense embedding; {target.meta.spec} has none")
        self.target, self.meta, self.transform = target, meta, target.transform
        self.directions = random_directions(target.n_features, target.meta.embed_dim, seed)

    @property
    def n_features(self) -> int:
        return self.meta.n_features

    def to(self, device):
        self.target.to(device)
        self.directions = self.directions.to(device)
        return self

    def encode_image_embedding(self, images):
        return self.target.encode_image_embedding(images)

    def encode_text_embedding(self, texts):
        return self.target.encode_text_embedding(texts)

    @torch.inference_mode()
    def encode_image_features(self, images):
        emb = self.target.encode_image_embedding(images)
        return random_codes(emb, _image_features(self.target, images, emb), self.directions)

    @torch.inference_mode()
    def encode_text_features(self, texts):
        feats = self.target.encode_text_features(texts)  # raises where the target has no text side
        return random_codes(self.target.encode_text_embedding(texts), feats, self.directions)

    def reconstruct(self, features):
        return None


def _random_codes_control(target, target_ms: ModelSpec, seed: int):
    spec = control_spec("random-codes", seed, target.meta.spec)
    meta = RepresentationMeta(
        name=spec, spec=spec, kind="control", source=f"random codes (seed {seed}) of {target.meta.spec}",
        base_model=target.meta.base_model,
        sparsity=f"control: {target.meta.spec}'s per-input activation values on random features "
                 f"(ranked by |Gaussian projection| of its embedding, seed {seed})",
        n_features=target.n_features, embed_dim=target.meta.embed_dim, nonnegative=target.meta.nonnegative,
        has_text=target.meta.has_text, fingerprint=f"control:random-codes:{seed}:{target.meta.fingerprint}",
        extra={"target_kind": target.meta.kind})
    return RandomCodesRepresentation(target, seed, meta)


def random_decoder_sae(sae, seed: int):
    """An untrained SAE of `sae`'s shape and settings (see the module docstring)."""
    from interpbench.adapters.sae_canonical import CanonicalSAE, random_unit_rows

    W_dec = random_unit_rows(sae.n_latents, sae.d_in, seed)
    out = CanonicalSAE(W_dec.t().clone(), torch.zeros(sae.n_latents), W_dec, torch.zeros(sae.d_in), sae.settings,
                       input_mean=sae.input_mean, input_scale=sae.input_scale, threshold=sae.threshold)
    out.provenance = {"control": "random-decoder", "seed": seed, "of": sae.provenance.get("fingerprint", "")}
    return out


def _random_decoder_control(target, target_ms: ModelSpec, seed: int):
    from interpbench.adapters.sae import SAERepresentation, sae_meta

    spec = control_spec("random-decoder", seed, target.meta.spec)
    sae = random_decoder_sae(target.sae, seed)
    meta = sae_meta(spec, target.base, sae, f"random decoder (seed {seed}) of {target.meta.spec}",
                    f"control:random-decoder:{seed}:{target.meta.fingerprint}", display=spec)
    meta.base_model = target.meta.base_model
    return SAERepresentation(target.base, sae, meta)


def _untrained_model(target_ms: ModelSpec, seed: int):
    """A randomly initialised open_clip model of the target spec's architecture (no weights read)."""
    import open_clip

    from interpbench.clipmodels import register_configs

    register_configs()
    if target_ms.scheme == "shapes":
        from interpbench.adapters.openclip_dense import reference_folder

        name = f"local-dir:{reference_folder(target_ms.name)}"
    elif target_ms.scheme == "sparseclip" or target_ms.name == "local-dir":
        name = f"local-dir:{target_ms.path}"
    elif target_ms.name == "hf-hub":
        raise BadSpecError(f"control:untrained of a hub model ({target_ms.raw}) is not supported: download the "
                           "folder and control openclip:local-dir:DIR, or name the architecture (openclip:ARCH/TAG)")
    else:
        name = target_ms.name  # openclip:ARCH/TAG, ARCH/random, ARCH@FILE: the architecture itself
    with torch.random.fork_rng(devices=[]):  # open_clip initialises from torch's global generator
        torch.manual_seed(seed)
        return open_clip.create_model(name, pretrained=None, load_weights=False) if name.startswith("local-dir:") \
            else open_clip.create_model(name, pretrained=None)


def _untrained_control(target, target_ms: ModelSpec, seed: int):
    from interpbench.adapters.openclip_dense import ClipRepresentation
    from interpbench.clipmodels import SparseCLIP

    model = _untrained_model(target_ms, seed)
    if isinstance(target.model, SparseCLIP):
        model = SparseCLIP(model, target.model.cfg)
    want = {k: tuple(v.shape) for k, v in target.model.state_dict().items()}
    if {k: tuple(v.shape) for k, v in model.state_dict().items()} != want:  # config and weights disagree
        raise BadSpecError(f"control:untrained of {target.meta.spec}: the architecture built from its config does "
                           "not have the trained model's parameter shapes")
    spec = control_spec("untrained", seed, target.meta.spec)
    arch = target.meta.extra.get("architecture", target.meta.spec)
    meta = replace(target.meta, name=spec, spec=spec, source=f"random init (seed {seed}) of {arch}", base_model=spec,
                   fingerprint=f"control:untrained:{seed}:{target.meta.fingerprint}",
                   extra={**target.meta.extra, "parameters": sum(p.numel() for p in model.parameters())})
    return ClipRepresentation(model, target.tokenizer, target.transform, meta, split_signs=target.split_signs)


_BUILDERS = {"random-codes": _random_codes_control, "random-decoder": _random_decoder_control,
             "untrained": _untrained_control}


def load_control(ms: ModelSpec, offline: bool = False):
    """The control `ms` (a parsed control: spec) of its target, which is loaded first."""
    from interpbench.adapters import load_representation

    target = load_representation(ms.base, offline=offline)
    seed = int(ms.options.get("seed", 0))
    rep = _BUILDERS[ms.name](target, ms.base, seed)
    rep.meta.control = {"of": target.meta.spec, "kind": ms.name, "seed": seed}
    return rep
