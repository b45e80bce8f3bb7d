"""Adapters: every kind of representation behind one protocol, chosen by a model spec.

`load_representation(spec)` is the only entry point the rest of the package uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interpbench.specs import ModelSpec, parse_spec

if TYPE_CHECKING:
    from interpbench.adapters.base import Representation

ADAPTERS = {
    "shapes": "shipped reference models trained on the Shapes world",
    "openclip": "dense open_clip CLIP (positive and negative parts as features)",
    "sparseclip": "natively sparse CLIP (ReLU after a widened projection)",
    "sae": "sparse autoencoder on a base CLIP, in a public checkpoint format",
    "control": "a seeded random control of another spec (random codes, random-decoder SAE, untrained CLIP)",
}


def _load_sae(spec: ModelSpec, offline: bool, display: str | None):
    from interpbench.adapters.sae import SAERepresentation, sae_meta
    from interpbench.adapters.sae_formats import load_sae

    base = load_representation(spec.base.raw, offline=offline)
    sae = load_sae(spec.name, spec.path, base_model=spec.base.raw, offline=offline, **spec.options)
    fp = sae.provenance["fingerprint"]  # files read + meaningful options (load_sae computes it)
    return SAERepresentation(base, sae, sae_meta(spec.raw, base, sae, spec.path, fp, display))


def _load_reference(ms: ModelSpec, offline: bool) -> Representation:
    from interpbench.adapters.openclip_dense import load_dense, load_sparse, reference_folder
    from interpbench.specs import REFERENCE_SAES

    folder = reference_folder(ms.name)
    if ms.name in ("dense", "spurious"):
        rep = load_dense(parse_spec(f"openclip:local-dir:{folder}"), display=ms.raw)
    elif ms.name == "sparse":
        rep = load_sparse(folder, ms.raw, display=ms.raw)
    else:
        rep = _load_sae(parse_spec(f"sae:interpbench:{folder}@shapes:dense"), offline, display=ms.raw)
    # Results and leaderboards name the model by its spec, not by this machine's install path
    # (the fingerprint in every cache key still identifies the weights).
    rep.meta.spec = ms.raw
    rep.meta.base_model = "shapes:dense" if ms.name == "dense" or ms.name in REFERENCE_SAES else ms.raw
    rep.meta.source = f"interpbench/reference_models/{ms.name}"
    return rep


def load_representation(spec: str | ModelSpec, offline: bool = False) -> Representation:
    from interpbench.adapters.openclip_dense import load_dense, load_sparse

    ms = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if ms.scheme == "shapes":
        return _load_reference(ms, offline)
    if ms.scheme == "openclip":
        return load_dense(ms, offline=offline)
    if ms.scheme == "sparseclip":
        return load_sparse(Path(ms.path), ms.raw)
    if ms.scheme == "control":
        from interpbench.adapters.controls import load_control

        return load_control(ms, offline)
    return _load_sae(ms, offline, display=None)


def __getattr__(name: str):
    """Representation types on first use: listing ADAPTERS (`interpbench models`) needs no torch."""
    if name in ("Representation", "RepresentationMeta"):
        from interpbench.adapters import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ADAPTERS", "Representation", "RepresentationMeta", "load_representation"]
