"""Plot helpers shared by the metrics package (one model, arrays in) and the leaderboard
(several models from results files): a fixed style, deterministic PNG/SVG bytes, and the
modality-vs-density scatter both draw. Depends on nothing else in interpbench but ioutils,
so either side can import it without reaching into the other.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from interpbench.ioutils import atomic_writer

# svg.hashsalt fixes the ids matplotlib would otherwise draw at random; fonttype "path"
# avoids embedding system font names. Together with metadata without dates, the same data
# give the same SVG and PNG bytes.
_RC = {"svg.hashsalt": "interpbench", "svg.fonttype": "path", "figure.dpi": 100, "savefig.dpi": 100}


@contextlib.contextmanager
def style():
    import matplotlib
    import seaborn as sns

    with matplotlib.rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", 0.8), **_RC}):
        yield


def new_figure(n_axes: int = 1, width: float = 5.0, height: float = 4.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_axes, height), layout="constrained")
    axes = fig.subplots(1, n_axes, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig, stem: Path) -> list[Path]:
    """Write stem.png and stem.svg atomically; returns the paths."""
    paths = []
    for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = Path(f"{stem}.{fmt}")
        with style(), atomic_writer(path) as tmp:
            fig.savefig(tmp, format=fmt, metadata=meta)
        paths.append(path)
    return paths


def feature_array(arrays: dict, *names: str) -> np.ndarray | None:
    """The first of `names` present in a per-feature sidecar (names changed between versions)."""
    for name in names:
        if name in arrays:
            return np.asarray(arrays[name], float)
    return None


def save_png(fig, path: Path) -> Path:
    path = Path(path)
    with style(), atomic_writer(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def empty_axes(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_modality_density(per_model: dict[str, dict[str, np.ndarray]]):
    """Per model, one point per feature: modality score (y) against activation density (x, log).

    Sparse CLIP Fig. 3b; features never active (density 0) or without a score are left out.
    """
    import seaborn as sns

    frames = []
    for model, arrays in per_model.items():
        ms, dens = feature_array(arrays, "modality_score"), feature_array(arrays, "activation_density", "density")
        if ms is None or dens is None:
            continue
        keep = np.isfinite(ms) & np.isfinite(dens) & (dens > 0)
        frames.append(pd.DataFrame({"model": model, "feature": np.flatnonzero(keep),
                                    "activation_density": dens[keep], "modality_score": ms[keep]}))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "feature", "activation_density", "modality_score"])
    models = list(dict.fromkeys(data["model"])) or ["(none)"]
    with style():
        fig, axes = new_figure(len(models), 4.0, 3.6)
        for ax, model in zip(axes, models, strict=True):
            sub = data[data["model"] == model]
            if sub.empty:
                empty_axes(ax, "no paired image-text data\n(modality scores need captions)")
                continue
            sns.scatterplot(data=sub, x="activation_density", y="modality_score", s=10, alpha=0.6, ax=ax,
                            edgecolor=None)
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.axhspan(0.1, 0.9, color="tab:green", alpha=0.08, zorder=0)
            ax.set(title=model, xlabel="activation density", ylabel="modality score (1 = image only)")
    return fig, data
