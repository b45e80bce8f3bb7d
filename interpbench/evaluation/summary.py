"""A short rich table of the key numbers after `interpbench evaluate`."""

from __future__ import annotations

COLUMNS = [("clarity", "Clarity"), ("clarity_baseline", "baseline"), ("active_features_pct", "Active F%"),
           ("l0", "L0"), ("multimodal_fraction", "multimodal"), ("label_corr_mean", "label corr"),
           ("gt_coverage", "GT cov."), ("gt_label_accuracy", "GT label acc."), ("zeroshot_mean", "zero-shot"),
           ("fvu", "FVU")]


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def stage_line(record) -> str:
    """'extraction 41.2 s, captions 3.0 s, ...' from a results record's `timings`."""
    timings = record.get("timings") or {}
    return ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if v) or "no stage timings recorded"


def cell(record: dict, key: str) -> str:
    """The value, or "n/a: <why>" where the record marks the metric as not applicable."""
    from interpbench.leaderboard.label_routes import unavailable_text

    v = record["metrics"].get(key)
    return (v is None and unavailable_text(record, key)) or _fmt(v)


def print_summary(records, verbose: bool = False) -> None:
    from rich.table import Table

    from interpbench.console import output_console

    table = Table(title="interpbench results")
    # Names and numbers never wrap or shrink: a cut "sha…" or "0.2…" cell is worse than a wide line.
    table.add_column("model", no_wrap=True, min_width=max((len(r["model"]["name"]) for r, _ in records), default=5))
    for _, title in COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for record, _path in records:
        table.add_row(record["model"]["name"], *[cell(record, k) for k, _ in COLUMNS])
    console = output_console()
    console.print(table)
    for record, path in records:
        console.print(f"wrote {path}  ({record['timing']['wall_time_s']:.1f} s)")
        if verbose:
            console.print(f"  stages: {stage_line(record)}", highlight=False)
        routes = record.get("label_routes") or {}
        if routes.get("primary"):
            console.print(f"  labels: {routes['primary']} route (also: "
                          f"{', '.join(r for r in routes.get('routes', {}) if r != routes['primary']) or 'none'})")
