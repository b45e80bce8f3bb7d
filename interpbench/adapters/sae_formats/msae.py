"""MSAE (Matryoshka SAE, WolodjaZ/MSAE): one .pth pickle per SAE, settings in the file name.

File: {"model": state_dict, "mean_center": [d], "scaling_factor": float, "target_norm": float}
(read with the weights-only unpickler; numpy scalars are allow-listed). Name:
{n_latents}_{n_inputs}_{activation}[_{k}]_{RW|UW}_{tied}_{normalize}_{soft_cap}_{dataset...}.pth
Math: x' = (x - mean_center) * scaling_factor; pre = (x' - pre_bias) @ encoder + latent_bias;
x̂ = (z @ decoder + pre_bias) / scaling_factor + mean_center, i.e. the canonical mean_scale
normalisation with b_dec = pre_bias. MSAE's encode returns both the TopK code and the full
ReLU code; option `latents` picks which one becomes the features (default: the TopK code for
TopK files). We keep the saved scaling_factor as is (see sae-formats.md on how it was computed).
"""

from __future__ import annotations

import re
from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import build, find_one, make_hook, opt_float, opt_int, tensor
from interpbench.adapters.safe_load import load_pickle_weights
from interpbench.errors import ConfigError, CorruptFileError

NAME = "msae"
DESCRIPTION = "MSAE .pth (dict with model, mean_center, scaling_factor); settings from the file name"
OPTIONS = {
    "latents": "topk (default for TopK files) | relu: MSAE's full ReLU code instead of the TopK code",
    "k": "override k parsed from the file name (int)",
    "activation": "override the activation parsed from the file name (ReLU | TopKReLU | TopK)",
}
_NAME_RE = re.compile(r"^(?P<n>\d+)_(?P<d>\d+)_(?P<act>[A-Za-z]+)(?:_(?P<k>\d+))?_(?P<w>RW|UW)_(?P<tied>True|False)"
                      r"_(?P<norm>True|False)_(?P<cap>[0-9.]+)(?:_(?P<rest>.*))?\.pth?$")


def parse_name(name: str) -> dict:
    """Settings encoded in an MSAE file name; ConfigError naming the expected pattern."""
    m = _NAME_RE.match(name)
    if not m:
        raise ConfigError(f"{name}: not an MSAE file name; expected {{n_latents}}_{{n_inputs}}_{{activation}}[_k]_"
                          "{RW|UW}_{tied}_{normalize}_{soft_cap}_....pth (e.g. 6144_768_TopKReLU_64_RW_False_False_"
                          "0.0_cc3m_....pth); rename the file or pass ?activation=...&k=...")
    return {"n": int(m["n"]), "d": int(m["d"]), "act": m["act"], "k": int(m["k"]) if m["k"] else None,
            "tied": m["tied"] == "True", "normalize": m["norm"] == "True", "soft_cap": float(m["cap"]),
            "dataset": m["rest"] or ""}


def _path(location: str, offline: bool) -> Path:
    return hub.resolve(find_one(location, offline, (".pth", ".pt"), "MSAE checkpoint"), offline=offline)


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    return [_path(location, offline)]


def _activation(info: dict, opts: dict, path: Path) -> tuple[str, int | None, bool]:
    act = opts.get("activation", info["act"])
    k = opt_int(opts["k"], "k") if "k" in opts else info["k"]
    latents = str(opts.get("latents", "topk")).lower()
    if latents not in ("topk", "relu"):
        raise ConfigError(f"option 'latents' must be topk or relu, got {latents!r}")
    if act == "ReLU" or (act in ("TopKReLU", "TopK") and latents == "relu"):
        return "relu", None, True
    if act in ("TopKReLU", "TopK"):
        if k is None:
            raise ConfigError(f"{path}: activation {act} needs k (from the file name or ?k=N)")
        # "TopK" keeps signed values, "TopKReLU" clamps them (reading of MSAE's names; inferred)
        return "topk", k, act == "TopKReLU"
    raise ConfigError(f"{path}: MSAE activation {act!r} is not supported (supported: ReLU, TopKReLU, TopK)")


def load(location: str, offline: bool, common: dict, opts: dict):
    path = _path(location, offline)
    info = _loose(path.name) if "activation" in opts else parse_name(path.name)
    if info["soft_cap"] > 0 or info["normalize"]:
        raise ConfigError(f"{path}: latent soft cap / per-row normalize=True MSAE variants are not supported")
    obj = load_pickle_weights(path)
    if not isinstance(obj, dict) or "model" not in obj:
        raise CorruptFileError(path, "expected a dict with keys model, mean_center, scaling_factor "
                                     f"(MSAE checkpoint), got {type(obj).__name__}"
                                     + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else ""))
    sd = obj["model"]
    enc = sd.get("encoder")
    d, n = info["d"] or (enc.shape[0] if enc is not None else 0), info["n"] or (enc.shape[1] if enc is not None else 0)
    W_enc = tensor(sd, "encoder", path, (d, n), "MSAE encoder is [n_inputs, n_latents] per the file name")
    dec = tensor(sd, "decoder", path, (n, d)) if not (info["tied"] and "decoder" not in sd) else W_enc.T
    pre_bias = tensor(sd, "pre_bias", path, (d,))
    mean = tensor(obj, "mean_center", path, (d,)) if "mean_center" in obj else None
    if "scaling_factor" not in obj:
        raise CorruptFileError(path, "missing entry 'scaling_factor' (float) of the MSAE checkpoint")
    scale = opt_float(obj["scaling_factor"], "scaling_factor")
    activation, k, topk_relu = _activation(info, opts, path)
    hook = make_hook({"site": "image_embed", "tokens": "cls"}, common, str(path))
    prov = {"files": [str(path)], "file_settings": info, "latents": "relu" if activation == "relu" else "topk",
            "target_norm": float(obj["target_norm"]) if "target_norm" in obj else None}
    return build(W_enc, tensor(sd, "latent_bias", path, (n,)), dec, pre_bias, fmt=NAME, common=common, hook=hook,
                 file_base=None, provenance=prov, activation=activation, k=k, pre_bias=True,
                 input_norm="mean_scale", topk_relu=topk_relu, input_mean=mean, input_scale=scale)


def _loose(name: str) -> dict:
    """With ?activation= given, an unparseable name is allowed: shapes then come from the tensors."""
    try:
        return parse_name(name)
    except ConfigError:
        return {"n": 0, "d": 0, "act": "", "k": None, "tied": False, "normalize": False, "soft_cap": 0.0, "dataset": ""}
