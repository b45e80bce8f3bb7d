"""Leaderboard tables: rows from results records, Markdown with intervals and bold, CSV.

Every cell shows the value ± the half-width of its 95% interval (record["intervals"], see
metrics/bootstrap.py); the CSV keeps both ends. A page has a headline table (at most 10
columns: `#`, model, and the columns leaderboard/ranking.py picks) and the full table with
every column. A value is bold only when its column separates every ranked model from its
controls in the right direction (leaderboard/verdicts.py) and the value is the best of its
column with an interval clear of the runner-up's: no control comparison, no bold.
Controls (results whose model.control is set) go in their own table, never ranked or bold.

Output depends only on the records (no timestamps, stable sort), so the same results give
the same bytes and the committed leaderboard only changes when the numbers do.
"""

from __future__ import annotations

import csv
import io

from interpbench.leaderboard.columns import COLUMNS, DOCS_URL, HEADLINE_ALWAYS
from interpbench.leaderboard.label_routes import unavailable_text
from interpbench.leaderboard.records import column_interval, is_control  # noqa: F401 (re-exported)
from interpbench.leaderboard.verdicts import CONTROL_BETTER, NO_SEPARATION, SEPARATES, UNKNOWN
from interpbench.results.store import STAGES, settings_hash

ID_FIELDS = ("model", "kind", "dataset", "judge", "n_images", "settings")
METHOD_WORDS = {"bootstrap-images": "over images", "bootstrap-features": "over features",
                "bootstrap-pairs": "over image-caption pairs",
                "bootstrap-images+features": "over images, then over features"}


def control_text(record: dict) -> str:
    """'random-codes of shapes:sae (seed 0)' for a control, '' for a contestant."""
    c = record["model"].get("control") or {}
    if not c:
        return ""
    return f"{c.get('kind', '?')} of {c.get('of', '?')}" + (f" (seed {c['seed']})" if "seed" in c else "")


def record_row(record: dict) -> dict:
    """One table row: identity fields, each column's value, and its interval ends (None where
    not measured); `_iv` keeps each interval record for the footnotes."""
    settings = record["settings"]
    row = {"model": record["model"]["spec"], "kind": record["model"].get("kind", ""),
           "dataset": record["dataset"]["name"], "judge": str(settings.get("judge", "")),
           "n_images": settings.get("n_images"), "settings": settings_hash(settings),
           "control": control_text(record), "control_kind": (record["model"].get("control") or {}).get("kind"),
           "_iv": {}, "_na": {}, "timings": record.get("timings") or {}}
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


def sort_rows(rows: list[dict], col=None) -> list[dict]:
    """Best first by `col` (leaderboard/ranking.py); without one, by model name."""
    from interpbench.leaderboard.ranking import sort_by_rank

    return sort_by_rank(rows, col)


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


def bold_rows(rows: list[dict], columns=COLUMNS, verdicts: dict | None = None) -> dict[str, int]:
    """Column key -> index of the one row shown bold: the best value of a column whose verdict
    is "separates" (every ranked model beats its controls on it, leaderboard/verdicts.py) and
    whose 95% interval lies strictly beyond the runner-up's (the next row in its order, which
    may tie). No entry when fewer than two rows have the value or either interval is missing."""
    out = {}
    for col in columns:
        v = (verdicts or {}).get(col.key)
        if not col.better or v is None or v.verdict != SEPARATES:
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
    made = sorted({(iv.get("method", "?"), iv.get("b"), iv.get("seed"), iv.get("level", 0.95),
                    iv.get("interval", "percentile"))
                   for r in rows for k, iv in r.get("_iv", {}).items() if k == col.key}, key=str)
    if not made:
        return "No interval."
    parts = [f"{round(100 * lvl)}% bootstrap {METHOD_WORDS.get(m, m)} ({m}, {kind}, B={b}, seed {s})"
             for m, b, s, lvl, kind in made]
    missing = sum(r.get(col.key) is not None and col.key not in r.get("_iv", {}) for r in rows)
    return "Interval: " + "; ".join(parts) + (f"; {missing} value(s) without one." if missing else ".")


def _rank_cells(rows: list[dict], rank_col) -> list[str]:
    """`#` per row: 1 + the number of rows whose 95% interval on the rank column lies wholly on
    the better side of this row's (the bold rule's test), so rows whose intervals overlap share a
    rank (1, 1, 3, ...): a position the intervals do not support is not claimed. Without
    intervals, the plain position. – without a rank or without the value."""
    if rank_col is None:
        return ["–"] * len(rows)
    key, up = rank_col.key, rank_col.better != "min"
    have = [r for r in rows if r.get(key) is not None]

    def clearly_better(a: dict, b: dict) -> bool:
        ends = (a.get(f"{key}_lo"), a.get(f"{key}_hi"), b.get(f"{key}_lo"), b.get(f"{key}_hi"))
        if any(e is None for e in ends):
            return (a[key] > b[key]) if up else (a[key] < b[key])
        return ends[0] > ends[3] if up else ends[1] < ends[2]
    return [str(1 + sum(clearly_better(o, r) for o in have if o is not r)) if r.get(key) is not None else "–"
            for r in rows]


def _table(rows: list[dict], id_fields: tuple[str, ...], bold: dict[str, int], columns=COLUMNS,
           ranks: list[str] | None = None) -> list[str]:
    head = ["#", *id_fields, *[f"{c.title}{c.arrow}[^{c.key}]" for c in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows):
        cells = [ranks[i] if ranks else "–"]
        cells += [f"`{_cell(r[f])}`" if f == "model" else _cell(r[f]) for f in id_fields]
        for c in columns:
            text = value_text(c, r)
            cells.append(f"**{text}**" if bold.get(c.key) == i else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


LEGEND = ("Values are ± the half-width of their 95% interval (footnotes say how each was made; ↑ higher is better, "
          "↓ lower is better; – not measured). Bold: best value in a column that separates every ranked model "
          "from its controls in the right direction, with an interval clear of the runner-up's; the footnote "
          "gives each column's verdict.")

_VERDICT_TEXT = {SEPARATES: "**Separates** every ranked model from its controls in the right direction (the "
                            "gap's 95% interval lies strictly on the good side).",
                 NO_SEPARATION: "**Does not separate trained from random:** {why}. Never bold.",
                 CONTROL_BETTER: "**Control is better:** {why}. Never bold.",
                 UNKNOWN: "**Verdict unknown:** {why}. Never bold."}


def verdict_text(v) -> str:
    """The footnote's sentence on a column's verdict ("" for reference columns or no values)."""
    if v is None or v.verdict is None:
        return ""
    return _VERDICT_TEXT[v.verdict].format(why=v.why or "no control result")


def footnote(col, rows: list[dict], verdict, docs_url: str = DOCS_URL) -> str:
    """One metric's footnote: definition, how its intervals were made, its verdict, docs link."""
    parts = [f"[^{col.key}]: {col.title}: {col.note}", interval_note(col, rows), verdict_text(verdict),
             f"See [docs/metrics.md]({docs_url}#{col.anchor})."]
    return " ".join(p for p in parts if p)


def headline_block(rows: list[dict], verdicts: dict, rank) -> list[str]:
    """The first table of a page: `#`, model and the headline columns (leaderboard/ranking.py)."""
    from interpbench.leaderboard.ranking import headline_columns

    cols = headline_columns(verdicts, rows, rank.col if rank else None)
    bold = bold_rows(rows, cols, verdicts)
    lines = ["## Headline", ""]
    lines += _table(rows, ("model",), bold, cols, _rank_cells(rows, rank.col if rank else None))
    unknown = [c.title for c in cols if c.key not in HEADLINE_ALWAYS
               and verdicts.get(c.key) is not None and verdicts[c.key].verdict == UNKNOWN]
    lines += ["", "Columns: zero-shot, L0 and reconstruction, and the metrics that separate every ranked model "
                  "from its controls" + (f"; verdict unknown (shown because no control refutes them yet, see "
                                         f"their footnotes): {', '.join(unknown).rstrip('.')}" if unknown else "")
              + ". Every column is in the full table and the CSV."]
    return lines


def markdown_table(title: str, rows: list[dict], id_fields: tuple[str, ...], intro: str = "",
                   docs_url: str = DOCS_URL, controls: list[dict] | None = None,
                   verdicts: dict | None = None, rank=None, commands: list[str] | None = None) -> str:
    """A Markdown page: heading, intro, what `#` means (`rank`, leaderboard/ranking.py), the
    headline table, the full table, a Controls table (never ranked or bold) and one footnote
    per metric (definition, intervals, verdict). `rows` come sorted by the rank; `commands`
    would produce the controls that "unknown" verdicts lack (leaderboard/verdicts.py)."""
    verdicts = verdicts or {}
    lines = [f"# {title}", ""]
    lines += [intro, ""] if intro else []
    lines += [rank.text, ""] if rank else []
    lines += headline_block(rows, verdicts, rank)
    if commands:
        lines += ["", "## Missing controls", "", "Verdicts marked unknown need control results. Run, then "
                  "`interpbench validate-metrics` and `interpbench leaderboard` again:", ""]
        lines += [f"    {c}" for c in commands]
    lines += ["", "## Full table", ""]
    lines += _table(rows, id_fields, bold_rows(rows, COLUMNS, verdicts), COLUMNS,
                    _rank_cells(rows, rank.col if rank else None))
    lines += ["", LEGEND]
    if "settings" in id_fields:
        lines.append("settings: hash of the evaluation settings (the `settings` object of the results JSON).")
    if controls:
        lines += ["", "## Controls", "",
                  "Random representations of the same shape as a contestant (`control`: kind of control, "
                  "and the model it copies). Not ranked; nothing bold.", ""]
        lines += _table(controls, (*id_fields, "control"), {})
    lines.append("")
    everything = rows + (controls or [])
    lines += [footnote(c, everything, verdicts.get(c.key), docs_url) for c in COLUMNS]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict], id_fields: tuple[str, ...], controls: list[dict] | None = None,
             rank_col=None) -> str:
    """Full-precision CSV of the same rows and then the controls (rank empty, `control` set;
    rank empty too without a rank column, or where a row lacks its value):
    each metric with its interval ends `<key>_lo`, `<key>_hi` (empty where not measured)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", *id_fields, "control",
                     *[k for c in COLUMNS for k in (c.key, f"{c.key}_lo", f"{c.key}_hi")],
                     *[f"seconds_{s}" for s in STAGES]])  # where each run's time went
    ranks = [("" if x == "–" else x) for x in _rank_cells(rows, rank_col)]
    for rank, r in list(zip(ranks, rows, strict=True)) + [("", r) for r in controls or []]:
        metrics = ["" if r.get(k) is None else repr(r[k]) for c in COLUMNS
                   for k in (c.key, f"{c.key}_lo", f"{c.key}_hi")]
        timings = r.get("timings") or {}
        writer.writerow([rank, *[r[f] for f in id_fields], r.get("control", ""), *metrics,
                         *[timings.get(s, "") for s in STAGES]])
    return buf.getvalue()
