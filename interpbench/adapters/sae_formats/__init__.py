"""SAE checkpoint formats: one module per format, all mapping onto CanonicalSAE.

Each format module defines
    NAME, ALIASES     how specs name it (`sae:NAME:LOCATION@BASE`)
    DESCRIPTION       one line for `interpbench models`
    OPTIONS           its own `?key=value` options (the common ones are in _common.COMMON_OPTIONS)
    files(location, offline, opts) -> list[Path]      the files it reads (resolved, maybe downloaded)
    load(location, offline, common, opts) -> CanonicalSAE

`load_sae` / `sae_fingerprint` are the only entry points the rest of the package uses.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from typing import TYPE_CHECKING

from interpbench.errors import NumericalError, UnknownFormatError

if TYPE_CHECKING:  # torch is imported only when an SAE is loaded, not to list the formats
    from interpbench.adapters.sae_canonical import CanonicalSAE

# format name -> module (imported lazily: a spec only pays for the format it names)
_MODULES = {
    "interpbench": "own",
    "saelens": "saelens",
    "sparsify": "sparsify",
    "msae": "msae",
    "prisma": "prisma",
    "saev": "saev",
    "overcomplete": "overcomplete",
}
_ALIASES = {"interpbench-sae": "interpbench", "own": "interpbench", "sae_lens": "saelens", "sae-lens": "saelens",
            "eleuther": "sparsify", "vit-prisma": "prisma", "vit_prisma": "prisma", "patchsae": "prisma"}


def format_names() -> list[str]:
    return list(_MODULES)


def format_module(fmt: str):
    name = _ALIASES.get(fmt.lower(), fmt.lower())
    if name not in _MODULES:
        import difflib

        close = difflib.get_close_matches(fmt, list(_MODULES) + list(_ALIASES), n=2)
        raise UnknownFormatError(f"unknown SAE format {fmt!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                                 + f"; known formats: {', '.join(_MODULES)}")
    return importlib.import_module(f"interpbench.adapters.sae_formats.{_MODULES[name]}")


def describe_formats() -> dict[str, str]:
    """format name -> its module's DESCRIPTION, read from the source: `interpbench models`
    lists the formats without importing torch (seconds) through the format modules."""
    return {name: _description(f"interpbench.adapters.sae_formats.{mod}") for name, mod in _MODULES.items()}


def _description(module: str) -> str:
    tree = ast.parse(open(importlib.util.find_spec(module).origin, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DESCRIPTION" for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                break  # not a literal: fall back to importing the module
    return importlib.import_module(module).DESCRIPTION


def _split(fmt: str, options: dict):
    from interpbench.adapters.sae_formats._common import split_options

    mod = format_module(fmt)
    common, specific = split_options(mod.NAME, options, mod.OPTIONS)
    return mod, common, specific


def load_sae(fmt: str, location: str, base_model: str | None = None, offline: bool = False,
             **options) -> CanonicalSAE:
    """Load the SAE at `location` (local path or hub location, see adapters.hub) in format `fmt`.

    `base_model` is the spec of the CLIP it will run on; it is recorded, and it overrides
    what the file says only when passed as the option `base_model=` (a spec's `@BASE` is
    the model actually used, the file's claim stays in provenance).
    """
    mod, common, specific = _split(fmt, options)
    try:
        sae = mod.load(str(location), offline, common, specific)
    except NumericalError as exc:  # the canonical SAE names the tensor; say which file holds it
        paths = mod.files(str(location), offline, specific)
        weights = [str(p) for p in paths if p.suffix != ".json"] or [str(p) for p in paths]
        raise NumericalError(f"{', '.join(weights)}: {exc}") from exc
    if base_model and not sae.settings.base_model:
        from dataclasses import replace

        sae.settings = replace(sae.settings, base_model=base_model)
    sae.provenance.setdefault("location", str(location))
    sae.provenance["fingerprint"] = sae_fingerprint(fmt, location, offline=offline, **options)
    return sae


def sae_fingerprint(fmt: str, location: str, offline: bool = False, **options) -> str:
    """Content id of the SAE: hashes the files read and the options that change its meaning."""
    from interpbench.adapters.sae_formats._common import fingerprint

    mod, _common, specific = _split(fmt, options)
    paths = mod.files(str(location), offline, specific)
    return fingerprint(mod.NAME, paths, {k: v for k, v in options.items() if k != "base_model"})


__all__ = ["describe_formats", "format_module", "format_names", "load_sae", "sae_fingerprint"]
