"""Zero-shot classification through clip-benchmark's own `evaluate` function.

clip-benchmark only needs `encode_image` and `encode_text`; `EncoderView` picks which
embedding those return (dense CLIP, sparse features, or an SAE reconstruction), so the
same classifier code scores every representation. Class names and templates come from the
caller (evaluation/steps.py for a data source, evaluation/zeroshot_shapes.py for the Shapes
world): this module knows no data set.
"""

from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np
import torch
from clip_benchmark.metrics import zeroshot_classification


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
        with warnings.catch_warnings():
            # clip-benchmark 1.6 calls float() on 1-element arrays (numpy >= 1.25 deprecates it; we pin
            # numpy < 2.4, where it becomes an error): theirs to fix, nothing the user can act on.
            warnings.filterwarnings("ignore", message="Conversion of an array with ndim > 0 to a scalar",
                                    category=DeprecationWarning)
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
