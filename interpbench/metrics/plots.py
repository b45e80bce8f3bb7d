"""Sparse CLIP Fig. 3b for one representation, from plain arrays.

The drawing lives in interpbench.plotting (shared with the leaderboard, which plots
several models side by side); this is the array-in, PNG-out entry point for users
of the metrics package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from interpbench.errors import ShapeMismatchError


def plot_modality_vs_density(modality_score, density, path: Path | str, label: str = "model"):
    """Scatter modality score (y) against activation density (x, log scale), one point per
    feature; writes a PNG atomically. Returns (path, data drawn as a DataFrame).

    Features with a NaN score or zero density (never active) are left out."""
    from interpbench.plotting import plot_modality_density, save_png

    ms, dens = np.asarray(modality_score, float).ravel(), np.asarray(density, float).ravel()
    if ms.shape != dens.shape:
        raise ShapeMismatchError(f"modality_score has {ms.size} features but density has {dens.size}; "
                                 "expected one value per feature in both (MultimodalityResult arrays).")
    fig, data = plot_modality_density({label: {"modality_score": ms, "density": dens}})
    return save_png(fig, Path(path)), data
