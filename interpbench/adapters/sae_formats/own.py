"""The project's own format: a folder with cfg.json + sae.safetensors (what `train_sae` writes).

It stores the canonical tensors and settings directly, so loading is `sae_canonical.load_own`;
this module only finds the files (local or on the hub) and applies the common overrides.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_canonical import OWN_CFG, OWN_WEIGHTS, load_own
from interpbench.adapters.sae_formats._common import with_overrides

NAME = "interpbench"
DESCRIPTION = "this project's SAEs: folder with cfg.json + sae.safetensors (train_sae output)"
OPTIONS: dict[str, str] = {}


def _folder(location: str) -> str:
    # Accept the folder or either of its two files.
    if hub.basename(location) in (OWN_CFG, OWN_WEIGHTS):
        return hub.sibling(location, "").rstrip("/")
    return location


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    folder = _folder(location)
    return [hub.resolve(folder, OWN_CFG, offline=offline), hub.resolve(folder, OWN_WEIGHTS, offline=offline)]


def load(location: str, offline: bool, common: dict, opts: dict):
    cfg_path, _weights = files(location, offline, opts)
    # Both files sit in the same folder (locally, or in the same hub-cache snapshot).
    sae = load_own(cfg_path.parent)
    return with_overrides(sae, common, str(cfg_path))
