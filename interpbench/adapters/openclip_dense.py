"""Dense CLIP baseline and natively sparse CLIP, both on open_clip.

Dense features: a dense embedding e (unnormalised, as the model outputs it) becomes the
non-negative 2d-vector [relu(e), relu(-e)]: its positive and negative parts. Nothing is
lost (e = f[:d] - f[d:]) and every dimension's sign gets its own feature, so Clarity,
labels and modality scores apply unchanged. A natively sparse CLIP needs no such step:
its ReLU output is the feature vector.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from interpbench.adapters.base import RepresentationMeta
from interpbench.clipmodels import (
    OPENCLIP_CONFIG,
    OPENCLIP_WEIGHTS,
    SparseCLIP,
    load_model_folder,
    register_configs,
)
from interpbench.errors import BadSpecError, MissingFileError, OfflineError
from interpbench.ioutils import sha256_file
from interpbench.specs import REFERENCE_DIR, ModelSpec


class ClipRepresentation:
    """Wraps an open_clip CLIP (or SparseCLIP) behind the Representation protocol."""

    def __init__(self, model, tokenizer, transform, meta: RepresentationMeta, split_signs: bool):
        self.model, self.tokenizer, self.transform, self.meta = model.eval(), tokenizer, transform, meta
        self.split_signs = split_signs
        self.device = torch.device("cpu")

    @property
    def n_features(self) -> int:
        return self.meta.n_features

    def to(self, device):
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def _features(self, e: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(e), torch.relu(-e)], dim=-1) if self.split_signs else e

    @torch.inference_mode()
    def encode_image_embedding(self, images):
        return self.model.encode_image(images.to(self.device)).float()

    @torch.inference_mode()
    def encode_text_embedding(self, texts):
        return self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float()

    def encode_image_features(self, images):
        return self._features(self.encode_image_embedding(images))

    def encode_text_features(self, texts):
        return self._features(self.encode_text_embedding(texts))

    def reconstruct(self, features):
        return None


def _fingerprint_folder(folder: Path) -> str:
    return sha256_file(folder / OPENCLIP_WEIGHTS)[:16]


def _load_openclip(spec: ModelSpec, offline: bool):
    """(model, arch name, source, fingerprint) for an openclip: spec."""
    register_configs()
    if spec.name == "local-dir":
        folder = Path(spec.path).expanduser()
        if not (folder / OPENCLIP_CONFIG).is_file():
            raise MissingFileError(folder / OPENCLIP_CONFIG, "an open_clip model folder (local-dir layout)",
                                   "point the spec at a folder holding open_clip_config.json and weights")
        model, cfg = load_model_folder(folder)
        return model, cfg.get("architecture", folder.name), str(folder), _fingerprint_folder(folder)
    if spec.name == "hf-hub":
        try:
            model = open_clip.create_model(f"hf-hub:{spec.path}")
        except Exception as exc:  # huggingface_hub raises several types when offline
            raise OfflineError(f"open_clip hub model {spec.path!r} could not be loaded ({exc}). It is not in the "
                               "local Hugging Face cache and the network is unavailable; download it once online "
                               "or use a local folder (openclip:local-dir:DIR).") from exc
        return model, spec.path, f"hf-hub:{spec.path}", f"hf-hub:{spec.path}"
    if spec.name not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(spec.name, open_clip.list_models(), n=3)
        raise BadSpecError(f"{spec.raw!r}: unknown open_clip architecture {spec.name!r}"
                           + (f"; did you mean {', '.join(close)}?" if close else "; see open_clip.list_models()"))
    if spec.path is not None:
        path = Path(spec.path).expanduser()
        if not path.is_file():
            raise MissingFileError(path, f"a checkpoint file for {spec.name}", "check the path after '@'")
        try:  # open_clip reads it (safetensors, or torch.load with weights_only=True)
            model = open_clip.create_model(spec.name, pretrained=str(path))
        except Exception as exc:  # truncated, foreign, hostile or mismatched files: say which
            from interpbench.adapters.safe_load import checkpoint_error

            raise checkpoint_error(path, exc) from exc
        return model, spec.name, str(path), sha256_file(path)[:16]
    if spec.tag == "random":
        torch.manual_seed(0)
        return open_clip.create_model(spec.name, pretrained=None), spec.name, "random", f"random:{spec.name}:0"
    tags = open_clip.list_pretrained_tags_by_model(spec.name)
    if spec.tag not in tags:
        raise BadSpecError(f"{spec.raw!r}: {spec.name} has no pretrained tag {spec.tag!r}; known tags: "
                           f"{', '.join(tags) or 'none'} (or 'random', or ARCH@FILE)")
    import os

    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = open_clip.create_model(spec.name, pretrained=spec.tag)
    except Exception as exc:
        raise OfflineError(f"pretrained weights {spec.name}/{spec.tag} are not cached and could not be downloaded "
                           f"({type(exc).__name__}: {str(exc)[:200]}). Run once with network access to cache them, "
                           f"or pass a local file: openclip:{spec.name}@FILE.") from exc
    return model, spec.name, f"{spec.name}/{spec.tag}", f"{spec.name}/{spec.tag}"


def _embed_dim(model) -> int:
    clip = model.clip if isinstance(model, SparseCLIP) else model
    return int(clip.text_projection.shape[1]) if getattr(clip, "text_projection", None) is not None \
        else int(clip.visual.output_dim)


def image_transform(model):
    """open_clip's evaluation preprocessing (resize, crop, normalise) for the model's own image config."""
    clip = model.clip if isinstance(model, SparseCLIP) else model
    pp = open_clip.get_model_preprocess_cfg(clip)
    return open_clip.image_transform(pp["size"], is_train=False, mean=pp["mean"], std=pp["std"],
                                     interpolation=pp.get("interpolation", "bicubic"),
                                     resize_mode=pp.get("resize_mode", "shortest"))


def tokenizer_for(model, arch: str):
    """open_clip's tokenizer for the architecture at the model's own context length."""
    clip = model.clip if isinstance(model, SparseCLIP) else model
    ctx = int(clip.positional_embedding.shape[0])
    return open_clip.get_tokenizer(arch if arch in open_clip.list_models() else "", context_length=ctx)


def load_dense(spec: ModelSpec, offline: bool = False, display: str | None = None) -> ClipRepresentation:
    model, arch, source, fp = _load_openclip(spec, offline)
    if isinstance(model, SparseCLIP):
        raise BadSpecError(f"{spec.raw!r} is a natively sparse CLIP folder; load it with sparseclip:{spec.path}")
    d = _embed_dim(model)
    meta = RepresentationMeta(
        name=display or spec.raw, spec=spec.raw, kind="dense", source=source, base_model=spec.raw,
        sparsity="none: dense embedding split into positive and negative parts (2d features)",
        n_features=2 * d, embed_dim=d, fingerprint=fp, extra={"architecture": arch})
    return ClipRepresentation(model, tokenizer_for(model, arch), image_transform(model), meta, split_signs=True)


def load_sparse(folder: Path, spec_raw: str, display: str | None = None) -> ClipRepresentation:
    folder = Path(folder).expanduser()
    model, cfg = load_model_folder(folder)
    if not isinstance(model, SparseCLIP):
        raise BadSpecError(f"{spec_raw!r}: {folder} has no sparse_config.json, so it is a dense CLIP; "
                           f"load it with openclip:local-dir:{folder}")
    d = _embed_dim(model)
    arch = cfg.get("architecture", folder.name)
    meta = RepresentationMeta(
        name=display or spec_raw, spec=spec_raw, kind="sparse-clip", source=str(folder), base_model=spec_raw,
        sparsity=f"native: ReLU after a widened projection (width {d}), logit-scale cap "
                 f"{model.cfg.logit_scale_cap:g}",
        n_features=d, embed_dim=d, fingerprint=_fingerprint_folder(folder), extra={"architecture": arch})
    return ClipRepresentation(model, tokenizer_for(model, arch), image_transform(model), meta, split_signs=False)


def reference_folder(name: str) -> Path:
    folder = REFERENCE_DIR / name
    if not folder.is_dir():
        how = f"interpbench train sae --preset {name}" if name.startswith("sae") else f"interpbench train clip {name}"
        raise MissingFileError(folder, f"the shipped reference model {name!r}",
                               f"reinstall interpbench, or rebuild it with `{how}`")
    return folder
