"""PNG figures for the decomposition commands (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from interpbench.ioutils import atomic_writer  # noqa: E402


def _save(fig, path: Path) -> None:
    with atomic_writer(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def head_texts_png(textspan: dict, path: Path, max_texts: int = 6) -> None:
    """One panel per head listing its first TextSpan texts and the variance each explains."""
    heads = sorted(textspan)
    cols = max(1, len({h for _, h in heads}))
    rows = math.ceil(len(heads) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 0.32 * max_texts * rows + 0.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, head in zip(axes.flat, heads, strict=False):
        res = textspan[head]
        lines = [f"{e * 100:4.1f}%  {t}" for t, e in zip(res.texts[:max_texts], res.explained, strict=False)]
        ax.set_title(f"L{head[0]}.H{head[1]}  ({res.variance_explained * 100:.0f}% var)", fontsize=8, loc="left")
        ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=7, family="monospace", transform=ax.transAxes)
    _save(fig, path)


def roles_png(skill: np.ndarray, rows: list[dict], attributes, path: Path) -> None:
    """Heatmap of probe skill (heads x attributes); a box marks the TextSpan attribute of each head."""
    L, H, A = skill.shape
    data = skill.reshape(L * H, A)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * A, 0.8 + 0.22 * L * H))
    im = ax.imshow(np.nan_to_num(data, nan=0.0), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(A), attributes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(L * H), [f"L{r['layer']}.H{r['head']}" for r in rows], fontsize=7)
    for i, r in enumerate(rows):
        if r["textspan_attribute"] in attributes:
            j = list(attributes).index(r["textspan_attribute"])
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
    fig.colorbar(im, ax=ax, label="probe skill (chance-corrected)")
    ax.set_title("head roles: probe skill; red box = TextSpan attribute", fontsize=9)
    _save(fig, path)


def segmentation_png(images, masks, maps: dict, path: Path) -> None:
    """Rows: examples; columns: image, ground-truth mask, one soft map per method."""
    import torch

    from interpbench.decomposition.segmentation import soft_masks

    n = len(images)
    cols = 2 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(2 * cols, 2 * n), squeeze=False)
    soft = {k: soft_masks(torch.as_tensor(v), masks.shape[1:]).numpy() for k, v in maps.items()}
    for i in range(n):
        panels = [("image", images[i], None), ("mask", masks[i], "gray")]
        panels += [(k, soft[k][i], "magma") for k in maps]
        for ax, (title, img, cmap) in zip(axes[i], panels, strict=True):
            ax.imshow(img, cmap=cmap)
            ax.axis("off")
            if i == 0:
                ax.set_title(title, fontsize=8)
    _save(fig, path)
