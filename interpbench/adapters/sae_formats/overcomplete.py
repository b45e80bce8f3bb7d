"""overcomplete (KempnerInstitute/overcomplete): a plain torch state dict of an SAE, TopKSAE or
JumpSAE with the default linear encoder.

Keys: encoder.final_block.0.weight [C, d] (nn.Linear layout), encoder.final_block.0.bias [C],
dictionary._weights [C, d], dictionary.multiplier (scalar); JumpSAE adds `thresholds` [C]
(log thresholds: a code survives when it is at least exp(thresholds)). The dictionary is the
row-L2-normalised `_weights` times exp(multiplier), and there is no decoder bias: x̂ = z @ D.
We build D from the raw tensors (the library's cached fused dictionary is never trusted).

SAE and TopKSAE write identical state dicts (TopKSAE's `top_k` is a plain attribute, not a
buffer), so the file cannot say which one it is, and reading a TopKSAE as ReLU gives every
latent with a positive pre-activation instead of k of them. The caller must say: ?top_k=K
(TopKSAE) or ?activation=relu (SAE); a file with neither is refused. BatchTopKSAE keeps its
inference threshold outside the state dict too: it cannot be reproduced from the file.
Other encoders (MLP/BatchNorm/attention blocks) and other SAE classes (keys such as Q, or an
archetypal dictionary) are refused: they are not linear SAEs.
The state dict does not record the hook either: pass ?hook=.
"""

from __future__ import annotations

from pathlib import Path

import torch

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import build, find_one, make_hook, opt_int, tensor
from interpbench.adapters.safe_load import load_pickle_weights
from interpbench.errors import ConfigError, CorruptFileError

NAME = "overcomplete"
DESCRIPTION = ("overcomplete state dict (linear encoder, normalised dictionary x exp(multiplier)); needs ?hook= "
               "and ?top_k=K (TopKSAE) or ?activation=relu (SAE)")
OPTIONS = {"top_k": "TopKSAE: number of active latents (the file does not record it)",
           "activation": "relu for a plain SAE, topk for a TopKSAE (with top_k=K); JumpSAE files are detected"}
ENC_W, ENC_B = "encoder.final_block.0.weight", "encoder.final_block.0.bias"
DICT_W, DICT_M = "dictionary._weights", "dictionary.multiplier"
JUMP_T = "thresholds"  # JumpSAE's log thresholds, a top-level parameter
KNOWN_KEYS = (ENC_W, ENC_B, DICT_W, DICT_M, JUMP_T)


def _path(location: str, offline: bool) -> Path:
    return hub.resolve(find_one(location, offline, (".pt", ".pth"), "overcomplete state dict"), offline=offline)


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    return [_path(location, offline)]


def dictionary(weights: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(weights, dim=-1) * torch.exp(multiplier)


def activation(sd: dict, opts: dict, path: Path) -> dict:
    """The activation settings (build() keywords) from the file and the caller's options."""
    act = str(opts.get("activation", "")).strip().lower() or None
    k = opt_int(opts["top_k"], "top_k") if "top_k" in opts else None
    if act not in (None, "relu", "topk", "jumprelu"):
        raise ConfigError(f"option 'activation' must be relu or topk for an overcomplete SAE, got {opts['activation']!r}")
    if k is not None and k < 1:
        raise ConfigError(f"option 'top_k' must be a positive integer, got {k}")
    if JUMP_T in sd:  # a JumpSAE: the file records its thresholds, so it needs no option
        if k is not None or act in ("relu", "topk"):
            raise ConfigError(f"{path}: the file is a JumpSAE (it has {JUMP_T!r}), which neither top_k nor "
                              f"activation={act} describes; drop those options")
        C = sd[ENC_W].shape[0]
        return {"activation": "jumprelu", "threshold": torch.exp(tensor(sd, JUMP_T, path, (C,)))}
    if act == "jumprelu":
        raise ConfigError(f"{path}: activation=jumprelu needs a JumpSAE file, which has a {JUMP_T!r} tensor; "
                          "this one has none")
    if act == "relu" and k is not None:
        raise ConfigError(f"options activation=relu and top_k={k} contradict each other: pass top_k=K alone for a "
                          "TopKSAE, or activation=relu alone for a plain SAE")
    if act == "topk" and k is None:
        raise ConfigError(f"{path}: activation=topk needs the number of active latents: add top_k=K (the TopKSAE's "
                          "top_k; overcomplete's default is nb_concepts // 10)")
    if k is not None:
        return {"activation": "topk", "k": k}
    if act == "relu":
        return {"activation": "relu"}
    raise ConfigError(f"{path}: an overcomplete state dict does not record whether it is a plain SAE (ReLU) or a "
                      "TopKSAE (their files are identical), and reading a TopKSAE as ReLU gives wrong codes. "
                      "Pass ?top_k=K for a TopKSAE (overcomplete's default is nb_concepts // 10) or "
                      "?activation=relu for a plain SAE")


def load(location: str, offline: bool, common: dict, opts: dict):
    path = _path(location, offline)
    sd = load_pickle_weights(path)
    if not isinstance(sd, dict):
        raise CorruptFileError(path, f"expected a state dict, got {type(sd).__name__}")
    extra = sorted(k for k in sd if k.startswith("encoder.") and k not in (ENC_W, ENC_B))
    if extra:
        raise ConfigError(f"{path}: encoder has more than one linear layer ({extra[:4]}...); only overcomplete's "
                          "linear encoder maps onto a canonical SAE")
    unknown = sorted(k for k in sd if k not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: tensors {unknown[:6]} belong to an overcomplete model other than SAE, TopKSAE or "
                          "JumpSAE with a linear encoder and a plain dictionary (e.g. QSAE's Q, an archetypal "
                          "dictionary); it cannot be read as a linear SAE")
    if ENC_W not in sd:
        raise CorruptFileError(path, f"missing tensor {ENC_W!r}; found {sorted(sd)[:8]}")
    C, d = sd[ENC_W].shape
    W_enc = tensor(sd, ENC_W, path, (C, d)).T
    b_enc = tensor(sd, ENC_B, path, (C,))
    mult = tensor(sd, DICT_M, path).reshape(-1)
    if mult.numel() != 1:
        raise CorruptFileError(path, f"tensor {DICT_M!r} has {mult.numel()} values, expected a scalar")
    D = dictionary(tensor(sd, DICT_W, path, (C, d)), mult[0])
    act = activation(sd, opts, path)
    prov = {"files": [str(path)], "multiplier": float(mult[0])}
    return build(W_enc, b_enc, D, torch.zeros(d), fmt=NAME, common=common, hook=make_hook(None, common, str(path)),
                 file_base=None, provenance=prov, pre_bias=False, input_norm="none", **act)
