"""Models and Shapes images for the decomposition pipelines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from interpbench.clipmodels import load_model_folder, preprocess_cfg
from interpbench.data.shapes import ATTRIBUTES, ZEROSHOT_CLASSNAMES, ZEROSHOT_TEMPLATES, ShapesWorld
from interpbench.data.torch_datasets import normalise_uint8
from interpbench.decomposition.ablation import class_directions
from interpbench.errors import BadSpecError, EmptyDatasetError
from interpbench.specs import REFERENCE_DIR

SHAPES_MODELS = ("dense", "sparse", "spurious")  # spurious: built on demand (`interpbench train clip spurious`)


def resolve_model_path(spec: str) -> Path:
    """`shapes:dense` / `shapes:sparse` -> the shipped reference folder; anything else is a folder path."""
    if spec.startswith("shapes:"):
        name = spec.split(":", 1)[1]
        if name not in SHAPES_MODELS:
            raise BadSpecError(f"--model {spec!r}: unknown reference model {name!r}; "
                               f"expected one of {[f'shapes:{n}' for n in SHAPES_MODELS]} or a model folder path")
        return REFERENCE_DIR / name
    return Path(spec)


def load_model(spec: str):
    """(model, tokenizer, folder) for an open_clip model folder (local-dir layout) or `shapes:NAME`."""
    folder = resolve_model_path(spec)
    model, _ = load_model_folder(folder)  # MissingFileError names the missing file
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    return model.eval(), tokenizer, folder


def images_tensor(model: torch.nn.Module, samples: Sequence) -> torch.Tensor:
    """Shapes samples -> normalised [B, 3, S, S] at the model's input size (bicubic resize if needed)."""
    if not samples:
        raise EmptyDatasetError("no Shapes images selected; raise --n-images")
    inner = getattr(model, "clip", model)
    cfg = preprocess_cfg(inner)
    x = normalise_uint8(np.stack([s.image for s in samples]), cfg["mean"], cfg["std"])
    size = tuple(inner.visual.image_size)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
    return x


def samples_of(world: ShapesWorld, single_object: bool = False) -> list:
    """All samples of a world, optionally only one-object images."""
    out = [world[i] for i in range(len(world))]
    return [s for s in out if len(s.objects) == 1] if single_object else out


def labels_of(samples: Sequence, attribute: str) -> np.ndarray:
    values = ATTRIBUTES[attribute]
    return np.array([values.index(s.attributes[attribute]) for s in samples])


def shapes_classifier(model, tokenizer, attribute: str) -> torch.Tensor:
    """Zero-shot class directions [d, C] for one Shapes attribute (the project's templates)."""
    return class_directions(model, tokenizer, ZEROSHOT_CLASSNAMES[attribute], list(ZEROSHOT_TEMPLATES[attribute]))
