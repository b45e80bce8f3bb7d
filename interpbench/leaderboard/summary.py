"""The table `interpbench evaluate` prints at the end: the leaderboard's headline columns.

The columns are chosen exactly as the leaderboard page's headline table (leaderboard/ranking.py)
from every result in the results folder on the same data and settings as this run, so the
controls of an earlier `evaluate --controls` count; each cell is value ± the half-width of its
95% interval, each header carries ↑/↓.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.leaderboard.columns import COLUMNS
from interpbench.leaderboard.ranking import choose_rank, headline_columns
from interpbench.leaderboard.records import not_a_row, select
from interpbench.leaderboard.tables import record_row, value_text
from interpbench.leaderboard.verdicts import UNKNOWN, missing_commands, page_verdicts, shown_dir
from interpbench.results.store import read_results, settings_hash


def _peers(written: list[tuple[dict, Path]], results_dir: Path) -> list[dict]:
    """Results in the folder on the same data set and settings as the `written` ones (these
    included, also when the folder cannot be read back)."""
    keys = {(r["dataset"]["name"], settings_hash(r["settings"])) for r, _ in written}
    stored, _ = read_results(results_dir) if Path(results_dir).is_dir() else ([], [])
    same = [r for r in stored if not_a_row(r) is None
            and (r["dataset"]["name"], settings_hash(r["settings"])) in keys]
    seen = {Path(r["_path"]).resolve() for r in same}
    return same + [r for r, path in written if Path(path).resolve() not in seen]


def summary_rows(written: list[tuple[dict, Path]], results_dir: Path) -> tuple[list, list, list[str]]:
    """(headline columns, [(model name, cells)] per written record, notes to print under the table)."""
    sel = select(_peers(written, results_dir))
    verdicts = page_verdicts(COLUMNS, sel.contestants, sel.controls)
    rows = [record_row(r) for r in sel.contestants]
    rank = choose_rank(verdicts, rows)
    cols = headline_columns(verdicts, rows + [record_row(r) for r in sel.controls], rank.col)
    out = []
    for r, _ in written:
        row = record_row(r)
        out.append((r["model"].get("name") or r["model"]["spec"], [value_text(c, row) for c in cols]))
    notes = []
    unknown = [c.title for c in cols if verdicts.get(c.key) and verdicts[c.key].verdict == UNKNOWN]
    commands = missing_commands(verdicts, sel.contestants, shown_dir(results_dir))
    if unknown and commands:
        notes.append(f"Verdict unknown for {', '.join(unknown)}: no control result. Add the controls with "
                     f"`interpbench evaluate --controls` or: " + " ; ".join(f"`{c}`" for c in commands))
    notes.append("Columns as the leaderboard's headline: zero-shot, L0, reconstruction and the metrics that "
                 "separate trained from random (`interpbench leaderboard` and `validate-metrics` give the rest).")
    return cols, out, notes


def stage_line(record) -> str:
    """'extraction 41.2 s, captions 3.0 s, ...' from a results record's `timings`."""
    timings = record.get("timings") or {}
    return ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if v) or "no stage timings recorded"


def route_line(record) -> str | None:
    """'labels: text route (also: decoder, images)' from a record's `label_routes`."""
    routes = record.get("label_routes") or {}
    if not routes.get("primary"):
        return None
    others = ", ".join(r for r in routes.get("routes", {}) if r != routes["primary"]) or "none"
    return f"labels: {routes['primary']} route (also: {others})"


def print_summary(records: list[tuple[dict, Path]], results_dir: Path, verbose: bool = False) -> None:
    from rich.table import Table

    from interpbench.console import output_console

    cols, rows, notes = summary_rows(records, results_dir)
    table = Table(title="interpbench results (value ± half-width of the 95% interval)")
    # Names and numbers never wrap or shrink: a cut "sha…" or "0.2…" cell is worse than a wide line.
    table.add_column("model", no_wrap=True, min_width=max((len(name) for name, _ in rows), default=5))
    for col in cols:
        table.add_column(f"{col.title}{col.arrow}", justify="right", no_wrap=True)
    for name, cells in rows:
        table.add_row(name, *cells)
    console = output_console()
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True)
    for record, path in records:
        console.print(f"wrote {path}  ({record['timing']['wall_time_s']:.1f} s)")
        if route_line(record):
            console.print(f"  {route_line(record)}", highlight=False)
        if verbose:
            console.print(f"  stages: {stage_line(record)}", highlight=False)
