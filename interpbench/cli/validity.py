"""`interpbench validate-metrics`: the metric-validity report from a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def validate_metrics(
    results: Annotated[Path, typer.Option(help="Results folder: trained models, their controls "
                                          "(model.control) and reseeded runs (model.train_seed).")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Markdown report; the JSON goes beside it (.json).")]
    = Path("leaderboards/validity.md"),
):
    """Per metric: gap to the random control, reseed spread, agreement with ground truth, and
    whether it moves when the image-caption pairing is broken; then label validity per labelling
    route (text, decoder, images) against the controls."""
    from interpbench.cli.leaderboard import report_skipped
    from interpbench.leaderboard.build import load_records
    from interpbench.leaderboard.label_validity import append_label_validity
    from interpbench.leaderboard.validity import write_validity

    records, skipped = load_records(results)
    report_skipped(skipped)
    written, report = write_validity(records, out, results)
    append_label_validity(records, out)  # its own section (label routes vs their controls), same files
    typer.echo(f"{len(records)} results -> " + ", ".join(map(str, written)))
    for m in report["metrics"]:  # the closing verdicts: never "all fine" when nothing was compared
        if m["verdict"] is not None:
            why = f": {m['why']}" if m["why"] and m["verdict"] != "separates" else ""
            typer.echo(f"{m['title']}: {m['verdict']}{why}")
    if report["missing_controls"]:
        typer.echo("Missing controls (unknown verdicts need them):\n" +
                   "\n".join(f"  {c}" for c in report["missing_controls"]))
