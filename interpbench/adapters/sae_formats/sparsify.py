"""EleutherAI sparsify: a hookpoint folder with cfg.json + sae.safetensors.

`encoder.weight` is stored [n, d] (nn.Linear layout), so W_enc is its transpose. Encoding
is relu((x - b_dec) @ W_enc + b_enc) then top-k; as relu is monotone this equals top-k then
relu, i.e. the canonical topk. Weights are often saved in bf16; we compute in float32.
Transcoders (`transcode`) predict another site's activations, so they are not SAEs of the
hooked site and are refused; the older `groupmax` / `signed` variants are refused too.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import (
    as_int,
    build,
    hook_from_name,
    make_hook,
    need,
    read_json_file,
    tensor,
)
from interpbench.adapters.safe_load import load_safetensors
from interpbench.errors import ConfigError

NAME = "sparsify"
DESCRIPTION = "EleutherAI sparsify hookpoint folder: cfg.json + sae.safetensors (TopK)"
OPTIONS = {"hookpoint": "sub-folder of a multi-hookpoint checkpoint, e.g. layers.5"}
CFG, WEIGHTS = "cfg.json", "sae.safetensors"


def _folder(location: str, opts: dict) -> str:
    if hub.basename(location) in (CFG, WEIGHTS):
        location = hub.sibling(location, "").rstrip("/")
    return hub.join(location, opts["hookpoint"]) if opts.get("hookpoint") else location


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    folder = _folder(location, opts)
    return [hub.resolve(folder, CFG, offline=offline), hub.resolve(folder, WEIGHTS, offline=offline)]


def load(location: str, offline: bool, common: dict, opts: dict):
    cfg_path, w_path = files(location, offline, opts)
    cfg = read_json_file(cfg_path)
    for flag in ("transcode", "signed"):
        if cfg.get(flag):
            raise ConfigError(f"{cfg_path}: {flag}=true checkpoints are not supported (not an SAE of one site)")
    if cfg.get("activation", "topk") != "topk":
        raise ConfigError(f"{cfg_path}: activation {cfg.get('activation')!r} is not supported (only 'topk')")
    t = load_safetensors(w_path)
    enc = t.get("encoder.weight")
    d = as_int(cfg, "d_in", cfg_path, "SAE input width") if "d_in" in cfg else (
        enc.shape[1] if enc is not None else need(cfg, "d_in", cfg_path, "SAE input width"))
    n = int(cfg.get("num_latents") or 0) or d * as_int(cfg, "expansion_factor", cfg_path,
                                                       "latents per input dimension (num_latents is 0)")
    k = as_int(cfg, "k", cfg_path, "number of active latents")
    W_enc = tensor(t, "encoder.weight", w_path, (n, d), "sparsify stores the encoder as [num_latents, d_in]").T
    b_enc = tensor(t, "encoder.bias", w_path, (n,))
    W_dec, b_dec = tensor(t, "W_dec", w_path, (n, d)), tensor(t, "b_dec", w_path, (d,))
    W_skip = tensor(t, "W_skip", w_path, (d, d)) if "W_skip" in t or cfg.get("skip_connection") else None
    # The folder name is the hookpoint (e.g. visual.transformer.resblocks.5, layers.5).
    implied = hook_from_name(opts.get("hookpoint") or Path(cfg_path).parent.name)
    hook = make_hook({"tokens": "all", **implied} if implied else None, common, str(cfg_path))
    prov = {"files": [str(cfg_path), str(w_path)], "hookpoint": opts.get("hookpoint") or Path(cfg_path).parent.name}
    return build(W_enc, b_enc, W_dec, b_dec, fmt=NAME, common=common, hook=hook, file_base=None, provenance=prov,
                 activation="topk", k=k, pre_bias=True, input_norm="none", W_skip=W_skip)
