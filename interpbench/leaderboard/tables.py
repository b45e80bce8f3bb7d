"""Leaderboard tables: rows from results records, Markdown with intervals and bold, CSV.

Every cell shows the value ± the half-width of its 95% interval (record["intervals"], see
metrics/bootstrap.py); the CSV keeps both ends. A value is bold only when it is the best
of its column and its interval does not overlap the runner-up's: a column where either of
the two has no interval gets no bold, because nothing shows the difference is real.
Controls (results whose model.control is set) go in their own table, never ranked or bold,
and a column flagged as not separating trained from random (leaderboard/validity.py) has no bold.

Output depends only on the records (no timestamps, stable sort), so the same results give
the same bytes and the committed leaderboard only changes when the numbers do.
"""

from __future__ import annotations

import csv
import io

from interpbench.leaderboard.columns import COLUMNS, DOCS_URL
from interpbench.leaderboard.label_routes import unavailable_text
from interpbench.results.store import STAGES, settings_hash

ID_FIELDS = ("model", "kind", "dataset", "judge", "n_images", "settings")
METHOD_WORDS = {"bootstrap-images": "over images", "bootstrap-features": "over features",
                "bootstrap-pairs": "over image-caption pairs",
                "bootstrap-images+features": "over images, then over features"}


def is_control(record: dict) -> bool:
    return bool(record["model"].get("control"))


def control_text(record: dict) -> str:
    """'random-codes of shapes:sae (seed 0)' for a control, '' for a contestant."""
    c = record["model"].get("control") or {}
    if not c:
        return ""
    return f"{c.get('kind', '?')} of {c.get('of', '?')}" + (f" (seed {c['seed']})" if "seed" in c else "")


def column_interval(record: dict, col) -> dict | None:
    """The interval record of the metric key the column reads (None if absent or malformed)."""
    metrics, intervals = record["metrics"], record.get("intervals") or {}
    for k in col.keys:
        v = metrics.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            iv = intervals.get(k) if isinstance(intervals, dict) else None
            ok = isinstance(iv, dict) and all(isinstance(iv.get(e), (int, float)) for e in ("lo", "hi"))
            return iv if ok and iv["lo"] <= iv["hi"] else None
    return None


def record_row(record: dict) -> dict:
    """One table row: identity fields, each column's value, and its interval ends (None where
    not measured); `_iv` keeps each interval record for the footnotes."""
    settings = record["settings"]
    row = {"model": record["model"]["spec"], "kind": record["model"].get("kind", ""),
           "dataset": record["dataset"]["name"], "judge": str(settings.get("judge", "")),
           "n_images": settings.get("n_images"), "settings": settings_hash(settings),
           "control": control_text(record), "_iv": {}, "_na": {}, "timings": record.get("timings") or {}}
    for c in COLUMNS:
        row[c.key] = c.value(record["metrics"])
        na = unavailable_text(record, c.key) if row[c.key] is None else None
        if na:
            row["_na"][c.key] = na  # the cell says why, not "–"
        iv = column_interval(record, c)
        row[f"{c.key}_lo"], row[f"{c.key}_hi"] = (iv["lo"], iv["hi"]) if iv else (None, None)
        if iv:
            row["_iv"][c.key] = iv
    return row


def sort_rows(rows: list[dict]) -> list[dict]:
    """Best Clarity first; rows without Clarity last; ties broken by model and settings."""
    def key(r):
        c = r.get("clarity")
        return (c is None, -(c or 0.0), r["model"], str(r.get("settings", "")))

    return sorted(rows, key=key)


def overall_rows(rows: list[dict]) -> list[dict]:
    """Per model spec: the mean of each column over all its results (any data set). A model
    with one result keeps that result's intervals; a mean over data sets has none."""
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    out = []
    for model, group in by_model.items():
        row = {"model": model, "kind": group[0]["kind"], "datasets": len({r["dataset"] for r in group}),
               "control": group[0].get("control", ""), "_iv": dict(group[0]["_iv"]) if len(group) == 1 else {},
               "_na": {k: v for k, v in group[0].get("_na", {}).items() if all(r.get("_na", {}).get(k) == v for r in group)}}
        for c in COLUMNS:
            vals = [r[c.key] for r in group if r[c.key] is not None]
            row[c.key] = sum(vals) / len(vals) if vals else None
            one = len(group) == 1
            row[f"{c.key}_lo"] = group[0][f"{c.key}_lo"] if one else None
            row[f"{c.key}_hi"] = group[0][f"{c.key}_hi"] if one else None
        out.append(row)
    return sort_rows(out)


def bold_rows(rows: list[dict], columns=COLUMNS) -> dict[str, int]:
    """Column key -> index of the one row shown bold: the best value of a ranked column whose
    95% interval lies strictly beyond the runner-up's (the next row in rank order, which may
    tie). No entry when fewer than two rows have the value or either interval is missing."""
    out = {}
    for col in columns:
        if not col.better:
            continue
        ranked = sorted((i for i, r in enumerate(rows) if r.get(col.key) is not None),
                        key=lambda i: rows[i][col.key], reverse=col.better == "max")
        if len(ranked) < 2:
            continue
        best, second = rows[ranked[0]], rows[ranked[1]]
        ends = [best.get(f"{col.key}_lo"), best.get(f"{col.key}_hi"),
                second.get(f"{col.key}_lo"), second.get(f"{col.key}_hi")]
        if any(e is None for e in ends):
            continue
        b_lo, b_hi, s_lo, s_hi = ends
        if (b_lo > s_hi) if col.better == "max" else (b_hi < s_lo):
            out[col.key] = ranked[0]
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def value_text(col, row: dict) -> str:
    """'0.444 ± 0.021' (half-width of the 95% interval), or the bare value without one."""
    v, lo, hi = row.get(col.key), row.get(f"{col.key}_lo"), row.get(f"{col.key}_hi")
    if v is None and col.key in row.get("_na", {}):
        return row["_na"][col.key]
    text = col.fmt(v)
    if v is None or lo is None or hi is None:
        return text
    half = (hi - lo) / 2
    digits = 1 if col.percent or abs(v) >= 100 else col.digits
    return f"{text} ± {half:.{digits}f}"


def interval_note(col, rows: list[dict]) -> str:
    """How the column's intervals were made, from the interval records themselves."""
    made = sorted({(iv.get("method", "?"), iv.get("b"), iv.get("seed"), iv.get("level", 0.95))
                   for r in rows for k, iv in r.get("_iv", {}).items() if k == col.key}, key=str)
    if not made:
        return "No interval."
    parts = [f"{round(100 * lvl)}% percentile bootstrap {METHOD_WORDS.get(m, m)} ({m}, B={b}, seed {s})"
             for m, b, s, lvl in made]
    missing = sum(r.get(col.key) is not None and col.key not in r.get("_iv", {}) for r in rows)
    return "Interval: " + "; ".join(parts) + (f"; {missing} value(s) without one." if missing else ".")


def _table(rows: list[dict], id_fields: tuple[str, ...], bold: dict[str, int], ranked: bool = True) -> list[str]:
    head = ["#", *id_fields, *[f"{c.title}{c.arrow}[^{c.key}]" for c in COLUMNS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        cells = [str(i) if ranked else "–"] + [f"`{_cell(r[f])}`" if f == "model" else _cell(r[f]) for f in id_fields]
        for c in COLUMNS:
            text = value_text(c, r)
            cells.append(f"**{text}**" if bold.get(c.key) == i - 1 else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_table(title: str, rows: list[dict], id_fields: tuple[str, ...], intro: str = "",
                   docs_url: str = DOCS_URL, controls: list[dict] | None = None,
                   flags: dict[str, str] | None = None) -> str:
    """A Markdown page: heading, ranked table, a Controls table (never ranked or bold) and one
    footnote per metric (how its intervals were made; `flags`: column key -> why it is not
    shown to separate trained from random)."""
    flags = flags or {}
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    bold = {k: i for k, i in bold_rows(rows).items() if k not in flags}  # no ranking claim on a flagged column
    lines += _table(rows, id_fields, bold)
    lines += ["", "Values are ± the half-width of their 95% interval (footnotes say how each was made). "
                  "Bold: best value in the column whose interval does not overlap the runner-up's; no bold "
                  "where either has no interval or where the footnote says the column does not separate "
                  "trained from random (↑ higher is better, ↓ lower is better; – not measured)."]
    if "settings" in id_fields:
        lines.append("settings: hash of the evaluation settings (the `settings` object of the results JSON).")
    if controls:
        lines += ["", "## Controls", "",
                  "Random representations of the same shape as a contestant (`control`: kind of control, "
                  "and the model it copies). Not ranked; nothing bold.", ""]
        lines += _table(controls, (*id_fields, "control"), {}, ranked=False)
    lines.append("")
    everything = rows + (controls or [])
    for c in COLUMNS:
        flag = f" **Does not separate trained from random:** {flags[c.key]}." if c.key in flags else ""
        lines.append(f"[^{c.key}]: {c.title}: {c.note} {interval_note(c, everything)}{flag} "
                     f"See [docs/metrics.md]({docs_url}#{c.anchor}).")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict], id_fields: tuple[str, ...], controls: list[dict] | None = None) -> str:
    """Full-precision CSV of the same rows and then the controls (rank empty, `control` set):
    each metric with its interval ends `<key>_lo`, `<key>_hi` (empty where not measured)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", *id_fields, "control",
                     *[k for c in COLUMNS for k in (c.key, f"{c.key}_lo", f"{c.key}_hi")],
                     *[f"seconds_{s}" for s in STAGES]])  # where each run's time went
    for rank, r in [(i, r) for i, r in enumerate(rows, 1)] + [("", r) for r in controls or []]:
        metrics = ["" if r.get(k) is None else repr(r[k]) for c in COLUMNS
                   for k in (c.key, f"{c.key}_lo", f"{c.key}_hi")]
        timings = r.get("timings") or {}
        writer.writerow([rank, *[r[f] for f in id_fields], r.get("control", ""), *metrics,
                         *[timings.get(s, "") for s in STAGES]])
    return buf.getvalue()
