"""`interpbench explore` (feature cards) and `interpbench search` (images by label word)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()

Model = Annotated[str, typer.Option("--model", "-m", help="Model spec (see `interpbench models`).")]
Results = Annotated[Path, typer.Option(help="Results folder; the model is evaluated into it first if "
                                       "it has no result for these settings.")]
Out = Annotated[Path, typer.Option(help="Folder for the PNG cards and index.html.")]
Dataset = Annotated[str, typer.Option(help="Data spec, as for `interpbench evaluate`.")]
NImages = Annotated[int, typer.Option(help="Number of images, as for `interpbench evaluate`.")]
Judge = Annotated[str, typer.Option(help="Judge spec, as for `interpbench evaluate`.")]
Vocab = Annotated[str, typer.Option(help="Vocabulary, as for `interpbench evaluate`.")]
Template = Annotated[str, typer.Option(help="Prompt template, as for `interpbench evaluate`.")]
Seed = Annotated[int, typer.Option(help="Seed, as for `interpbench evaluate`.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")]
CacheDir = Annotated[Path | None, typer.Option(help="Activation cache (default as for evaluate).")]


def _session(model, results, dataset, n_images, judge, vocab, template, seed, device, cache_dir):
    from interpbench.evaluation.cards import evaluated_record
    from interpbench.evaluation.runner import EvalSettings, RunContext, default_cache, resolve_device
    from interpbench.leaderboard.explore import open_session

    settings = EvalSettings(dataset=dataset, n_images=n_images, seed=seed, judge=judge, vocab=vocab,
                            template=template)
    ctx = RunContext(device=resolve_device(device), cache_dir=cache_dir or default_cache())
    # Evaluation produces and stores what cards need; the leaderboard side renders from that record.
    return open_session(evaluated_record(model, settings, ctx, results))


def _folder(out: Path, session) -> Path:
    from interpbench.ioutils import atomic_write_text
    from interpbench.results.store import slug

    folder = out / slug(session.record["model"]["spec"])
    atomic_write_text(folder / "SPEC", session.record["model"]["spec"] + "\n")
    return folder


@app.command()
def explore(
    model: Model,
    feature: Annotated[list[int] | None, typer.Option("--feature", "-f", help="Feature index; repeat.")] = None,
    top: Annotated[int, typer.Option(help="Also card the M top features by --rank.")] = 0,
    rank: Annotated[str, typer.Option(help="'active' (mean activation) or 'clarity'.")] = "active",
    min_images: Annotated[int | None, typer.Option(help="--rank clarity: only features active on at least "
                                                   "this many images (default: the result's top_n, 20); "
                                                   "Clarity on 2-3 images is high by chance.")] = None,
    n_top_images: Annotated[int, typer.Option(help="Images per card.")] = 16,
    results: Results = Path("results"), out: Out = Path("explore"), dataset: Dataset = "shapes",
    n_images: NImages = 2000, judge: Judge = "groundtruth", vocab: Vocab = "shapes", template: Template = "{}",
    seed: Seed = 0, device: Device = "auto", cache_dir: CacheDir = None,
):
    """Write a PNG card per feature (top images, top words, modality score, Clarity) and index.html."""
    from interpbench.errors import BadSpecError
    from interpbench.leaderboard import explore as ex
    from interpbench.leaderboard import render

    if not feature and top < 1:
        raise BadSpecError("give --feature N (repeatable) and/or --top M")
    s = _session(model, results, dataset, n_images, judge, vocab, template, seed, device, cache_dir)
    ranked = ex.rank_features(s, rank, top, min_images) if top else []
    if top and rank == "clarity":
        n_min = ex.default_min_images(s) if min_images is None else min_images
        typer.echo(f"the {len(ranked)} clearest of the features active on >= {n_min} images "
                   f"({int((s.fire_count >= n_min).sum())} of {s.n_features}; --min-images changes it)")
    features = list(dict.fromkeys([*(feature or []), *ranked]))
    folder = _folder(out, s)
    for info in ex.cards(s, features, n_top_images):
        path = render.save_card(render.draw_card(s.record["model"]["spec"], s.source, info),
                                folder / f"feature_{info['feature']:06d}.png")
        words = ", ".join(w for w, _ in info["top_words"][:5]) or "(no label)"
        typer.echo(f"feature {info['feature']}: {info['n_active_images']} images, Clarity "
                   f"{render._fmt(info['clarity'])}, modality {render._fmt(info['modality_score'])}, "
                   f"words: {words} -> {path}")
    typer.echo(f"index: {render.write_index(out, 'interpbench feature cards')}")


@app.command()
def search(
    word: Annotated[str, typer.Argument(help="A vocabulary word, e.g. cat.")],
    model: Model,
    n_top_images: Annotated[int, typer.Option(help="Images to show.")] = 8,
    depth: Annotated[int, typer.Option(help="Match WORD among each feature's first DEPTH top words "
                                       "(1 = its label only).")] = 1,
    results: Results = Path("results"), out: Out = Path("explore"), dataset: Dataset = "shapes",
    n_images: NImages = 2000, judge: Judge = "groundtruth", vocab: Vocab = "shapes", template: Template = "{}",
    seed: Seed = 0, device: Device = "auto", cache_dir: CacheDir = None,
):
    """Find images where features labelled WORD fire; show each image's top 10 concepts."""
    from interpbench.leaderboard import explore as ex
    from interpbench.leaderboard import render
    from interpbench.results.store import slug

    s = _session(model, results, dataset, n_images, judge, vocab, template, seed, device, cache_dir)
    result = ex.search(s, word, n_top_images, depth=depth)
    path = render.save_card(render.draw_search(s.record["model"]["spec"], s.source, result),
                            _folder(out, s) / f"search_{slug(word)}.png")
    feats = result["features"]
    more = f" ... ({len(feats)} in all)" if len(feats) > 20 else ""
    typer.echo(f"features {render.search_title(result)}: {feats[:20]}{more}")
    for hit in result["images"]:
        typer.echo(f"image {hit['image']} (score {hit['score']:.3f}): "
                   + ", ".join(f"{w} {a:.2f}" for w, a in hit["concepts"]))
    typer.echo(f"wrote {path}; index: {render.write_index(out, 'interpbench feature cards')}")
