"""The curated registry of public checkpoints (sae_registry.json), usable as model specs by name.

Each entry gives the spec the name stands for plus what a user needs to judge it: hub repo,
file, format, base model, and whether the repo id / file name were verified against the hub.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from interpbench.errors import ConfigError

REGISTRY_FILE = Path(__file__).with_name("sae_registry.json")
REQUIRED = ("spec", "kind", "note")


@lru_cache(maxsize=1)
def _load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: the packaged model registry cannot be read ({exc}); reinstall interpbench") from exc
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected an object with an 'entries' mapping of name -> entry")
    for name, entry in entries.items():
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise ConfigError(f"{path}: registry entry {name!r} lacks {missing}")
    return entries


def known_checkpoints() -> dict[str, dict]:
    """name -> entry (a copy; see sae_registry.json for the fields)."""
    return {k: dict(v) for k, v in _load(str(REGISTRY_FILE)).items()}
