"""Leaderboard tables: rows from results records, Markdown with best values in bold, CSV.

Output depends only on the records (no timestamps, stable sort), so the same results give
the same bytes and the committed leaderboard only changes when the numbers do.
"""

from __future__ import annotations

import csv
import io

from interpbench.leaderboard.columns import COLUMNS, DOCS_URL, best_values
from interpbench.results.store import settings_hash

ID_FIELDS = ("model", "kind", "dataset", "judge", "n_images", "settings")


def record_row(record: dict) -> dict:
    """One table row: identity fields plus each column's value (None where not measured)."""
    settings = record["settings"]
    row = {"model": record["model"]["spec"], "kind": record["model"].get("kind", ""),
           "dataset": record["dataset"]["name"], "judge": str(settings.get("judge", "")),
           "n_images": settings.get("n_images"), "settings": settings_hash(settings)}
    row.update({c.key: c.value(record["metrics"]) for c in COLUMNS})
    return row


def sort_rows(rows: list[dict]) -> list[dict]:
    """Best Clarity first; rows without Clarity last; ties broken by model and settings."""
    def key(r):
        c = r.get("clarity")
        return (c is None, -(c or 0.0), r["model"], str(r.get("settings", "")))

    return sorted(rows, key=key)


def overall_rows(rows: list[dict]) -> list[dict]:
    """Per model spec: the mean of each column over all its results (any data set)."""
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    out = []
    for model, group in by_model.items():
        row = {"model": model, "kind": group[0]["kind"], "datasets": len({r["dataset"] for r in group})}
        for c in COLUMNS:
            vals = [r[c.key] for r in group if r[c.key] is not None]
            row[c.key] = sum(vals) / len(vals) if vals else None
        out.append(row)
    return sort_rows(out)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(title: str, rows: list[dict], id_fields: tuple[str, ...], intro: str = "",
                   docs_url: str = DOCS_URL) -> str:
    """A Markdown page: heading, table with footnote markers, one footnote per metric."""
    best = best_values(rows)
    head = ["#", *id_fields, *[f"{c.title}{c.arrow}[^{c.key}]" for c in COLUMNS]]
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        cells = [str(i)] + [f"`{_cell(r[f])}`" if f == "model" else _cell(r[f]) for f in id_fields]
        for c in COLUMNS:
            text = c.fmt(r[c.key])
            cells.append(f"**{text}**" if c.key in best and r[c.key] == best[c.key] else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bold: best value in the column (↑ higher is better, ↓ lower is better; "
                  "– not measured for this model)."]
    if "settings" in id_fields:
        lines.append("settings: hash of the evaluation settings (the `settings` object of the results JSON).")
    lines.append("")
    lines += [f"[^{c.key}]: {c.title}: {c.note} See [docs/metrics.md]({docs_url}#{c.anchor})." for c in COLUMNS]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict], id_fields: tuple[str, ...]) -> str:
    """Full-precision CSV of the same rows (repr of floats, empty where not measured)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", *id_fields, *[c.key for c in COLUMNS]])
    for i, r in enumerate(rows, 1):
        metrics = ["" if r[c.key] is None else repr(r[c.key]) for c in COLUMNS]
        writer.writerow([i, *[r[f] for f in id_fields], *metrics])
    return buf.getvalue()
