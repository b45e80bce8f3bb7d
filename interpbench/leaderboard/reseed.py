"""Reseed stability: each metric's spread across models of one recipe that differ only in their training seed.

Results of reseeded models (`interpbench train sae --seeds 0,1,2`, then `evaluate`) carry
`model.recipe` and `model.train_seed`. For every data set, the records of one recipe under
one settings hash with at least two distinct seeds form a group; the page
`<dataset>-reseed.md` (+ CSV) gives, per metric, mean, sample standard deviation, min, max
and range over the seeds. A leaderboard difference smaller than the range is within the
recipe's reseed noise.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard.columns import COLUMNS, DOCS_URL
from interpbench.results.store import settings_hash

FIELDS = ("recipe", "settings", "metric", "n_seeds", "seeds", "mean", "std", "min", "max", "range")
_TITLES = {k: c for c in COLUMNS for k in c.keys}
NOT_METRICS = ("n_images", "n_features")


def reseed_groups(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(recipe, settings hash) -> its records, sorted by seed; only groups with >= 2 distinct seeds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        recipe, seed = r["model"].get("recipe"), r["model"].get("train_seed")
        if recipe and seed is not None:
            groups.setdefault((recipe, settings_hash(r["settings"])), []).append(r)
    out = {}
    for key, group in sorted(groups.items()):
        if len({r["model"]["train_seed"] for r in group}) >= 2:
            out[key] = sorted(group, key=lambda r: (r["model"]["train_seed"], r["model"]["spec"]))
    return out


def _metric_keys(group: list[dict]) -> list[str]:
    """Leaderboard columns first (in their order, under the key the records use), then every
    other scalar metric alphabetically; the evaluation's own sizes are not metrics."""
    scalar = {k for r in group for k, v in r["metrics"].items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)} - set(NOT_METRICS)
    first = [k for k in (next((k for k in c.keys if k in scalar), None) for c in COLUMNS) if k]
    return first + sorted(scalar - set(first))


def spread_rows(group: list[dict]) -> list[dict]:
    """One row per metric: mean, std (ddof 1), min, max and range over the group's seeds."""
    rows = []
    for key in _metric_keys(group):
        pairs = [(r["model"]["train_seed"], float(r["metrics"][key])) for r in group
                 if isinstance(r["metrics"].get(key), (int, float)) and np.isfinite(r["metrics"][key])]
        if len(pairs) < 2:
            continue
        v = np.array([p[1] for p in pairs])
        rows.append({"metric": key, "n_seeds": len(v), "seeds": " ".join(str(p[0]) for p in pairs),
                     "mean": float(v.mean()), "std": float(v.std(ddof=1)), "min": float(v.min()),
                     "max": float(v.max()), "range": float(v.max() - v.min())})
    return rows


def _fmt(key: str, v: float) -> str:
    col = _TITLES.get(key)
    return col.fmt(v) if col and abs(v) >= 1e-3 else f"{v:.4g}"


def reseed_page(name: str, groups: dict, docs_url: str = DOCS_URL) -> tuple[str, str]:
    """(Markdown, CSV) of the reseed spread of every group of one data set."""
    lines = [f"# Reseed stability: {name}", "",
             "Each metric over models trained with the same recipe and different training seeds "
             "(`interpbench train sae --seeds ...`), evaluated with the same settings. std is the sample "
             "standard deviation (ddof 1); range = max - min. A leaderboard difference smaller than the "
             f"range is within reseed noise. Metric definitions: [docs/metrics.md]({docs_url}).", ""]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for (recipe, shash), group in groups.items():
        seeds = ", ".join(str(r["model"]["train_seed"]) for r in group)
        lines += [f"## recipe `{recipe}` (seeds {seeds}; settings `{shash}`)", "",
                  "| metric | mean | std | min | max | range |", "|---|---|---|---|---|---|"]
        for row in spread_rows(group):
            key = f"`{row['metric']}`"
            title = f"{_TITLES[row['metric']].title} ({key})" if row["metric"] in _TITLES else key
            cells = [_fmt(row["metric"], row[k]) for k in ("mean", "std", "min", "max", "range")]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
            writer.writerow([recipe, shash, *[repr(row[k]) if isinstance(row[k], float) else row[k]
                                              for k in FIELDS[2:]]])
        lines.append("")
    return "\n".join(lines), buf.getvalue()


def write_reseed(out_dir: Path, stem: str, name: str, records: list[dict], docs_url: str = DOCS_URL) -> list[Path]:
    """Write `<stem>-reseed.md` and `.csv` when the data set has a reseed group; returns what was written."""
    groups = reseed_groups(records)
    if not groups:
        return []
    page, table = reseed_page(name, groups, docs_url)
    md, csv_path = Path(out_dir) / f"{stem}-reseed.md", Path(out_dir) / f"{stem}-reseed.csv"
    atomic_write_text(md, page)
    atomic_write_text(csv_path, table)
    return [md, csv_path]
