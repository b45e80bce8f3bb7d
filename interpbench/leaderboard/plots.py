"""Seaborn plots of the results, saved as PNG and SVG with deterministic bytes.

Each `plot_*` function returns (figure, data): `data` is the DataFrame actually drawn, so
tests and users can check what a figure shows without parsing images. Readable at a dozen
models: contestants in colour, controls grey and hollow after them; every point with the
error bars of its 95% intervals; the legend outside the axes, so no label covers a point;
the data set in every title; Clarity plots draw the data set's own Clarity as a line.
The style, the writers and the modality-density scatter live in interpbench.plotting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Re-exported: leaderboard modules and users call plots.save_figure, plots.plot_modality_density.
from interpbench.plotting import (  # noqa: F401
    CONTESTANT,
    CONTROL,
    CONTROL_COLOUR,
    detach,
    empty_axes,
    feature_array,
    new_figure,
    plot_modality_density,
    save_figure,
    save_png,
    style,
)

MARKERS = "os^DvP*Xph<>"


def _group(row: dict) -> str:
    return CONTROL if row.get("control") else CONTESTANT


def _label(model: str, control: bool) -> str:
    return model + (" (control)" if control and not model.startswith("control:") else "")


def _copies(row: dict, x: str, y: str) -> bool:
    """A control that copies both plotted values from its target by construction (random codes:
    L0 and zero-shot) would hide under the target's marker and shows nothing: not drawn."""
    from interpbench.leaderboard.verdicts import COPIED_BY_CONSTRUCTION

    return {x, y} <= COPIED_BY_CONSTRUCTION.get(row.get("control_kind"), frozenset())


def _points(rows: list[dict], x: str, y: str) -> pd.DataFrame:
    """One row per result with both values: the values, their interval ends (the value
    itself where there is no interval) and the group; contestants first, then controls."""
    out = []
    for r in sorted(rows, key=lambda r: _group(r) == CONTROL):  # stable: keeps the page's order within a group
        if r.get(x) is None or r.get(y) is None or _copies(r, x, y):
            continue
        item = {"model": r["model"], "group": _group(r), x: r[x], y: r[y]}
        for k in (x, y):
            lo, hi = r.get(f"{k}_lo"), r.get(f"{k}_hi")
            item[f"{k}_lo"], item[f"{k}_hi"] = (r[k], r[k]) if lo is None or hi is None else (lo, hi)
        out.append(item)
    return pd.DataFrame(out, columns=["model", "group", x, y, f"{x}_lo", f"{x}_hi", f"{y}_lo", f"{y}_hi"])


def _baseline(rows: list[dict]) -> float | None:
    """The data set's own Clarity (the same for every row of a page; the median if not)."""
    vals = [r["clarity_baseline"] for r in rows if r.get("clarity_baseline") is not None]
    return float(np.median(vals)) if vals else None


def _model_points(rows: list[dict], x: str, y: str, xlabel: str, ylabel: str, title: str,
                  dataset: str | None = None, baseline: float | None = None):
    import seaborn as sns

    data = _points(rows, x, y)
    where = f" ({dataset})" if dataset else ""
    with style():
        fig, (ax,) = new_figure(1, 7.5, 4.5)
        if data.empty:
            empty_axes(ax, f"no results with both {xlabel} and {ylabel}")
            return fig, data
        n_contestants = int((data["group"] == CONTESTANT).sum())
        colours = sns.color_palette("tab10" if n_contestants <= 10 else "husl", max(1, n_contestants))
        for i, r in enumerate(data.itertuples(index=False)):
            d = r._asdict()
            control = d["group"] == CONTROL
            colour = CONTROL_COLOUR if control else colours[i]
            marker = MARKERS[(i - n_contestants if control else i) % len(MARKERS)]
            xerr = [[d[x] - d[f"{x}_lo"]], [d[f"{x}_hi"] - d[x]]]
            yerr = [[d[y] - d[f"{y}_lo"]], [d[f"{y}_hi"] - d[y]]]
            ax.errorbar(d[x], d[y], xerr=xerr, yerr=yerr, fmt=marker, ms=7, color=colour, ecolor=colour,
                        elinewidth=1, capsize=2, mfc="none" if control else colour, mew=1.3,
                        label=_label(d["model"], control), zorder=2 if control else 3)
        if baseline is not None:
            ax.axhline(baseline, ls="--", lw=1, color="k", zorder=1, label="data set's own Clarity (baseline)")
        if data[x].min() > 0 and data[x].max() / data[x].min() > 20:  # dense (L0 ~ width) beside sparse
            ax.set_xscale("log")
        skipped = sum(_copies(r, x, y) for r in rows)
        note = f"\n({skipped} random-codes controls copy both values by construction: not drawn)" if skipped else ""
        ax.set(xlabel=xlabel, ylabel=f"{ylabel} (bars: 95% intervals)", title=f"{title}{where}{note}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                  title="filled: contestants; hollow grey: controls", title_fontsize=7)
    return fig, data


def plot_clarity_vs_l0(rows: list[dict], dataset: str | None = None):
    """One point per result: Clarity against L0 (sparser to the left), with the baseline."""
    return _model_points(rows, "l0", "clarity", "L0 (active features per image)", "Clarity",
                         "Clarity vs L0", dataset, _baseline(rows))


def plot_zeroshot_vs_sparsity(rows: list[dict], dataset: str | None = None):
    """One point per result: mean zero-shot accuracy against L0."""
    return _model_points(rows, "l0", "zeroshot_mean", "L0 (active features per image)",
                         "zero-shot accuracy (mean)", "Zero-shot accuracy vs sparsity", dataset)


def plot_clarity_distribution(per_model: dict[str, dict[str, np.ndarray]], controls=(), dataset: str | None = None,
                              rows: list[dict] | None = None):
    """Per model, the distribution of per-feature Clarity (features with a defined value): one
    horizontal violin per model, contestants first in colour, then controls in grey, and the
    data set's own Clarity as a vertical line."""
    import seaborn as sns

    frames = []
    order = [m for m in per_model if m not in controls] + [m for m in per_model if m in controls]
    for model in order:
        c = feature_array(per_model[model], "clarity")
        if c is None:
            continue
        keep = np.isfinite(c)
        frames.append(pd.DataFrame({"model": model, "group": CONTROL if model in controls else CONTESTANT,
                                    "feature": np.flatnonzero(keep), "clarity": c[keep]}))
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "group", "feature", "clarity"])
    where = f" ({dataset})" if dataset else ""
    models = list(dict.fromkeys(data["model"]))
    with style():
        fig, (ax,) = new_figure(1, 7.5, 1.2 + 0.45 * max(1, len(models)))
        if data.empty:
            empty_axes(ax, "no per-feature Clarity")
            return fig, data
        n = sum(m not in controls for m in models)
        colours = sns.color_palette("tab10" if n <= 10 else "husl", max(1, n))
        palette = {m: (CONTROL_COLOUR if m in controls else colours[i]) for i, m in enumerate(models)}
        labels = {m: _label(m, m in controls) for m in models}
        sns.violinplot(data=data.assign(model=data["model"].map(labels)), y="model", x="clarity", hue="model",
                       order=[labels[m] for m in models], palette={labels[m]: c for m, c in palette.items()},
                       cut=0, inner="quartile", density_norm="width", linewidth=0.8, ax=ax, legend=False)
        baseline = _baseline(rows or [])
        if baseline is not None:
            ax.axvline(baseline, ls="--", lw=1, color="k", label="data set's own Clarity (baseline)")
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        ax.set(ylabel="", xlabel="per-feature Clarity (quartiles inside)", title=f"Per-feature Clarity{where}")
    return fig, data
