"""`interpbench train`: train the reference models (CLIPs and TopK SAEs) from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _bar(description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                        TimeElapsedColumn())
    task = progress.add_task(description, total=None, loss="-")

    def update(step, total, loss):
        progress.update(task, completed=step, total=total, loss=f"{loss:.4f}")

    return progress, update


@app.command()
def clip(
    preset: Annotated[str, typer.Argument(help="dense, sparse or spurious")],
    out: Annotated[Path | None, typer.Option(help="Output model folder (default: the shipped reference folder).")] = None,
    steps: Annotated[int | None, typer.Option(help="Run every phase for this many steps (quick runs; default: the preset's).")] = None,
    checkpoints: Annotated[Path | None, typer.Option(
        help="sparse only: also save model folders at 1, 3, 10, 30 and 100% of training here (for `interpbench trajectory`).")] = None,
    ablation: Annotated[Path | None, typer.Option(
        help="sparse only: instead of training the preset, run the recipe ablation (expansion x sparsity inducer x "
             "logit-scale cap) and write its table into this folder.")] = None,
):
    """Train shapes:dense, shapes:sparse or shapes:spurious on the Shapes world (seed 0) and write its model card."""
    from interpbench.errors import BadSpecError
    from interpbench.training.reference import CLIP_PRESETS, build_clip, build_sparse_clip

    if preset not in CLIP_PRESETS:
        raise BadSpecError(f"unknown CLIP preset {preset!r}; expected one of {list(CLIP_PRESETS)}")
    if (checkpoints or ablation) and preset != "sparse":
        raise BadSpecError(f"--checkpoints and --ablation apply to the sparse preset only, not {preset!r}")
    if ablation is not None:
        from interpbench.training.sparse_ablation import run_ablation

        written = run_ablation(ablation, progress=lambda row: typer.echo(
            f"  x{row['expansion']} {row['inducer']} cap {row['logit_scale_cap']:g}: image L0 {row['image_l0']}, "
            f"zero-shot {row['zeroshot_mean']:.3f}, {row['train_time_s']:.0f} s"))
        typer.echo(f"wrote {written}")
        return
    progress, update = _bar(f"train {preset}")
    with progress:
        if preset == "sparse":
            from interpbench.training.reference import REFERENCE_DIR, train_command

            folder = build_sparse_clip(Path(out or REFERENCE_DIR / "sparse"), steps, progress=update,
                                       checkpoints=checkpoints, command=train_command("sparse", steps, out)
                                       + (f" --checkpoints {checkpoints}" if checkpoints else ""))
        else:
            folder = build_clip(preset, out, steps, progress=update)
    typer.echo(f"wrote {folder} (see {folder / 'MODEL_CARD.md'})")


@app.command()
def sae(
    base: Annotated[Path | None, typer.Option(help="Base CLIP model folder (default: shipped shapes:dense).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output SAE folder (default: the shipped reference folder); "
                                             "with --seeds, the parent of the per-seed folders (default ./runs).")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated training seeds, e.g. 0,1,2: one SAE of the same "
                                              "recipe per seed, in OUT/sae-seed{N} (reseed stability).")] = None,
    preset: Annotated[str, typer.Option(help="Which shipped SAE: sae (shapes:sae, on the image embedding) or "
                                        "sae-resid (shapes:sae-resid, on the last block's residual stream at the "
                                        "class token).")] = "sae",
):
    """Train a shipped TopK SAE on the base CLIP's Shapes activations and write its model card."""
    from interpbench.errors import BadSpecError
    from interpbench.training.reference import SAE_PRESETS, build_sae

    if preset not in SAE_PRESETS:
        raise BadSpecError(f"unknown SAE preset {preset!r}; expected one of {list(SAE_PRESETS)}")
    if seeds is not None:
        if preset != "sae":
            raise BadSpecError(f"--seeds reseeds shapes:sae's recipe only, not --preset {preset}")
        return _sae_seeds(base, out, seeds)
    progress, update = _bar(f"train {preset}")
    with progress:
        folder = build_sae(base, out, progress=update, preset=preset)
    typer.echo(f"wrote {folder} (see {folder / 'MODEL_CARD.md'})")


def _sae_seeds(base: Path | None, out: Path | None, seeds: str) -> None:
    from interpbench.errors import BadSpecError
    from interpbench.training.reference import build_sae_seeds

    try:
        values = [int(s) for s in seeds.split(",")]
        if len(set(values)) != len(values) or min(values) < 0:
            raise ValueError
    except ValueError:
        raise BadSpecError(f"--seeds {seeds!r}: expected distinct non-negative integers separated by commas, "
                           "e.g. --seeds 0,1,2") from None
    progress, update = _bar("train sae seeds")
    with progress:
        built = build_sae_seeds(values, base, out, progress=update)
    for folder, record in built:
        seed = record["config"]["seed"]
        where = folder if folder.is_absolute() or str(folder).startswith(".") else f"./{folder}"  # a path, not ORG/REPO
        typer.echo(f"wrote {folder} (seed {seed}, {record['wall_time_s']} s training); evaluate it with "
                   f"interpbench evaluate --model sae:interpbench:{where}@shapes:dense")
