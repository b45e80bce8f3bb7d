"""Zero-shot segmentation from the per-token decomposition, and its metrics.

Map (the authors' recipe): per image-token contribution summed over all layers and heads (the
CLS token dropped), scored against the class directions; the map is the predicted class's score
minus the mean score over classes. Baseline: raw attention, the last layer's CLS-to-patch
attention averaged over heads. Both maps are post-processed identically: reshaped to the patch
grid, bilinearly upsampled to the mask size, negative values clipped to 0, min-max normalised
per image, and thresholded at the per-image mean to give a foreground mask.

Metrics (the ImageNet-segmentation protocol of Chefer et al. as used by the authors):
pixel accuracy and mIoU (background and foreground IoU, each pooled over all pixels of the set,
then averaged) from the binary masks; mAP = mean over images of the average precision of the
two-channel soft prediction (foreground score = map, background score = 1 - map) against the
one-hot ground truth.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from interpbench.decomposition.core import Decomposition
from interpbench.errors import ShapeMismatchError


def decomposition_maps(dec: Decomposition, classifier: torch.Tensor,
                       classes: torch.Tensor | None = None) -> torch.Tensor:
    """Patch-grid maps [B, gh, gw]: token contributions scored for the predicted (or given) class
    minus their mean score over all classes."""
    scores = dec.tokens[:, 1:] @ classifier  # [B, P, C]
    if classes is None:
        classes = (dec.total() @ classifier).argmax(-1)
    picked = scores.gather(2, classes.view(-1, 1, 1).expand(-1, scores.shape[1], 1)).squeeze(2)
    return _grid(picked - scores.mean(-1), dec)


def attention_maps(dec: Decomposition, layer: int = -1) -> torch.Tensor:
    """Raw-attention baseline: CLS-to-patch attention of one layer, mean over heads [B, gh, gw]."""
    return _grid(dec.attention[:, layer, :, 1:].mean(1), dec)


def _grid(patches: torch.Tensor, dec: Decomposition) -> torch.Tensor:
    gh, gw = dec.grid
    if gh * gw != patches.shape[1]:
        raise ShapeMismatchError(f"{patches.shape[1]} patch tokens do not fill the {gh}x{gw} patch grid")
    return patches.reshape(-1, gh, gw)


def soft_masks(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample [B, gh, gw] -> [B, H, W] (bilinear), clip below 0, min-max normalise per image."""
    up = F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear", align_corners=False).squeeze(1)
    up = up.clamp_min(0)
    lo = up.flatten(1).min(1).values.view(-1, 1, 1)
    hi = up.flatten(1).max(1).values.view(-1, 1, 1)
    return (up - lo) / (hi - lo).clamp_min(1e-12)


def binarise(soft: torch.Tensor) -> torch.Tensor:
    """Foreground where the soft mask exceeds its per-image mean."""
    return soft > soft.flatten(1).mean(1).view(-1, 1, 1)


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """Share of pixels (pooled over all images) whose binary label is right."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    return float((pred == gt).mean())


def mean_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean of background IoU and foreground IoU, intersections and unions pooled over images."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    ious = []
    for cls in (False, True):
        p, g = pred == cls, gt == cls
        union = np.logical_or(p, g).sum()
        if union > 0:
            ious.append(np.logical_and(p, g).sum() / union)
    return float(np.mean(ious))


def mean_average_precision(soft: np.ndarray, gt: np.ndarray) -> float:
    """Mean over images of the AP of [1 - soft, soft] against one-hot [background, foreground]."""
    soft, gt = np.asarray(soft, float), np.asarray(gt, bool)
    aps = []
    for s, g in zip(soft, gt, strict=True):
        scores = np.concatenate([1.0 - s.ravel(), s.ravel()])
        targets = np.concatenate([~g.ravel(), g.ravel()]).astype(int)
        aps.append(average_precision_score(targets, scores))
    return float(np.mean(aps))


def score_maps(maps: torch.Tensor, masks: np.ndarray) -> dict[str, float]:
    """Pixel accuracy, mIoU and mAP (all in [0, 1]) of patch maps against binary masks [B, H, W]."""
    masks = np.asarray(masks) > 0
    if maps.shape[0] != masks.shape[0]:
        raise ShapeMismatchError(f"{maps.shape[0]} maps but {masks.shape[0]} masks")
    soft = soft_masks(maps, masks.shape[1:])
    hard = binarise(soft).numpy()
    return {"pixel_accuracy": pixel_accuracy(hard, masks), "miou": mean_iou(hard, masks),
            "map": mean_average_precision(soft.numpy(), masks)}
