"""`interpbench decompose ...`: layer/head/token decomposition and TextSpan on Shapes.

Every command takes --model (an open_clip model folder, or shapes:dense / shapes:sparse),
--n-images, --seed and --out DIR. Results go to DIR/<model slug>.json (one record per model;
each command fills its own section, written atomically, with its settings and seed) and
figures to DIR/<model slug>/<command>.png. `decompose all` runs every command, fitting
TextSpan once.
"""

from __future__ import annotations

from pathlib import Path

import typer

from interpbench.errors import InterpbenchError

app = typer.Typer(help="Decompose a CLIP ViT's image embedding into layers, heads and tokens; TextSpan.",
                  no_args_is_help=True)

MODEL = typer.Option(..., "--model", help="open_clip model folder (local-dir layout), or shapes:dense / shapes:sparse")
N_IMAGES = typer.Option(400, "--n-images", help="Shapes images per split (fit split and scored split)")
OUT = typer.Option(Path("results/decomposition"), "--out", help="results folder (JSON per model, PNGs beside it)")
SEED = typer.Option(0, "--seed", help="Shapes data seed; also seeds probes and random heads")
N_TEXTS = typer.Option(10, "--texts-per-head", help="TextSpan texts per head")
LAYERS = typer.Option(None, "--last-layers", help="run TextSpan on the last N layers (default: min(4, all))")
POOL = typer.Option("shapes", "--pool", help="text pool: shapes, general, shapes+general, or a text file")
RANK = typer.Option(None, "--rank", help="TextSpan projection rank (default: head dimension)")
N_HEADS = typer.Option(None, "--n-heads", help="spurious: ablate this many top background heads "
                       "(default: every head with >= 50% background texts)")
N_RANDOM = typer.Option(5, "--n-random", help="spurious: random-head draws; the best is reported")


def _settings(n_images, seed, n_texts=10, n_layers=None, pool="shapes", rank=None):
    from interpbench.decomposition.pipeline import Settings

    return Settings(n_images=n_images, seed=seed, n_texts=n_texts, n_layers=n_layers, pool=pool, rank=rank)


def _write(out: Path, command: str, settings, model: str, results: dict, **extra) -> Path:
    from interpbench.decomposition.record import result_path, update_record

    path = result_path(out, model)
    update_record(path, command, settings, model, results, **extra)
    return path


def _figure(out: Path, model: str, command: str) -> Path:
    from interpbench.decomposition.record import figure_dir

    return figure_dir(out, model) / f"{command}.png"


def _run(fn):
    """Print interpbench errors as one line and exit with their code."""
    try:
        return fn()
    except InterpbenchError as err:
        typer.echo(f"error ({err.kind}): {err}", err=True)
        raise typer.Exit(err.exit_code) from err


def _load(model: str):
    from interpbench.decomposition.inputs import load_model

    m, tok, _ = load_model(model)
    return m, tok


def _do_heads(m, tok, s, model, out, fit=None):
    from interpbench.decomposition.pipeline import run_heads
    from interpbench.decomposition.plots import head_texts_png

    results, extras = run_heads(m, tok, s, fit)
    path = _write(out, "heads", s, model, results)
    head_texts_png(extras["textspan"], _figure(out, model, "heads"))
    typer.echo(f"wrote {path} and {_figure(out, model, 'heads')}")
    typer.echo(f"  {results['n_distinct_texts']} distinct texts, {len(results['duplicates'])} picked by >1 head")
    for attr, acc in results["reconstruction_accuracy"].items():
        typer.echo(f"  {attr:<11} base {acc['base']:.3f}  early-ablated {acc['early_layers_ablated']:.3f}  "
                   f"textspan {acc['textspan']:.3f}")


def _do_roles(m, tok, s, model, out, fit=None):
    from interpbench.decomposition.pipeline import run_roles
    from interpbench.decomposition.plots import roles_png

    results, extras = run_roles(m, tok, s, fit)
    path = _write(out, "roles", s, model, results)
    roles_png(extras["skill"], extras["rows"], results["attributes"], _figure(out, model, "roles"))
    typer.echo(f"wrote {path} and {_figure(out, model, 'roles')}")
    typer.echo(role_table_text(results))


def _do_segment(m, tok, s, model, out):
    from interpbench.decomposition.pipeline import run_segment
    from interpbench.decomposition.plots import segmentation_png

    results, extras = run_segment(m, tok, s)
    path = _write(out, "segment", s, model, results)
    segmentation_png(extras["images"], extras["masks"], extras["maps"], _figure(out, model, "segment"))
    typer.echo(f"wrote {path} and {_figure(out, model, 'segment')}")
    for method, sc in results["scores"].items():
        typer.echo(f"  {method:<14} pixel acc {sc['pixel_accuracy']:.3f}  mIoU {sc['miou']:.3f}  "
                   f"mAP {sc['map']:.3f}")


def _do_ablate(m, tok, s, model, out):
    from interpbench.decomposition.pipeline import run_ablate

    results, _ = run_ablate(m, tok, s)
    typer.echo(f"wrote {_write(out, 'ablate', s, model, results)}")
    for attr, acc in results["accuracy"].items():
        typer.echo(f"  {attr:<11} base {acc['base']:.3f}  MLPs+embed mean-ablated {acc['mlps_and_embed']:.3f}")


def _do_spurious(m, tok, s, model, out, n_heads, n_random):
    from interpbench.decomposition.pipeline import run_spurious

    results, _ = run_spurious(m, tok, s, n_heads=n_heads, n_random=n_random)
    path = _write(out, "spurious", s, model, results, n_heads=n_heads, n_random=n_random)
    typer.echo(f"wrote {path}")
    rb = results["random_best_of_n"]
    typer.echo(f"  heads {results['ablated_heads']}")
    typer.echo(f"  base      avg {results['base']['average']:.3f} worst {results['base']['worst_group']:.3f}")
    typer.echo(f"  ablated   avg {results['ablated']['average']:.3f} worst {results['ablated']['worst_group']:.3f}")
    if rb:
        typer.echo(f"  random    avg {rb['average']:.3f} worst {rb['worst_group']:.3f} (best of {n_random})")


@app.command()
def heads(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED, texts_per_head: int = N_TEXTS,
          last_layers: int | None = LAYERS, pool: str = POOL, rank: int | None = RANK):
    """TextSpan per head: texts, variance explained, duplicates, reconstruction accuracy."""
    _run(lambda: _do_heads(*_load(model), _settings(n_images, seed, texts_per_head, last_layers, pool, rank),
                           model, out))


@app.command()
def roles(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED, texts_per_head: int = N_TEXTS,
          last_layers: int | None = LAYERS, pool: str = POOL, rank: int | None = RANK):
    """Head roles: linear-probe ground truth vs TextSpan attribute, heatmap PNG and table."""
    _run(lambda: _do_roles(*_load(model), _settings(n_images, seed, texts_per_head, last_layers, pool, rank),
                           model, out))


def role_table_text(results: dict) -> str:
    """Plain-text table: head, probe-best attribute (skill), TextSpan attribute, agreement."""
    lines = [f"{'head':<8}{'probe best':<14}{'skill':>6}  {'textspan':<12}agree"]
    for r in results["rows"]:
        skill = "" if r["probe_best_skill"] is None else f"{r['probe_best_skill']:.2f}"
        agree = "" if r["agree"] is None else ("yes" if r["agree"] else "no")
        lines.append(f"L{r['layer']}.H{r['head']:<5}{str(r['probe_best']):<14}{skill:>6}  "
                     f"{str(r['textspan_attribute']):<12}{agree}")
    for key in ("agreement", "agreement_skill_over_0.2"):
        a = results.get(key)
        if a and a["agreement"] is not None:
            lines.append(f"{key}: {a['agreement']:.2f} over {a['n_heads']} heads (chance {a['chance']:.2f})")
    return "\n".join(lines)


@app.command()
def segment(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED):
    """Zero-shot segmentation from per-token terms vs raw attention: pixel acc, mIoU, mAP + examples PNG."""
    _run(lambda: _do_segment(*_load(model), _settings(n_images, seed), model, out))


@app.command()
def ablate(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED):
    """Mean-ablation table (MLPs, each attention layer, cumulative layers) per Shapes attribute."""
    _run(lambda: _do_ablate(*_load(model), _settings(n_images, seed), model, out))


@app.command()
def spurious(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED,
             texts_per_head: int = N_TEXTS, last_layers: int | None = LAYERS, pool: str = POOL,
             rank: int | None = RANK, n_heads: int | None = N_HEADS, n_random: int = N_RANDOM):
    """Spurious-cue removal on Shapes (spurious variant): ablate background heads vs random heads."""
    _run(lambda: _do_spurious(*_load(model), _settings(n_images, seed, texts_per_head, last_layers, pool, rank),
                              model, out, n_heads, n_random))


@app.command(name="all")
def run_all(model: str = MODEL, n_images: int = N_IMAGES, out: Path = OUT, seed: int = SEED,
            texts_per_head: int = N_TEXTS, last_layers: int | None = LAYERS, pool: str = POOL,
            rank: int | None = RANK, n_heads: int | None = N_HEADS, n_random: int = N_RANDOM):
    """Every command above on one model (TextSpan fitted once for heads and roles)."""

    def go():
        from interpbench.decomposition.pipeline import fit_textspan

        m, tok = _load(model)
        s = _settings(n_images, seed, texts_per_head, last_layers, pool, rank)
        fit = fit_textspan(m, tok, s)
        _do_heads(m, tok, s, model, out, fit)
        _do_roles(m, tok, s, model, out, fit)
        _do_segment(m, tok, s, model, out)
        _do_ablate(m, tok, s, model, out)
        _do_spurious(m, tok, s, model, out, n_heads, n_random)

    _run(go)
