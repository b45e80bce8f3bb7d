"""ViT-Prisma (Prisma-Multimodal): config.json + a torch weights file beside it.

The weights file is a pickled state dict (W_enc [d, n], b_enc, W_dec [n, d], b_dec) or the
legacy single file {"cfg": {...}, "state_dict": {...}} (PatchSAE uses that shape with
"cfg"/"config"). Missing config keys take Prisma's own defaults (VisionModelSAERunnerConfig
on ViT-Prisma main), *not* "off": notably an absent `normalize_activations` means
layer_norm, and d_sae is always d_in * expansion_factor. Forward: norm_in(x), subtract b_dec,
encode, act, decode, norm_out — the canonical SAE with input_norm from the config.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import (
    as_int,
    base_from_model_name,
    build,
    find_one,
    hook_from_name,
    make_hook,
    opt_int,
    read_json_file,
    tensor,
)
from interpbench.adapters.safe_load import load_pickle_weights
from interpbench.errors import ConfigError, CorruptFileError, MissingFileError

NAME = "prisma"
DESCRIPTION = "ViT-Prisma: config.json + weights .pt (missing keys take Prisma's defaults); PatchSAE out.pt"
OPTIONS = {"config": "config file name next to the weights (default config.json)",
           "d_in": "override the config's d_in (int)",
           "expansion_factor": "override the config's expansion_factor (int), e.g. 64 for PatchSAE"}
CONFIG = "config.json"
# VisionModelSAERunnerConfig defaults (ViT-Prisma main, vit_prisma/sae/config.py) for the keys we read.
DEFAULTS = {
    "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
    "hook_point_layer": 9,
    "layer_subtype": "ln2.hook_normalized",
    "architecture": "standard",
    "expansion_factor": 16,
    "d_in": 768,
    "activation_fn_str": "topk",
    "activation_fn_kwargs": {},
    "cls_token_only": False,
    "use_patches_only": False,
    "normalize_activations": "layer_norm",
    "is_transcoder": False,
}
_NORMS = {"layer_norm": "layer_norm", "constant_norm_rescale": "constant_norm_rescale"}  # anything else: none


def _weights(location: str, offline: bool) -> str:
    return find_one(location, offline, (".pt", ".pth", ".bin"), "Prisma weights file")


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    w = _weights(location, offline)
    paths = [hub.resolve(w, offline=offline)]
    try:
        paths.insert(0, hub.resolve(hub.sibling(w, opts.get("config", CONFIG)), offline=offline))
    except MissingFileError:  # legacy single-file checkpoints carry their config inside
        pass
    return paths


def _split_file(obj, path: Path) -> tuple[dict | None, dict]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        return obj.get("cfg") or obj.get("config"), obj["state_dict"]
    if isinstance(obj, dict) and "W_enc" in obj:
        return None, obj
    raise CorruptFileError(path, "expected a state dict with W_enc/b_enc/W_dec/b_dec or a dict "
                                 f"{{'cfg', 'state_dict'}}, got {type(obj).__name__}"
                                 + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else ""))


def settings(raw: dict) -> tuple[dict, list[str]]:
    """The config with Prisma's defaults filled in, and the keys that took a default."""
    filled = [k for k in DEFAULTS if k not in raw]
    return {**DEFAULTS, **raw}, filled


def load(location: str, offline: bool, common: dict, opts: dict):
    paths = files(location, offline, opts)
    w_path = paths[-1]
    cfg_in_file, sd = _split_file(load_pickle_weights(w_path), w_path)
    cfg_path = paths[0] if len(paths) == 2 else w_path
    if len(paths) == 2:
        raw = read_json_file(cfg_path)
    elif cfg_in_file is not None:
        raw = dict(cfg_in_file)
    else:
        raise ConfigError(f"{w_path}: no {opts.get('config', CONFIG)} next to the weights and no config inside; "
                          f"download the repo's {CONFIG} too")
    cfg, defaulted = settings({**raw, **{k: opt_int(opts[k], k) for k in ("d_in", "expansion_factor") if k in opts}})
    if cfg["is_transcoder"] or cfg["architecture"] != "standard":
        raise ConfigError(f"{cfg_path}: architecture {cfg['architecture']!r} / transcoder checkpoints are not "
                          "supported (only standard SAEs)")
    d = as_int(cfg, "d_in", cfg_path, "SAE input width")
    n = d * as_int(cfg, "expansion_factor", cfg_path, "latents per input dimension")
    act, k = _activation(cfg, cfg_path)
    tokens = "cls" if cfg["cls_token_only"] else "patch" if cfg["use_patches_only"] else "all"
    implied = hook_from_name(f"blocks.{cfg['hook_point_layer']}.{cfg['layer_subtype']}")
    hook = make_hook({**implied, "tokens": tokens} if implied else None, common,
                     f"{cfg_path} (hook blocks.{cfg['hook_point_layer']}.{cfg['layer_subtype']})")
    prov = {"files": [str(p) for p in paths], "defaults_applied": defaulted,
            "normalize_activations": cfg["normalize_activations"]}
    return build(tensor(sd, "W_enc", w_path, (d, n)), tensor(sd, "b_enc", w_path, (n,)),
                 tensor(sd, "W_dec", w_path, (n, d)), tensor(sd, "b_dec", w_path, (d,)), fmt=NAME, common=common,
                 hook=hook, file_base=base_from_model_name(cfg["model_name"]), provenance=prov, activation=act, k=k,
                 pre_bias=True, input_norm=_NORMS.get(cfg["normalize_activations"], "none"))


def _activation(cfg: dict, path) -> tuple[str, int | None]:
    name = cfg["activation_fn_str"]
    if name == "relu":
        return "relu", None
    if name == "topk":
        k = (cfg.get("activation_fn_kwargs") or {}).get("k")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"{path}: activation_fn_str 'topk' needs activation_fn_kwargs.k (a positive integer), "
                              f"got {k!r}")
        return "topk", k
    raise ConfigError(f"{path}: activation_fn_str {name!r} is not supported (relu, topk)")
