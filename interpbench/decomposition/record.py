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
    import interpbench
    import torch

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
