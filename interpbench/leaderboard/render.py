"""Drawing feature cards and search results as PNG, and a static HTML index that links them.

The index uses relative links only, so the folder opens from disk (file://) and can be
copied or zipped as is.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard.plots import save_png, style


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _image_grid(fig, source, items: list[tuple[int, str]], cols: int):
    """Draw images (index, caption) into a grid of `fig`; returns the axes."""
    rows = max(1, math.ceil(len(items) / cols))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (i, caption) in zip(axes, items, strict=False):  # the grid may have spare cells
        ax.imshow(source.image(i))
        ax.set_title(caption, fontsize=7)
    return axes


def card_text(model: str, info: dict) -> str:
    words = "\n".join(f"  {w:<18} {sc:.3f}" for w, sc in info["top_words"]) or "  (no vocabulary word activates it)"
    return (f"{model}\nfeature {info['feature']}\n\n"
            f"Clarity          {_fmt(info['clarity'])}\n"
            f"modality score   {_fmt(info['modality_score'])}\n"
            f"  (1 = image only, 0 = text only)\n"
            f"mean activation  {_fmt(info['mean_activation'], 4)}\n"
            f"active on        {info['n_active_images']} images\n\n"
            f"top words (score):\n{words}")


def draw_card(model: str, source, info: dict, cols: int = 4):
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(10, 5.5), layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[1.6, 1])
        items = [(i, f"#{i}  {a:.3f}") for i, a in info["top_images"]]
        if items:
            _image_grid(left, source, items, cols)
        else:
            left.text(0.5, 0.5, "never active on these images", ha="center")
        left.suptitle("top-activating images (image index, activation)", fontsize=9)
        ax = right.subplots()
        ax.set_axis_off()
        ax.text(0.0, 1.0, card_text(model, info), va="top", ha="left", family="monospace", fontsize=9,
                transform=ax.transAxes)
    return fig


def draw_search(model: str, source, result: dict, cols: int = 4):
    from matplotlib.figure import Figure

    n = max(1, len(result["images"]))
    rows = math.ceil(n / cols)
    with style():
        fig = Figure(figsize=(3.2 * cols, 3.6 * rows), layout="constrained")
        feats = result["features"]
        listed = ", ".join(map(str, feats[:12])) + (f", ... ({len(feats)} in all)" if len(feats) > 12 else "")
        fig.suptitle(f"{model}: images where features {search_title(result)} fire (features {listed})",
                     fontsize=9)
        items = []
        for hit in result["images"]:
            concepts = "\n".join(f"{w} {a:.2f}" for w, a in hit["concepts"])
            items.append((hit["image"], f"#{hit['image']}  score {hit['score']:.3f}\n{concepts}"))
        _image_grid(fig, source, items, cols)
    return fig


def write_index(out_dir: Path, title: str) -> Path:
    """index.html linking every card and search PNG under out_dir, grouped by model folder."""
    out_dir = Path(out_dir)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif} img{width:420px;margin:4px;border:1px solid #ccc}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        pngs = sorted(folder.glob("*.png"))
        if not pngs:
            continue
        spec = (folder / "SPEC").read_text(encoding="utf-8").strip() if (folder / "SPEC").is_file() else folder.name
        parts.append(f"<h2>{html.escape(spec)}</h2>")
        for png in pngs:
            rel = f"{folder.name}/{png.name}"
            parts.append(f"<a href='{html.escape(rel)}'><img src='{html.escape(rel)}' "
                         f"alt='{html.escape(png.stem)}' title='{html.escape(png.stem)}'></a>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path


def save_card(fig, path: Path) -> Path:
    return save_png(fig, path)


def search_title(result: dict) -> str:
    """How the search matched: "labelled 'cat'", or "with 'cat' among their first 3 top words"."""
    depth, word = result.get("depth", 1), result["word"]
    return f"labelled {word!r}" if depth == 1 else f"with {word!r} among their first {depth} top words"
