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


CONTESTANT, CONTROL = "contestant", "control"
CONTROL_COLOUR = "0.6"  # controls are grey everywhere; contestants take the colour palette
PANELS_PER_ROW = 4


def detach(fig):
    """Release a figure that seaborn's figure-level functions made through pyplot, so pyplot's
    global list does not keep it alive; the figure still draws and saves as before."""
    import matplotlib.pyplot as plt

    plt.close(fig)
    return fig


def plot_modality_density(per_model: dict[str, dict[str, np.ndarray]], controls=(), dataset: str | None = None):
    """Per model, one point per feature: modality score (y) against activation density (x, log).

    Sparse CLIP Fig. 3b; features never active (density 0) or without a score are left out.
    One panel per model, at most PANELS_PER_ROW per row (seaborn's col_wrap); contestants
    first in colour, then the models named in `controls`, in grey.
    """
    import seaborn as sns

    frames = []
    for model, arrays in per_model.items():
        ms, dens = feature_array(arrays, "modality_score"), feature_array(arrays, "activation_density", "density")
        if ms is None or dens is None:
            continue
        keep = np.isfinite(ms) & np.isfinite(dens) & (dens > 0)
        frames.append(pd.DataFrame({"model": model, "group": CONTROL if model in controls else CONTESTANT,
                                    "feature": np.flatnonzero(keep), "activation_density": dens[keep],
                                    "modality_score": ms[keep]}))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "group", "feature", "activation_density", "modality_score"])
    where = f" ({dataset})" if dataset else ""
    if data.empty:
        with style():
            fig, (ax,) = new_figure(1, 4.0, 3.6)
            empty_axes(ax, "no paired image-text data\n(modality scores need captions)")
            fig.suptitle(f"Modality score vs activation density{where}")
        return fig, data
    order = [m for m in per_model if m not in controls] + [m for m in per_model if m in controls]
    order = [m for m in order if m in set(data["model"])]
    with style():
        grid = sns.relplot(data=data, x="activation_density", y="modality_score", col="model", col_order=order,
                           col_wrap=min(PANELS_PER_ROW, len(order)), hue="group",
                           palette={CONTESTANT: "tab:blue", CONTROL: CONTROL_COLOUR}, s=10, alpha=0.6,
                           edgecolor=None, height=2.6, aspect=1.15, legend=False)
        detach(grid.figure)
        for model, ax in grid.axes_dict.items():
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.axhspan(0.1, 0.9, color="tab:green", alpha=0.08, zorder=0)
            control = model in controls and not model.startswith("control:")
            ax.set_title(model + (" (control)" if control else ""), fontsize=8)
        grid.set_axis_labels("activation density", "modality score (1 = image only)")
        grid.figure.suptitle(f"Modality score vs activation density per feature{where}; band [0.1, 0.9] shaded")
        grid.figure.set_layout_engine("constrained")
    return grid.figure, data
