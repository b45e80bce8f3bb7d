"""The results store: one JSON file per (model, data set, settings), written atomically.

Layout: RESULTS/<dataset name>/<model slug>__<settings hash>.json, plus sidecars with the
same stem: `.features.safetensors` (per-feature arrays for plots and cards) and
`.labels.json` (per-feature top words). Each file is written to a temporary name and
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

from interpbench.ioutils import atomic_write_text, atomic_writer

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "interpbench_version", "model", "dataset", "settings", "seed", "metrics")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "model"


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def result_stem(record: dict) -> str:
    return f"{slug(record['model']['spec'])}__{settings_hash(record['settings'])}"


def _clean(value):
    """JSON has no NaN/inf: store them as null so strict parsers accept the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    return value


def write_result(results_dir: Path, record: dict, per_feature: dict | None = None,
                 labels: dict | None = None) -> Path:
    """Write the record (and sidecars) atomically; returns the JSON path."""
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"results record lacks {missing}")
    folder = Path(results_dir) / slug(record["dataset"]["name"])
    stem = result_stem(record)
    record = dict(record)
    if per_feature:
        tensors = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in per_feature.items()}
        with atomic_writer(folder / f"{stem}.features.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        record["per_feature_file"] = f"{stem}.features.safetensors"
    if labels is not None:
        atomic_write_text(folder / f"{stem}.labels.json", json.dumps(_clean(labels), indent=1, sort_keys=True) + "\n")
        record["labels_file"] = f"{stem}.labels.json"
    path = folder / f"{stem}.json"
    atomic_write_text(path, json.dumps(_clean(record), indent=2, sort_keys=True) + "\n")
    return path


def read_results(results_dir: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """All valid result records under results_dir, and (path, reason) for each file skipped."""
    records, skipped = [], []
    for path in sorted(Path(results_dir).rglob("*.json")):
        if path.name.endswith(".labels.json") or path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            skipped.append((path, f"not valid JSON ({exc})"))
            continue
        if not isinstance(data, dict) or any(k not in data for k in REQUIRED_KEYS):
            skipped.append((path, f"not an interpbench result (needs keys {list(REQUIRED_KEYS)})"))
            continue
        if data["schema_version"] != SCHEMA_VERSION:
            skipped.append((path, f"schema_version {data['schema_version']!r}, this interpbench reads {SCHEMA_VERSION}"))
            continue
        data["_path"] = str(path)
        records.append(data)
    return records, skipped
