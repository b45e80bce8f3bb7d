"""`interpbench evaluate`: evaluate models on a data set and write results JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_MODELS = ["shapes:dense", "shapes:sparse", "shapes:sae", "shapes:sae-resid"]


def evaluate(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model spec; repeat for several. "
                                                    "Default: the shipped reference models.")] = None,
    dataset: Annotated[str, typer.Option(help="Data spec: shapes[:SPLIT], shapes-spurious, folder:DIR, "
                                          "table:FILE, coco:FILE, wds:SHARDS, clip_benchmark:NAME "
                                          "(docs/data.md).")] = "shapes",
    n_images: Annotated[int, typer.Option(help="Number of images to evaluate on.")] = 2000,
    judge: Annotated[str, typer.Option(help="Judge for Clarity and label correlation: 'groundtruth' (the "
                                       "data set's concept vectors; Shapes) or a model spec that is not "
                                       "being ranked. Data without ground truth needs a model spec.")] = "groundtruth",
    vocab: Annotated[str, typer.Option(help="Vocabulary name (see `interpbench vocab list`) or a text file.")] = "shapes",
    template: Annotated[str, typer.Option(help="Prompt template for vocabulary words, e.g. 'a photo of a {}'.")] = "{}",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
    cache_dir: Annotated[Path | None, typer.Option(help="Activation cache (default ~/.cache/interpbench "
                                                   "or $INTERPBENCH_CACHE).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data and any sampling; recorded in results.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 256,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples B for the 95% interval of every metric "
                                           "(seeded by --seed, from the cached rows; 0 = no intervals).")] = 200,
    cf_scenes: Annotated[int | None, typer.Option(help="One-object Shapes scenes for counterfactual selectivity "
                                                  "(each rendered with 5 single-attribute edits); 0 skips it. "
                                                  "Default: min(200, n_images / 10).")] = None,
    skip_unreadable: Annotated[bool, typer.Option("--skip-unreadable", help="Leave out images that cannot be "
                                                  "decoded (folder:, table:, ...) instead of stopping at the "
                                                  "first; their count and names go in the results.")] = False,
    controls: Annotated[bool, typer.Option("--controls", help="Also evaluate each model's matching random "
                                           "controls (random codes for every model; a random-decoder SAE for an "
                                           "SAE, an untrained CLIP for a CLIP), which the leaderboard's and "
                                           "validate-metrics' verdicts need.")] = False,
    no_zeroshot: Annotated[bool, typer.Option("--no-zeroshot", help="Skip zero-shot accuracy.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network (also HF_HUB_OFFLINE=1).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print each model's seconds per stage "
                                          "(extraction, captions, vocabulary, metrics, ...).")] = False,
):
    """Evaluate sparse representations and write one results JSON per (model, data set)."""
    import os

    from interpbench.cli.common import progress_tasks
    from interpbench.evaluation.runner import (
        EvalSettings,
        RunContext,
        default_cache,
        evaluate_model,
        resolve_device,
    )
    from interpbench.leaderboard.summary import print_summary
    from interpbench.leaderboard.trajectory import expand_model_globs
    from interpbench.results.store import write_result
    from interpbench.specs import with_controls

    if offline or os.environ.get("HF_HUB_OFFLINE") == "1":
        os.environ["HF_HUB_OFFLINE"] = "1"
        offline = True
    settings = EvalSettings(dataset=dataset, n_images=n_images, seed=seed, judge=judge, vocab=vocab,
                            template=template, zeroshot=not no_zeroshot, batch_size=batch_size,
                            bootstrap=bootstrap, cf_scenes=cf_scenes, skip_unreadable=skip_unreadable)
    # Under torchrun: join the process group; each rank scores its shard, rank 0 writes.
    from interpbench.distributed import init_from_env, shutdown

    shard, rank_device = init_from_env(device)
    ctx = RunContext(device=rank_device or resolve_device(device), cache_dir=cache_dir or default_cache(),
                     offline=offline, results_dir=results if shard.is_main else None,
                     note=_note if shard.is_main else None)
    records = []
    with progress_tasks(not quiet and shard.is_main) as task:
        ctx.task = task
        specs = expand_model_globs(model or DEFAULT_MODELS)
        for spec in with_controls(specs) if controls else specs:
            record, per_feature, labels = evaluate_model(spec, settings, ctx)
            if shard.is_main:
                path = write_result(results, record, per_feature, labels)
                records.append((record, path))
    shutdown()
    if shard.is_main:
        print_summary(records, results, verbose=verbose)


def _note(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)  # beside the progress bars, not in the results on stdout
