"""torch Dataset views of the Shapes world for training, extraction and clip-benchmark."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from interpbench.data.shapes import ZEROSHOT_CLASSNAMES, ShapesWorld


def normalise_uint8(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W]; open_clip's eval transform at native size."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


class ShapesImages(torch.utils.data.Dataset):
    """(transformed image, index) pairs; `transform` is the representation's image transform."""

    def __init__(self, world: ShapesWorld, transform, indices=None):
        self.world, self.transform = world, transform
        self.indices = list(range(len(world))) if indices is None else list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        idx = self.indices[i]
        return self.transform(Image.fromarray(self.world[idx].image)), idx


class ShapesAttribute(torch.utils.data.Dataset):
    """Zero-shot classification of one attribute, in clip-benchmark's dataloader contract.

    Only samples where the attribute has a single true value are kept (object-level
    attributes need one-object images). `classes` is what clip-benchmark reads.
    """

    def __init__(self, world: ShapesWorld, attribute: str, transform, limit: int | None = None):
        if attribute not in ZEROSHOT_CLASSNAMES:
            raise ValueError(f"unknown Shapes attribute {attribute!r}; expected one of {tuple(ZEROSHOT_CLASSNAMES)}")
        from interpbench.data.shapes import ATTRIBUTES

        self.world, self.transform, self.attribute = world, transform, attribute
        self.classes = list(ZEROSHOT_CLASSNAMES[attribute])
        values = ATTRIBUTES[attribute]
        self.items: list[tuple[int, int]] = []
        for i in range(len(world)):
            v = world[i].attributes[attribute]
            if v is not None:
                self.items.append((i, values.index(v)))
                if limit is not None and len(self.items) >= limit:
                    break

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        idx, target = self.items[i]
        return self.transform(Image.fromarray(self.world[idx].image)), target
