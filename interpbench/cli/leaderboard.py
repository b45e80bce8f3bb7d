"""`interpbench leaderboard` and `interpbench trajectory`: tables and plots from a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


def report_skipped(skipped) -> None:
    """Name every results file that was not used, and why: nothing is merged silently."""
    for path, why in skipped:
        typer.secho(f"skipped {path}: {why}", fg=typer.colors.YELLOW, err=True)


@app.command()
def leaderboard(
    results: Annotated[Path, typer.Option(help="Results folder written by `interpbench evaluate`.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Folder for the Markdown/CSV tables and plots.")] = Path("leaderboards"),
    docs_url: Annotated[str, typer.Option(help="Link target of the metric footnotes, relative to --out.")]
    = "../docs/metrics.md",
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Tables only (faster).")] = False,
    rank_by: Annotated[str | None, typer.Option(help="Column the `#` rank uses (key or title, e.g. "
                                                "label_correlation_mean). Default: the first column of the "
                                                "documented order that separates every ranked model from its "
                                                "controls (docs/metrics.md#ranking).")] = None,
):
    """Write Markdown + CSV leaderboards (one per data set and one overall) and plots."""
    from interpbench.leaderboard.build import build_leaderboard
    from interpbench.leaderboard.columns import find_column

    if rank_by is not None:
        find_column(rank_by)  # a clear error before any work
    report = build_leaderboard(results, out, docs_url=docs_url, with_plots=not no_plots, rank_by=rank_by)
    report_skipped(report.skipped)
    for page, title in report.ranks:
        typer.echo(f"{page}: " + (f"ranked by {title}" if title else "no single rank (the page says why)"))
    typer.echo(f"{report.n_records} results -> {len(report.written)} files in {out} "
               f"(index: {out / 'README.md'})")


@app.command()
def trajectory(
    results: Annotated[Path, typer.Option(help="Results folder holding evaluations of checkpoints.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Folder for the trajectory plots and tables.")] = Path("trajectories"),
    feature: Annotated[list[int] | None, typer.Option("--feature", "-f", help="Feature whose top words to "
                                                      "follow; repeat. Default: the 5 clearest at the last step.")]
    = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only these model specs "
                                                    "(default: every result with a training step).")] = None,
):
    """Plot each metric against training step over evaluated checkpoints, and follow top words."""
    from interpbench.leaderboard.trajectory import build_trajectory

    report = build_trajectory(results, out, features=feature, models=model)
    report_skipped(report.skipped)
    typer.echo(f"{report.n_records} checkpoints -> {len(report.written)} files in {out}")
