"""The decomposition results file: one JSON per model, RESULTS/decomposition/<model slug>.json.

Each `interpbench decompose` command fills its own section (`results[command]`, with the
settings and seed it ran with) and refreshes the flat `metrics` the leaderboard shows, so
running the commands one by one or with `decompose all` gives the same file. The record has
the keys every interpbench result has (schema_version, interpbench_version, model, dataset,
settings, seed, metrics), so `interpbench.results.store.read_results` accepts it; `kind`
marks it as a decomposition record, and its dataset name keeps it out of the Shapes
evaluation table.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
KIND = "decomposition"
DATASET = "shapes-decomposition"


def result_path(out: Path, model_spec: str) -> Path:
    from interpbench.results.store import slug

    return Path(out) / f"{slug(model_spec)}.json"


def figure_dir(out: Path, model_spec: str) -> Path:
    """PNGs of one model go beside its JSON, in a folder of the same stem."""
    return result_path(out, model_spec).with_suffix("")


def update_record(path: Path, command: str, settings, model_spec: str, results: dict, **extra) -> dict:
    """Add (or replace) one command's section in the model's record and write it atomically."""
    from interpbench.ioutils import atomic_write_text

    record = _load_existing(path, model_spec)
    section_settings = {**asdict(settings), **extra}
    record["settings"][command] = section_settings
    record["results"][command] = finite(results)
    record["seed"] = settings.seed
    record["metrics"] = finite(headline(record["results"]))
    atomic_write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def _load_existing(path: Path, model_spec: str) -> dict:
    """The record already on disk for this model, or a fresh one (a foreign/broken file is replaced)."""
    import torch

    import interpbench

    fresh = {"schema_version": SCHEMA_VERSION, "interpbench_version": interpbench.__version__, "kind": KIND,
             "model": {"spec": model_spec, "name": model_spec},
             "dataset": {"name": DATASET, "source": "shapes"}, "settings": {}, "seed": None,
             "metrics": {}, "results": {},
             "environment": {"python": platform.python_version(), "torch": torch.__version__}}
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fresh
    ok = (isinstance(old, dict) and old.get("kind") == KIND and old.get("schema_version") == SCHEMA_VERSION
          and old.get("model", {}).get("spec") == model_spec)
    return old if ok else fresh


def headline(results: dict) -> dict:
    """Flat numbers for leaderboards, from whichever sections exist."""
    m: dict = {}
    if "heads" in results:
        h = results["heads"]
        ve = [v["variance_explained"] for v in h["heads"].values()]
        m["textspan_variance_explained_mean"] = float(np.mean(ve)) if ve else None
        m["textspan_distinct_texts"] = h["n_distinct_texts"]
        m["textspan_duplicate_texts"] = len(h["duplicates"])
        for attr, acc in h["reconstruction_accuracy"].items():
            m[f"textspan_acc_{attr}"] = acc["textspan"]
            m[f"base_acc_{attr}"] = acc["base"]
    if "roles" in results:
        a = results["roles"]["agreement"]
        m["role_agreement"], m["role_agreement_chance"] = a["agreement"], a["chance"]
    if "segment" in results:
        for method, sc in results["segment"]["scores"].items():
            for k, v in sc.items():
                m[f"seg_{method}_{k}"] = v
    if "spurious" in results:
        sp = results["spurious"]
        rb = sp["random_best_of_n"] or {}
        m.update({"spurious_base_worst_group": sp["base"]["worst_group"],
                  "spurious_base_average": sp["base"]["average"],
                  "spurious_ablated_worst_group": sp["ablated"]["worst_group"],
                  "spurious_ablated_average": sp["ablated"]["average"],
                  "spurious_random_worst_group": rb.get("worst_group"),
                  "spurious_random_average": rb.get("average"),
                  "spurious_n_heads": len(sp["ablated_heads"])})
    return m


def finite(obj):
    """NaN/inf -> None so the JSON is strict (json.dumps(allow_nan=False)); numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def summary_markdown(record: dict) -> str:
    """A short markdown report of one model's record (for leaderboards/decomposition/)."""
    res, lines = record["results"], [f"# Decomposition of `{record['model']['spec']}` (seed {record['seed']})", ""]
    if "roles" in res:
        lines += _roles_md(res["roles"])
    if "heads" in res:
        h = res["heads"]
        lines += ["## TextSpan", "", f"Pool `{h['pool']['spec']}` ({h['pool']['n_texts']} texts), rank {h['rank']}, "
                  f"layers {h['layers']}; {h['n_distinct_texts']} distinct texts picked, "
                  f"{len(h['duplicates'])} picked by more than one head.", "",
                  "| attribute | base | early layers mean-ablated | + heads replaced by TextSpan |", "|---|---|---|---|"]
        lines += [f"| {a} | {_f(v['base'])} | {_f(v['early_layers_ablated'])} | {_f(v['textspan'])} |"
                  for a, v in h["reconstruction_accuracy"].items()]
        lines.append("")
    if "segment" in res:
        lines += ["## Zero-shot segmentation (Shapes masks)", "", "| method | pixel acc | mIoU | mAP |",
                  "|---|---|---|---|"]
        lines += [f"| {m} | {_f(s['pixel_accuracy'])} | {_f(s['miou'])} | {_f(s['map'])} |"
                  for m, s in res["segment"]["scores"].items()]
        lines.append("")
    if "spurious" in res:
        sp = res["spurious"]
        rb = sp["random_best_of_n"] or {}
        lines += ["## Spurious-cue removal (shape on one-object images, Shapes spurious variant)", "",
                  f"Ablated heads {sp['ablated_heads']} ({sp['n_images_scored']} images, {sp['n_groups']} groups).", "",
                  "| | average | worst group |", "|---|---|---|",
                  f"| base | {_f(sp['base']['average'])} | {_f(sp['base']['worst_group'])} |",
                  f"| background heads mean-ablated | {_f(sp['ablated']['average'])} | {_f(sp['ablated']['worst_group'])} |",
                  f"| random heads, best of {sp['n_random']} | {_f(rb.get('average'))} | {_f(rb.get('worst_group'))} |", ""]
    return "\n".join(lines) + "\n"


def _roles_md(roles: dict) -> list[str]:
    attrs = roles["attributes"]
    out = ["## Head roles: probe skill (chance-corrected) vs TextSpan attribute", "",
           "| head | " + " | ".join(attrs) + " | probe best | TextSpan says | agree | top texts |",
           "|---|" + "---|" * (len(attrs) + 4)]
    for r in roles["rows"]:
        agree = "" if r["agree"] is None else ("yes" if r["agree"] else "no")
        texts = "; ".join((r["textspan_top_texts"] or [])[:3])
        out.append(f"| L{r['layer']}.H{r['head']} | " + " | ".join(_f(r["probe_skill"][a]) for a in attrs)
                   + f" | {r['probe_best']} | {r['textspan_attribute']} | {agree} | {texts} |")
    for key in ("agreement", "agreement_skill_over_0.2"):
        a = roles.get(key)
        if a and a["agreement"] is not None:
            out.append(f"\n{key}: **{_f(a['agreement'])}** over {a['n_heads']} heads (chance {_f(a['chance'])})")
    return out + [""]


def _f(v) -> str:
    return "" if v is None else f"{v:.3f}"
