"""The data-source protocol, and the Shapes world behind it.

A source is an indexed collection of images with, where it has them, captions (paired
image-text data feeds multimodality), a class label (zero-shot classification) and a
ground-truth concept vector (Shapes only). `identity` determines the items exactly and
is part of every cache key and results file.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from interpbench.data.shapes import CONCEPTS, ShapesConfig, ShapesWorld


@runtime_checkable
class ImageSource(Protocol):
    identity: dict
    name: str

    def __len__(self) -> int: ...

    def image(self, i: int) -> Image.Image: ...

    def captions(self, i: int) -> list[str] | None: ...

    def concepts(self, i: int) -> np.ndarray | None: ...

    @property
    def concept_names(self) -> list[str] | None: ...


class ShapesSource:
    """Shapes world as an ImageSource (eval split by default)."""

    def __init__(self, split: str = "eval", length: int = 2000, seed: int = 0, config: ShapesConfig | None = None):
        self.world = ShapesWorld(split, length=length, seed=seed, config=config)
        self.identity = self.world.identity
        self.name = f"shapes-{split}" + ("-spurious" if self.world.config.spurious else "")

    def __len__(self):
        return len(self.world)

    def image(self, i):
        return Image.fromarray(self.world[i].image)

    def captions(self, i):
        return self.world[i].captions

    def concepts(self, i):
        return self.world[i].concepts

    @property
    def concept_names(self):
        return list(CONCEPTS)


class TransformedImages(torch.utils.data.Dataset):
    """(transform(image), index) over a range of a source, for DataLoaders."""

    def __init__(self, source: ImageSource, transform, start: int, end: int):
        self.source, self.transform, self.start, self.end = source, transform, start, end

    def __len__(self):
        return self.end - self.start

    def __getitem__(self, i):
        idx = self.start + i
        return self.transform(self.source.image(idx)), idx
