"""The results store: one JSON file per (model, data set, settings), written atomically.

Layout: RESULTS/<dataset name>/<model slug>__<hash of spec and settings>.json, plus sidecars
with the same stem: `.features.safetensors` (per-feature arrays for plots and cards),
`.labels.json` (per-feature top words) and, once `interpbench explore` or `search` asked
for it, `.cards.safetensors` (every image's non-zero activations, which cards and search
read instead of the activation cache). Each file is written to a temporary name and
renamed, so concurrent writers (tox -p, torchrun ranks) never leave a half-written file,
and re-running the same evaluation replaces only its own files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from interpbench.errors import CorruptFileError, MissingFileError
from interpbench.ioutils import atomic_write_text, atomic_writer

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "interpbench_version", "model", "dataset", "settings", "seed", "metrics")
# The type each required key must have; docs/results-schema.md documents every field.
_KEY_TYPES = {"model": dict, "dataset": dict, "settings": dict, "metrics": dict, "seed": int,
              "interpbench_version": str}


# Stages of one evaluation, in run order; each results file has `timings`: stage -> seconds.
STAGES = ("extraction", "captions", "vocabulary", "metrics", "counterfactual", "zeroshot", "intervals")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "model"


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def result_stem(record: dict) -> str:
    """File stem: readable model slug plus a hash of (spec, settings).

    The spec is hashed too because slugs collide ("a/b" and "a_b"): two models must never
    share a file, or one run would silently replace the other's numbers.
    """
    spec = record["model"]["spec"]
    return f"{slug(spec)[:80]}__{settings_hash({'spec': spec, 'settings': record['settings']})}"


def validate_record(data) -> str | None:
    """Why `data` is not an interpbench result of this schema version, or None if it is one."""
    if not isinstance(data, dict):
        return f"top level is {type(data).__name__}, expected an object"
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        return f"not an interpbench result: lacks keys {missing}"
    if data["schema_version"] != SCHEMA_VERSION:
        return f"schema_version {data['schema_version']!r}, this interpbench reads {SCHEMA_VERSION}"
    wrong = [k for k, t in _KEY_TYPES.items() if not isinstance(data[k], t)]
    if wrong:
        return f"fields {wrong} have the wrong type (expected {[_KEY_TYPES[k].__name__ for k in wrong]})"
    if not isinstance(data["model"].get("spec"), str) or not isinstance(data["dataset"].get("name"), str):
        return "needs model.spec and dataset.name as strings"
    return None


def json_safe(value):
    """JSON has no NaN/inf: store them as null so strict parsers accept the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return json_safe(value.item())
    return value


def write_result(results_dir: Path, record: dict, per_feature: dict | None = None,
                 labels: dict | None = None) -> Path:
    """Write the record (and sidecars) atomically; returns the JSON path."""
    problem = validate_record(json_safe(record))
    if problem:
        raise ValueError(f"refusing to write a malformed results record: {problem}")
    folder = Path(results_dir) / slug(record["dataset"]["name"])
    stem = result_stem(record)
    record = dict(record)
    _write_route_labels(folder, stem, record)
    if per_feature:
        tensors = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in per_feature.items()}
        with atomic_writer(folder / f"{stem}.features.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        record["per_feature_file"] = f"{stem}.features.safetensors"
    if labels is not None:
        atomic_write_text(folder / f"{stem}.labels.json", json.dumps(json_safe(labels), indent=1, sort_keys=True) + "\n")
        record["labels_file"] = f"{stem}.labels.json"
    path = folder / f"{stem}.json"
    atomic_write_text(path, json.dumps(json_safe(record), indent=2, sort_keys=True) + "\n")
    return path


ROUTE_LABELS = re.compile(r"\.labels(\.[a-z]+)?\.json$")  # .labels.json and .labels.<route>.json sidecars


def _write_route_labels(folder: Path, stem: str, record: dict) -> None:
    """Labels of the non-primary routes (record["_route_labels"], route -> feature -> [[word,
    score]]) as `.labels.<route>.json`, named in record["label_routes"]["routes"][route]."""
    side = record.pop("_route_labels", None) or {}
    routes = (record.get("label_routes") or {}).get("routes", {})
    for route, labels in side.items():
        if labels is None or route not in routes:
            continue
        name = f"{stem}.labels.{slug(route)}.json"
        atomic_write_text(folder / name, json.dumps(json_safe(labels), indent=1, sort_keys=True) + "\n")
        routes[route] = {**routes[route], "labels_file": name}


def read_results(results_dir: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """All valid result records under results_dir, and (path, reason) for each file skipped."""
    records, skipped = [], []
    for path in sorted(Path(results_dir).rglob("*.json")):
        if ROUTE_LABELS.search(path.name) or path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append((path, f"not valid JSON ({exc})"))
            continue
        problem = validate_record(data)
        if problem:
            skipped.append((path, problem))
            continue
        data["_path"] = str(path)
        records.append(data)
    return records, skipped


def find_record(results_dir: Path, specs: set[str], settings: dict) -> dict | None:
    """The record of one of `specs` evaluated with exactly these settings, if any."""
    want = settings_hash(settings)
    records, _ = read_results(results_dir) if Path(results_dir).is_dir() else ([], [])
    for r in records:
        if r["model"]["spec"] in specs and settings_hash(r["settings"]) == want:
            return r
    return None


def write_cards(record: dict, arrays: dict[str, np.ndarray]) -> dict:
    """Add the feature-card sidecar (.cards.safetensors) to a record read by read_results.

    Writes the sidecar, then the record naming it (each atomically); returns the record as
    read_results would now return it."""
    path = Path(record["_path"])
    stem = path.name[: -len(".json")]
    with atomic_writer(path.parent / f"{stem}.cards.safetensors") as tmp:
        save_file({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in arrays.items()}, tmp)
    updated = {k: v for k, v in record.items() if k != "_path"}
    updated["cards_file"] = f"{stem}.cards.safetensors"
    atomic_write_text(path, json.dumps(json_safe(updated), indent=2, sort_keys=True) + "\n")
    return {**updated, "_path": str(path)}


def _sidecar(record: dict, key: str, what: str) -> Path | None:
    name = record.get(key)
    if not name:
        return None
    from interpbench.validation import contained_path

    # The name comes from a results file, which may be someone else's: it must stay in its folder.
    path = contained_path(Path(record["_path"]).parent, name, record["_path"], f"{key} ({what})")
    if not path.is_file():
        raise MissingFileError(path, f"the {what} of {record['_path']}",
                               f"re-run `interpbench evaluate --model {record['model']['spec']}`")
    return path


def load_per_feature(record: dict) -> dict[str, np.ndarray]:
    """The per-feature arrays of a record read by read_results ({} if it has none)."""
    return _load_arrays(record, "per_feature_file", "per-feature sidecar (.features.safetensors)", "evaluate")


def load_cards(record: dict) -> dict[str, np.ndarray]:
    """The feature-card arrays of a record read by read_results ({} if it has none)."""
    return _load_arrays(record, "cards_file", "feature-card sidecar (.cards.safetensors)", "explore")


def _load_arrays(record: dict, key: str, what: str, command: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = _sidecar(record, key, what)
    if path is None:
        return {}
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFileError(path, f"not a readable safetensors file ({exc})",
                               f"delete it and re-run `interpbench {command} --model {record['model']['spec']}`") from exc


def load_labels(record: dict, route: str | None = None) -> dict[int, list[tuple[str, float]]]:
    """Feature index -> [(word, score), ...] from a record's .labels.json ({} if none); with
    `route`, that labelling route's labels (the primary ones, or its .labels.<route>.json)."""
    routes = record.get("label_routes") or {}
    if route is None or route == routes.get("primary"):
        path = _sidecar(record, "labels_file", "labels sidecar (.labels.json)")
    else:
        info = routes.get("routes", {}).get(route) or {}
        path = _sidecar({**record, "route_file": info.get("labels_file")}, "route_file",
                        f"{route}-route labels sidecar (.labels.{route}.json)")
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {int(f): [(str(w), float(s)) for w, s in pairs] for f, pairs in raw.items()}
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise CorruptFileError(path, f"not a labels file of feature -> [[word, score], ...] ({exc})",
                               f"delete it and re-run `interpbench evaluate --model {record['model']['spec']}`") from exc
