"""`interpbench analyze`: steering/ablation and latent-space analyses (docs/analyses.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


@app.command()
def run(
    model: Annotated[list[str], typer.Argument(help="Model specs (e.g. shapes:dense shapes:sparse shapes:sae).")],
    dataset: Annotated[str, typer.Option(help="Data spec with Shapes ground truth.")] = "shapes",
    n_images: Annotated[int, typer.Option(help="Eval images (evaluate's default, so the leaderboard rows match).")]
    = 2000,
    what: Annotated[str, typer.Option(help="Comma list: steering, latent.")] = "steering,latent",
    strengths: Annotated[str, typer.Option(help="Steering strengths s (boost = s x image's max activation).")]
    = "0,0.5,1,2,4,8",
    ks: Annotated[str, typer.Option(help="Numbers of label features per class.")] = "1,2,4",
    k_ref: Annotated[int, typer.Option(help="k at which steerability is read.")] = 2,
    s_ref: Annotated[float, typer.Option(help="Strength at which steerability is read.")] = 2.0,
    vocab: Annotated[str, typer.Option(help="Vocabulary for feature labels (name or file).")] = "shapes",
    baseline: Annotated[str, typer.Option(help="Dense CLIP spec for the retrieval baseline, or auto.")] = "auto",
    jaccard: Annotated[float, typer.Option(help="Jaccard threshold for duplicate features.")] = 0.9,
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    figures: Annotated[Path | None, typer.Option(help="Folder for PNG figures (none if unset).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Activation cache folder.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for data, targets and controls; recorded.")] = 0,
):
    """Run the analyses on each model and write RESULTS/<dataset>/analysis/<model>.json."""
    from interpbench.analysis.run import AnalysisSettings, run_analyses, write_analysis
    from interpbench.evaluation.runner import default_cache, resolve_device

    settings = AnalysisSettings(dataset=dataset, n_images=n_images, seed=seed, strengths=_floats(strengths),
                                ks=tuple(int(k) for k in _floats(ks)), k_ref=k_ref, s_ref=s_ref, vocab=vocab,
                                baseline=baseline, jaccard=jaccard,
                                which=tuple(w.strip() for w in what.split(",") if w.strip()))
    dev = str(resolve_device(device))
    for spec in model:
        record = run_analyses(spec, settings, cache_dir or default_cache(), dev, figures)
        path = write_analysis(results, record)
        m = ", ".join(f"{k} {v:.3f}" for k, v in record["metrics"].items() if v is not None)
        typer.echo(f"{spec}: {m}\n  wrote {path}")


@app.command()
def report(
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    out: Annotated[Path, typer.Option(help="Output folder (Markdown + steering PNG).")] = Path("leaderboards/analyses"),
):
    """Render analysis results as Markdown and a success-vs-strength plot per model."""
    from interpbench.analysis import plots
    from interpbench.analysis.report import markdown, read_analyses
    from interpbench.ioutils import atomic_write_text

    records = read_analyses(results)
    plots.plot_steering(records, out / "steering-vs-strength.png")
    atomic_write_text(out / "README.md", markdown(records, figure_dir=out))
    typer.echo(f"wrote {out / 'README.md'} and {out / 'steering-vs-strength.png'} ({len(records)} models)")
