"""Seaborn plots of the results, saved as PNG and SVG with deterministic bytes.

Each `plot_*` function returns (figure, data): `data` is the DataFrame actually drawn, so
tests and users can check what a figure shows without parsing images. Figures are built
on matplotlib's object API (no pyplot global state), so concurrent calls do not interfere.
The style, the writers and the modality-density scatter live in interpbench.plotting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Re-exported: leaderboard modules and users call plots.save_figure, plots.plot_modality_density.
from interpbench.plotting import (  # noqa: F401
    empty_axes,
    feature_array,
    new_figure,
    plot_modality_density,
    save_figure,
    save_png,
    style,
)


def _model_points(rows: list[dict], x: str, y: str, xlabel: str, ylabel: str, title: str):
    import seaborn as sns

    data = pd.DataFrame([{"model": r["model"], x: r[x], y: r[y]} for r in rows
                         if r.get(x) is not None and r.get(y) is not None], columns=["model", x, y])
    with style():
        fig, (ax,) = new_figure(1, 5.5, 4.0)
        if data.empty:
            empty_axes(ax, f"no results with both {xlabel} and {ylabel}")
            return fig, data
        sns.scatterplot(data=data, x=x, y=y, hue="model", style="model", s=80, ax=ax)
        for _, r in data.iterrows():
            ax.annotate(r["model"], (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if data[x].min() > 0 and data[x].max() / data[x].min() > 20:  # dense (L0 ~ width) beside sparse
            ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend(fontsize=7, loc="best")
    return fig, data


def plot_clarity_vs_l0(rows: list[dict]):
    """One point per result: Clarity against L0 (sparser to the left)."""
    return _model_points(rows, "l0", "clarity", "L0 (active features per image)", "Clarity", "Clarity vs L0")


def plot_zeroshot_vs_sparsity(rows: list[dict]):
    """One point per result: mean zero-shot accuracy against L0."""
    return _model_points(rows, "l0", "zeroshot_mean", "L0 (active features per image)",
                         "zero-shot accuracy (mean)", "Zero-shot accuracy vs sparsity")


def plot_clarity_distribution(per_model: dict[str, dict[str, np.ndarray]]):
    """Per model, the distribution of per-feature Clarity (features with a defined value)."""
    import seaborn as sns

    frames = []
    for model, arrays in per_model.items():
        c = feature_array(arrays, "clarity")
        if c is None:
            continue
        keep = np.isfinite(c)
        frames.append(pd.DataFrame({"model": model, "feature": np.flatnonzero(keep), "clarity": c[keep]}))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "feature", "clarity"])
    with style():
        fig, (ax,) = new_figure(1, max(4.0, 1.6 * max(1, data["model"].nunique())), 4.0)
        if data.empty:
            empty_axes(ax, "no per-feature Clarity")
            return fig, data
        sns.violinplot(data=data, x="model", y="clarity", hue="model", cut=0, inner="quartile", ax=ax,
                       legend=False)
        ax.set(xlabel="", ylabel="per-feature Clarity", title="Per-feature Clarity")
        ax.tick_params(axis="x", labelrotation=20)
    return fig, data
