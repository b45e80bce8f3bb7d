"""overcomplete (KempnerInstitute/overcomplete): a plain torch state dict of an SAE/TopKSAE
with the default linear encoder.

Keys: encoder.final_block.0.weight [C, d] (nn.Linear layout), encoder.final_block.0.bias [C],
dictionary._weights [C, d], dictionary.multiplier (scalar). The dictionary is the row-L2-
normalised `_weights` times exp(multiplier), and there is no decoder bias: x̂ = z @ D. We
build D from the raw tensors (the library's cached fused dictionary is never trusted).
Other encoders (MLP/BatchNorm/attention blocks) are refused: they are not linear SAEs.
The state dict records neither the activation nor the hook: pass ?top_k=K (TopKSAE) and ?hook=.
"""

from __future__ import annotations

from pathlib import Path

import torch

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import build, find_one, make_hook, opt_int, tensor
from interpbench.adapters.safe_load import load_pickle_weights
from interpbench.errors import ConfigError, CorruptFileError

NAME = "overcomplete"
DESCRIPTION = "overcomplete state dict (linear encoder, normalised dictionary x exp(multiplier)); needs ?hook="
OPTIONS = {"top_k": "TopKSAE: number of active latents (omit for the ReLU SAE)"}
ENC_W, ENC_B = "encoder.final_block.0.weight", "encoder.final_block.0.bias"
DICT_W, DICT_M = "dictionary._weights", "dictionary.multiplier"


def _path(location: str, offline: bool) -> Path:
    return hub.resolve(find_one(location, offline, (".pt", ".pth"), "overcomplete state dict"), offline=offline)


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    return [_path(location, offline)]


def dictionary(weights: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(weights, dim=-1) * torch.exp(multiplier)


def load(location: str, offline: bool, common: dict, opts: dict):
    path = _path(location, offline)
    sd = load_pickle_weights(path)
    if not isinstance(sd, dict):
        raise CorruptFileError(path, f"expected a state dict, got {type(sd).__name__}")
    extra = sorted(k for k in sd if k.startswith("encoder.") and k not in (ENC_W, ENC_B))
    if extra:
        raise ConfigError(f"{path}: encoder has more than one linear layer ({extra[:4]}...); only overcomplete's "
                          "linear encoder maps onto a canonical SAE")
    if ENC_W not in sd:
        raise CorruptFileError(path, f"missing tensor {ENC_W!r}; found {sorted(sd)[:8]}")
    C, d = sd[ENC_W].shape
    W_enc = tensor(sd, ENC_W, path, (C, d)).T
    b_enc = tensor(sd, ENC_B, path, (C,))
    mult = tensor(sd, DICT_M, path).reshape(-1)
    if mult.numel() != 1:
        raise CorruptFileError(path, f"tensor {DICT_M!r} has {mult.numel()} values, expected a scalar")
    D = dictionary(tensor(sd, DICT_W, path, (C, d)), mult[0])
    k = opt_int(opts["top_k"], "top_k") if "top_k" in opts else None
    prov = {"files": [str(path)], "multiplier": float(mult[0])}
    return build(W_enc, b_enc, D, torch.zeros(d), fmt=NAME, common=common, hook=make_hook(None, common, str(path)),
                 file_base=None, provenance=prov, activation="topk" if k else "relu", k=k, pre_bias=False,
                 input_norm="none")
