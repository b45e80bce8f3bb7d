"""SAELens: a folder with cfg.json + sae_weights.safetensors.

Covers architectures standard (ReLU), topk and jumprelu (batchtopk variants are saved as
jumprelu), every `normalize_activations` mode, and pre-6.0 configs, following SAELens'
own rules (see sae-formats.md section 4):
- pre-6.0 keys are renamed (hook_point -> hook_name, activation_fn_str -> activation_fn,
  activation_fn "topk" -> architecture "topk", bool normalize_activations);
- missing `apply_b_dec_to_input` means True and missing `architecture` means standard;
- `expected_average_only_in` is the identity at inference in SAELens (the scale lives in the
  training-time activation scaler, folded into the weights when saved), so it is here too;
- topk with `rescale_acts_by_decoder_norm` multiplies pre-activations by ‖W_dec row‖ and
  divides them back before decoding; we fold that into W_enc, b_enc and W_dec exactly.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import (
    as_int,
    base_from_model_name,
    build,
    hook_from_name,
    make_hook,
    read_json_file,
    tensor,
)
from interpbench.adapters.safe_load import load_safetensors
from interpbench.errors import ConfigError

NAME = "saelens"
DESCRIPTION = "SAELens folder: cfg.json + sae_weights.safetensors (standard | topk | jumprelu)"
OPTIONS: dict[str, str] = {}
CFG, WEIGHTS = "cfg.json", "sae_weights.safetensors"
_NORMS = {"none": "none", "expected_average_only_in": "none", "constant_norm_rescale": "constant_norm_rescale",
          "layer_norm": "layer_norm"}


def _folder(location: str) -> str:
    return hub.sibling(location, "").rstrip("/") if hub.basename(location) in (CFG, WEIGHTS) else location


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    folder = _folder(location)
    return [hub.resolve(folder, CFG, offline=offline), hub.resolve(folder, WEIGHTS, offline=offline)]


def normalise_config(cfg: dict) -> dict:
    """SAELens' handling of pre-6.0 configs and its defaults, on a copy."""
    cfg = dict(cfg)
    meta = dict(cfg.get("metadata") or {})
    if "hook_point" in cfg and "hook_name" not in cfg and "hook_name" not in meta:
        cfg["hook_name"] = cfg["hook_point"]
    if "activation_fn_str" in cfg and "activation_fn" not in cfg:
        cfg["activation_fn"] = cfg["activation_fn_str"]
    if cfg.get("activation_fn") == "topk" and "architecture" not in cfg:
        cfg["architecture"] = "topk"
        cfg.setdefault("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
    if isinstance(cfg.get("normalize_activations"), bool):
        cfg["normalize_activations"] = "expected_average_only_in" if cfg["normalize_activations"] else "none"
    cfg.setdefault("apply_b_dec_to_input", True)
    cfg.setdefault("architecture", "standard")
    cfg.setdefault("normalize_activations", "none")
    cfg["hook_name"] = meta.get("hook_name") or cfg.get("hook_name")
    cfg["model_name"] = meta.get("model_name") or cfg.get("model_name")
    return cfg


def load(location: str, offline: bool, common: dict, opts: dict):
    cfg_path, w_path = files(location, offline, opts)
    cfg = normalise_config(read_json_file(cfg_path))
    d = as_int(cfg, "d_in", cfg_path, "SAE input width")
    n = as_int(cfg, "d_sae", cfg_path, "number of latents")
    arch, norm = cfg["architecture"], cfg["normalize_activations"]
    if arch not in ("standard", "topk", "jumprelu"):
        raise ConfigError(f"{cfg_path}: architecture {arch!r} is not supported (supported: standard, topk, jumprelu; "
                          "gated SAEs do not map onto a single encoder)")
    if norm not in _NORMS:
        raise ConfigError(f"{cfg_path}: normalize_activations {norm!r} is not one of {sorted(_NORMS)}")
    t = load_safetensors(w_path)
    W_enc, b_enc = tensor(t, "W_enc", w_path, (d, n)), tensor(t, "b_enc", w_path, (n,))
    W_dec, b_dec = tensor(t, "W_dec", w_path, (n, d)), tensor(t, "b_dec", w_path, (d,))
    k, threshold = None, None
    if arch == "topk":
        k = as_int(cfg, "k", cfg_path, "TopK k")
        if cfg.get("rescale_acts_by_decoder_norm"):
            norms = W_dec.norm(dim=-1)
            W_enc, b_enc, W_dec = W_enc * norms, b_enc * norms, W_dec / norms[:, None]
    if arch == "jumprelu":
        threshold = tensor(t, "threshold", w_path, (n,), "JumpReLU per-latent thresholds")
    default_hook = hook_from_name(cfg["hook_name"])
    if default_hook is not None:
        default_hook = {"tokens": "all", **default_hook}
    hook = make_hook(default_hook, common, str(cfg_path))
    act = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}[arch]
    prov = {"files": [str(cfg_path), str(w_path)], "architecture": arch, "normalize_activations": norm,
            "hook_name": cfg["hook_name"], "sae_lens_version": (cfg.get("metadata") or {}).get("sae_lens_version")}
    return build(W_enc, b_enc, W_dec, b_dec, fmt=NAME, common=common, hook=hook,
                 file_base=base_from_model_name(cfg["model_name"]), provenance=prov, activation=act, k=k,
                 pre_bias=bool(cfg["apply_b_dec_to_input"]), input_norm=_NORMS[norm], threshold=threshold)
