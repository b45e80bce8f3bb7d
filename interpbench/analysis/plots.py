"""PNG figures of the analyses: steering curves, PCA of codes, retrieval strips, duplicates.

Every function returns the written paths; figures are drawn off-screen (Agg) and written
atomically, so a crash never leaves a half-written PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from interpbench.ioutils import atomic_writer  # noqa: E402


def save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_writer(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return path


def steering_frame(records: list[dict]) -> pd.DataFrame:
    """Long table (model, features, strength, measure, value) of the mean steering curves."""
    rows = []
    for r in records:
        s = r.get("analyses", {}).get("steering")
        if not s or "skipped" in s:
            continue
        strengths = r["settings"]["strengths"]
        k = r["settings"]["k_ref"]
        for which, name in (("label", "label features"), ("control", "random features")):
            for measure in ("steering", "suppression"):
                for x, v in zip(strengths, s["mean_curves"][f"{which}_{measure}_k{k}"], strict=True):
                    rows.append({"model": r["model"]["name"], "features": name, "strength": x,
                                 "measure": f"{measure} success", "value": v})
    return pd.DataFrame(rows)


def model_palette(records: list[dict]) -> tuple[list[str], dict[str, tuple]]:
    """(hue order, colours): contestants first in colour, then the random controls in greys,
    so a reader tells them apart at a glance."""
    names = sorted({r["model"]["name"] for r in records if not r["model"].get("control")})
    controls = sorted({r["model"]["name"] for r in records if r["model"].get("control")})
    colours = dict(zip(names, sns.color_palette("tab10", max(len(names), 1)), strict=False))
    colours |= dict(zip(controls, sns.color_palette("Greys", len(controls) + 2)[2:], strict=True))
    return names + controls, colours


def plot_steering(records: list[dict], path: Path) -> Path:
    """Success vs strength, one colour per model (controls in grey); dashed = random-feature control."""
    df = steering_frame(records)
    order, palette = model_palette(records)
    order = [m for m in order if len(df) and m in set(df.model)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for j, (ax, measure) in enumerate(zip(axes, ("steering success", "suppression success"), strict=True)):
        sub = df[df.measure == measure] if len(df) else df
        if len(sub):
            sns.lineplot(data=sub, x="strength", y="value", hue="model", hue_order=order, palette=palette,
                         style="features", marker="o", ax=ax, legend=j == 1)
        ax.set(title=measure, xlabel="strength s (x image's max activation)", ylabel="share of images", ylim=(0, 1.02))
    if axes[1].get_legend() is not None:
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=8, title=None)
    return save(fig, path)


def plot_pca(codes: np.ndarray, truth: list, clusters: np.ndarray, attribute: str, title: str, path: Path) -> Path:
    """2-D PCA of the codes of images with a single value of `attribute`: by cluster and by truth."""
    from sklearn.decomposition import PCA

    keep = np.array([t is not None for t in truth])
    x = codes[keep]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    xy = PCA(n_components=2, random_state=0).fit_transform(x)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    hues = (np.asarray(clusters).astype(str), np.array([t for t in truth if t is not None]))
    for ax, hue, name in zip(axes, hues, ("k-means cluster", f"ground truth: {attribute}"), strict=True):
        sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=hue, s=10, linewidth=0, ax=ax, legend=name != "k-means cluster")
        ax.set(title=name, xlabel="PC 1", ylabel="PC 2")
    fig.suptitle(title)
    return save(fig, path)


def plot_retrieval_strip(source, queries: list[int], neighbours: np.ndarray, title: str, path: Path) -> Path:
    """One row per query: the query image, then its nearest images by code cosine."""
    k = neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.1 * (k + 1), 1.2 * len(queries)), squeeze=False)
    for r, q in enumerate(queries):
        for c, i in enumerate([q, *neighbours[r].tolist()]):
            ax = axes[r, c]
            ax.imshow(source.image(int(i)))
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_title("query", fontsize=7)
                for spine in ax.spines.values():
                    spine.set(color="red", linewidth=2)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def plot_duplicates(dup: dict, title: str, path: Path, n: int = 10) -> Path:
    """The largest duplicate groups with their members' top labels, as a text figure."""
    from interpbench.analysis.duplicates import duplicate_lines

    lines = duplicate_lines(dup, n) or ["no duplicate groups at this threshold"]
    fig = plt.figure(figsize=(9, 0.35 * len(lines) + 0.8))
    fig.text(0.01, 0.98, f"{title}: {dup['n_groups']} groups, {dup['n_in_groups']} of {dup['n_alive']} "
                         f"active features (Jaccard > {dup['threshold']})", va="top", fontsize=9, weight="bold")
    for j, line in enumerate(lines):
        fig.text(0.01, 0.9 - j * 0.85 / max(len(lines), 1), line, va="top", fontsize=8, family="monospace")
    return save(fig, path)


def model_figures(record: dict, codes, source, extra: dict, out_dir: Path, attribute: str = "shape",
                  n_queries: int = 3) -> list[Path]:
    """All per-model figures for one analysis record."""
    from interpbench.analysis import clustering, retrieval
    from interpbench.results.store import slug

    out_dir = Path(out_dir)
    name = record["model"]["name"]
    stem = slug(name)  # display name: short (shapes:dense), unlike specs holding absolute paths
    paths = []
    if "mean_curves" in record["analyses"].get("steering", {}):
        paths.append(plot_steering([record], out_dir / f"{stem}-steering.png"))
    lat = record["analyses"].get("latent")
    if lat:
        z = codes.features.numpy()
        truth = codes.attributes[attribute]
        clusters = clustering.cluster_scores(z, truth, seed=record["seed"])["clusters"]
        paths.append(plot_pca(z, truth, np.asarray(clusters), attribute, f"{name}: PCA of codes",
                              out_dir / f"{stem}-pca-{attribute}.png"))
        queries = np.random.default_rng(record["seed"]).choice(len(z), size=min(n_queries, len(z)), replace=False)
        nn = retrieval.nearest(codes.features, queries, record["settings"]["retrieval_k"]).numpy()
        paths.append(plot_retrieval_strip(source, queries.tolist(), nn, f"{name}: nearest images by code cosine",
                                          out_dir / f"{stem}-retrieval.png"))
        paths.append(plot_duplicates(lat["duplicates"], name, out_dir / f"{stem}-duplicates.png"))
    return paths
