"""Helpers every format loader shares: options, hook sites, tensor checks, base-model names.

Options arrive either as Python values or as strings (from `?key=value` in a model spec),
so every option is coerced here, and an unknown option is an error that lists the
accepted ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import torch

from interpbench.adapters.sae_canonical import LAYER_SITES, CanonicalSAE, HookSite, SAESettings
from interpbench.errors import ConfigError, CorruptFileError

# Options every loader accepts; see `apply_common`.
COMMON_OPTIONS = {
    "offline": "use only local files and the hub cache (bool)",
    "base_model": "model spec of the CLIP the SAE reads (overrides what the file says)",
    "hook": "full hook site, e.g. image_embed | text_embed | resid_post:11:cls | mlp_out:3:all",
    "site": "override the hook site (image_embed | text_embed | resid_post | mlp_out)",
    "layer": "override the block index of a resid_post / mlp_out hook (int)",
    "tokens": "override the tokens the SAE reads (cls | patch | all)",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def split_options(fmt: str, options: dict, specific: dict[str, str]) -> tuple[dict, dict]:
    """(common, format-specific) options; unknown keys raise ConfigError listing the accepted ones."""
    unknown = sorted(set(options) - set(COMMON_OPTIONS) - set(specific))
    if unknown:
        accepted = {**specific, **COMMON_OPTIONS}
        listing = "; ".join(f"{k}: {v}" for k, v in accepted.items())
        raise ConfigError(f"SAE format {fmt!r}: unknown option(s) {unknown}. Accepted options: {listing}")
    common = {k: v for k, v in options.items() if k in COMMON_OPTIONS and v is not None}
    return common, {k: v for k, v in options.items() if k in specific and v is not None}


def opt_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"option {name!r} must be true or false, got {value!r}")


def opt_int(value, name: str) -> int:
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
        raise ConfigError(f"option {name!r} must be an integer, got {value!r}") from None


def opt_float(value, name: str) -> float:
    try:
        if isinstance(value, bool) or not math.isfinite(float(value)):  # NaN/inf: a silent wrong number
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name!r} must be a finite number, got {value!r}") from None


def parse_hook(text: str | HookSite) -> HookSite:
    """`image_embed` | `text_embed` | `SITE:LAYER[:TOKENS]` (SITE resid_post or mlp_out)."""
    if isinstance(text, HookSite):
        return text
    parts = [p.strip() for p in str(text).split(":")]
    try:
        if parts[0] in LAYER_SITES:
            if len(parts) not in (2, 3):
                raise ValueError(f"{parts[0]} needs a block index, e.g. {parts[0]}:11:cls")
            return HookSite(parts[0], opt_int(parts[1], "hook layer"), parts[2] if len(parts) == 3 else "all")
        if len(parts) == 1:
            return HookSite(parts[0])
        raise ValueError("only resid_post / mlp_out take a layer")
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"bad hook {text!r}: {exc}. Write image_embed, text_embed, "
                          "resid_post:LAYER:TOKENS or mlp_out:LAYER:TOKENS (TOKENS = cls | patch | all)") from None


def hook_from_name(name: str | None) -> dict | None:
    """Hook fields from a library's hook-point name, or None when it is not a ViT hook we know.

    TransformerLens / HookedViT (Prisma, SAELens): blocks.L.hook_resid_post, blocks.L.hook_mlp_out.
    open_clip module paths (saev, sparsify hookpoints): ...resblocks.L and ...resblocks.L.mlp.
    """
    if not name:
        return None
    m = re.fullmatch(r"(?:.*\.)?blocks\.(\d+)\.hook_(resid_post|mlp_out)", name)
    if m:
        return {"site": m[2], "layer": int(m[1])}
    m = re.fullmatch(r"(?:.*\.)?resblocks\.(\d+)(\.mlp)?", name)
    if m:
        return {"site": "mlp_out" if m[2] else "resid_post", "layer": int(m[1])}
    return None


def make_hook(default: dict | None, common: dict, source: str) -> HookSite:
    """The hook the file implies (`default`, may be None), with the caller's overrides applied."""
    if "hook" in common:
        fields = vars(parse_hook(common["hook"])).copy()
    elif default is not None:
        fields = {"site": "image_embed", "layer": None, "tokens": "cls", **default}
    else:
        fields = None
    overrides = {k: common[k] for k in ("site", "layer", "tokens") if k in common}
    if fields is None:
        if "site" not in overrides:
            raise ConfigError(f"{source}: the file does not record where the SAE reads the model; pass the hook "
                              "as an option, e.g. ?hook=resid_post:10:patch or ?hook=image_embed "
                              "(or site=, layer=, tokens=)")
        fields = {"site": overrides["site"], "layer": None, "tokens": "all"}
    fields.update(overrides)
    if fields.get("layer") is not None:
        fields["layer"] = opt_int(fields["layer"], "layer")
    if fields["site"] not in LAYER_SITES:
        fields["layer"] = None
    try:
        return HookSite(**fields)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def build(W_enc, b_enc, W_dec, b_dec, *, fmt: str, common: dict, hook: HookSite, file_base: str | None,
          provenance: dict, activation: str, k: int | None = None, pre_bias: bool = True,
          input_norm: str = "none", topk_relu: bool = True, input_mean=None, input_scale: float = 1.0,
          threshold=None, W_skip=None) -> CanonicalSAE:
    base = common.get("base_model") or file_base or ""
    settings = SAESettings(activation=activation, k=k, pre_bias=pre_bias, hook=hook, base_model=base,
                           source_format=fmt, input_norm=input_norm, topk_relu=topk_relu)
    sae = CanonicalSAE(W_enc, b_enc, W_dec, b_dec, settings, input_mean=input_mean, input_scale=input_scale,
                       threshold=threshold, W_skip=W_skip)
    if file_base and base != file_base:
        provenance["base_model_in_file"] = file_base
    sae.provenance = {"format": fmt, **provenance}
    return sae.eval()


def with_overrides(sae: CanonicalSAE, common: dict, source: str) -> CanonicalSAE:
    """Apply hook / base-model overrides to an SAE whose file states them (own format)."""
    s = sae.settings
    hook = make_hook(vars(s.hook).copy(), common, source) if set(common) & {"hook", "site", "layer", "tokens"} \
        else s.hook
    base = common.get("base_model") or s.base_model
    if base != s.base_model and s.base_model:
        sae.provenance["base_model_in_file"] = s.base_model
    sae.settings = replace(s, hook=hook, base_model=base)
    return sae


def tensor(tensors: dict, name: str, path, shape: tuple | None = None, why: str = "") -> torch.Tensor:
    """tensors[name] as float32, checked against `shape`; errors name the file, tensor and shape."""
    if name not in tensors:
        raise CorruptFileError(path, f"missing tensor {name!r} (expected shape {shape}); "
                                     f"found {sorted(tensors)[:16]}", "check that the file matches the format")
    t = tensors[name]
    if not isinstance(t, torch.Tensor):
        raise CorruptFileError(path, f"entry {name!r} is a {type(t).__name__}, expected a tensor of shape {shape}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise CorruptFileError(path, f"tensor {name!r} has shape {tuple(t.shape)}, expected {tuple(shape)}"
                                     + (f" ({why})" if why else ""),
                               "the weights do not match the config; re-download or fix the config")
    return t.detach().float()


def need(cfg: dict, key: str, path, what: str):
    """cfg[key] or a ConfigError naming the file and key."""
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"{path}: missing required key {key!r} ({what}); the file does not look like a "
                          "complete config of this format")
    return cfg[key]


def as_int(cfg: dict, key: str, path, what: str) -> int:
    v = need(cfg, key, path, what)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 1:
        raise ConfigError(f"{path}: key {key!r} must be a positive integer ({what}), got {v!r}")
    return int(v)


def read_json_file(path: Path) -> dict:
    from interpbench.validation import read_json

    return read_json(path)


def fingerprint(fmt: str, paths: list[Path], options: dict) -> str:
    """sha256 over the format, the content ids of the files read and the options that change meaning."""
    from interpbench.adapters.hub import file_fingerprint

    h = hashlib.sha256(fmt.encode())
    for p in paths:
        h.update(Path(p).name.encode())
        h.update(file_fingerprint(p).encode())
    meaningful = {k: str(v) for k, v in sorted(options.items()) if k not in ("offline",)}
    h.update(json.dumps(meaningful, sort_keys=True).encode())
    return h.hexdigest()[:16]


def base_from_model_name(name: str | None) -> str | None:
    """A model spec for a library's base-model name, when it names an open_clip model.

    TransformerLens / Prisma write `open-clip:ORG/REPO` for open_clip hub models; that is
    open_clip's own `hf-hub:ORG/REPO`. Other names are kept verbatim (recorded, not loaded).
    """
    if not name:
        return None
    for prefix in ("open-clip:", "open_clip:", "hf-hub:"):
        if name.startswith(prefix):
            return f"openclip:hf-hub:{name[len(prefix):]}"
    return name


def find_one(location: str, offline: bool, suffixes: tuple[str, ...], what: str) -> str:
    """`location` itself when it names a file; else the single file with one of `suffixes` in it."""
    from interpbench.adapters import hub

    if not hub.is_dir(location, offline=offline):
        return location
    names = [n for n in hub.list_files(location, offline=offline) if n.endswith(suffixes) and "/" not in n]
    if len(names) != 1:
        raise ConfigError(f"{location}: expected exactly one {what} ({'/'.join(suffixes)}) in the folder, found "
                          f"{names or 'none'}; name the file explicitly, e.g. {hub.join(location, names[0] if names else 'FILE')}")
    return hub.join(location, names[0])
