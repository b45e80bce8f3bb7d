"""Zero-shot accuracy per Shapes attribute of an open_clip model, straight from images.

Used by the training presets for the reference-model cards (evaluate uses the cached
embeddings in evaluation/steps.py instead). The Shapes world supplies the classes and
templates; metrics/zeroshot.py does the classification through clip-benchmark.
"""

from __future__ import annotations

import torch

from interpbench.data.shapes import ZEROSHOT_TEMPLATES, ShapesWorld
from interpbench.data.torch_datasets import ShapesAttribute
from interpbench.metrics.zeroshot import zeroshot_accuracy


def shapes_zeroshot(model, tokenizer, transform, world: ShapesWorld, device: str = "cpu",
                    limit: int | None = None, batch_size: int = 256) -> dict[str, float]:
    """Top-1 zero-shot accuracy per Shapes attribute, plus their mean under "mean"."""
    accs = {}
    for attribute, templates in ZEROSHOT_TEMPLATES.items():
        ds = ShapesAttribute(world, attribute, transform, limit=limit)
        dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
        accs[attribute] = zeroshot_accuracy(model, tokenizer, dl, ds.classes, list(templates), device)["acc1"]
    accs["mean"] = sum(accs.values()) / len(accs)
    return accs
