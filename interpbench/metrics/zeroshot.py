"""Zero-shot classification through clip-benchmark's own `evaluate` function.

clip-benchmark only needs `encode_image` and `encode_text`; `EncoderView` picks which
embedding those return (dense CLIP, sparse features, or an SAE reconstruction), so the
same classifier code scores every representation.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
from clip_benchmark.metrics import zeroshot_classification

from interpbench.data.shapes import ZEROSHOT_TEMPLATES, ShapesWorld
from interpbench.data.torch_datasets import ShapesAttribute


class EncoderView(torch.nn.Module):
    """Adapts two callables to the encode_image / encode_text API clip-benchmark expects."""

    def __init__(self, encode_image, encode_text):
        super().__init__()
        self._img, self._txt = encode_image, encode_text

    def encode_image(self, images):
        return self._img(images)

    def encode_text(self, tokens):
        return self._txt(tokens)


class PassthroughTokenizer:
    """For EncoderViews whose text side takes raw strings (representation adapters).

    clip-benchmark calls `tokenizer(texts).to(device)`; this returns the strings unchanged.
    """

    def __call__(self, texts):
        return _Texts(texts)


class _Texts(list):
    def to(self, device):
        return self


@contextlib.contextmanager
def _quiet_bars():
    # clip-benchmark draws tqdm bars even with verbose=False; ours (rich) already show progress.
    bar = zeroshot_classification.tqdm
    zeroshot_classification.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        zeroshot_classification.tqdm = bar


def zeroshot_accuracy(model, tokenizer, dataloader, classnames, templates, device: str = "cpu") -> dict:
    """Top-1 accuracy and mean per-class recall via clip_benchmark.metrics.zeroshot_classification."""
    with _quiet_bars():
        out = zeroshot_classification.evaluate(
            model, dataloader, tokenizer, classnames, templates, device=device, amp=False, verbose=False
        )
    return {k: float(v) for k, v in out.items() if k in ("acc1", "mean_per_class_recall")}


def zeroshot_correct(model, tokenizer, dataloader, classnames, templates, device: str = "cpu") -> np.ndarray:
    """[N] bool: is each item's top-1 zero-shot prediction right (clip-benchmark's classifier and
    logits, top-1 as in its `accuracy`); the mean is `zeroshot_accuracy`'s acc1, per item for
    the bootstrap intervals."""
    with _quiet_bars():
        clf = zeroshot_classification.zero_shot_classifier(model, tokenizer, classnames, templates, device,
                                                           amp=False)
        logits, target = zeroshot_classification.run_classification(model, clf, dataloader, device, amp=False)
    return (logits.topk(1, dim=1)[1][:, 0] == target).numpy()


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
