"""saev (OSU-NLP-Group/saev): `sae.pt` = one JSON header line, then torch.save(state_dict) bytes.

The header forms saev has written (its `nn.modeling.dump`, 2024 to schema 5):
    no "schema"   the raw config (d_vit, exp_factor, ...): a ReLU SAE
    schema 1      "cls": "Relu" | "TopK" | "BatchTopK" with cfg.top_k (default 32), or
                  "cls": "SparseAutoencoderConfig" with cfg.activation as below
    schema 2-5    cfg.activation = {"cls": "Relu" | "TopK" | "BatchTopK", "params": {"top_k": K, ...}}
Any other activation (a string such as "topk", an unknown class, a missing field) is refused
with the file and the field named: saev never writes one, and guessing gives wrong codes.

Inference: saev encodes *without* subtracting b_dec; TopK keeps the k largest pre-activations
as they are (no ReLU). BatchTopK at inference is what the file's saev did: since Nov 2025 the
state dict holds `activation.threshold` θ and codes are x·[x > θ] (a JumpReLU; plain ReLU when
θ <= 0); earlier files have no θ and used per-sample TopK. We parse the header as JSON and read
the rest with the weights-only unpickler: nothing in the file runs. The file does not say where
it reads the model, so pass ?hook= (the registry does).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import as_int, build, find_one, make_hook, tensor
from interpbench.adapters.safe_load import load_pickle_stream
from interpbench.errors import ConfigError, CorruptFileError

NAME = "saev"
DESCRIPTION = "saev sae.pt: JSON header line + torch state dict (ReLU | TopK | BatchTopK); needs ?hook="
OPTIONS: dict[str, str] = {}
SCHEMAS = (1, 2, 3, 4, 5)
CLASSES = ("Relu", "TopK", "BatchTopK")
THRESHOLD = "activation.threshold"  # BatchTopK's inference threshold (saev since Nov 2025)
KNOWN_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec", THRESHOLD)


def _path(location: str, offline: bool) -> Path:
    return hub.resolve(find_one(location, offline, (".pt",), "saev checkpoint"), offline=offline)


def files(location: str, offline: bool, opts: dict) -> list[Path]:
    return [_path(location, offline)]


def read(path: Path) -> tuple[dict, dict]:
    """(header, state dict) of a saev file."""
    with open(path, "rb") as fh:
        line = fh.readline()
        try:
            header = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(path, f"the first line is not a JSON header ({exc}); a saev sae.pt starts "
                                         "with one JSON line followed by the torch weights") from None
        sd = load_pickle_stream(fh.read(), path)
    if not isinstance(header, dict) or not isinstance(sd, dict):
        raise CorruptFileError(path, "expected a JSON object header and a state dict after it")
    return header, sd


def _activation_class(header: dict, path: Path) -> tuple[str, dict]:
    """(saev activation class, its params) from a header, in every form saev writes."""
    if "schema" not in header:
        return "Relu", {}
    schema = header["schema"]
    if isinstance(schema, bool) or schema not in SCHEMAS:
        raise ConfigError(f"{path}: unknown saev header schema {schema!r} (known: {', '.join(map(str, SCHEMAS))})")
    cfg = header.get("cfg")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: header field 'cfg' must be an object, got {type(cfg).__name__}")
    if schema == 1 and header.get("cls") in CLASSES:  # schema 1, first layout: the class is the activation
        return header["cls"], {"top_k": cfg.get("top_k", 32)}
    act = cfg.get("activation")
    how = ('saev writes it as {"cls": "Relu" | "TopK" | "BatchTopK", "params": {"top_k": K, ...}}; fix the header '
           "or re-save the SAE with saev's own dump")
    if not isinstance(act, dict) or not isinstance(act.get("cls"), str) or not isinstance(act.get("params", {}), dict):
        raise ConfigError(f"{path}: header field cfg.activation is {act!r}, not a form saev writes: {how}")
    if act["cls"] not in CLASSES:
        raise ConfigError(f"{path}: header field cfg.activation.cls is {act['cls']!r}, which saev does not have "
                          f"(it has {', '.join(CLASSES)}; names are case-sensitive): {how}")
    return act["cls"], act.get("params") or {}


def activation(header: dict, sd: dict, path: Path) -> dict:
    """build() keywords for the activation the file's saev version ran at inference."""
    name, params = _activation_class(header, path)
    if THRESHOLD in sd and name != "BatchTopK":
        raise ConfigError(f"{path}: the weights hold {THRESHOLD!r}, which only saev's BatchTopK has, but the "
                          f"header says {name}")
    if name == "Relu":
        return {"activation": "relu"}
    k = as_int({"top_k": 32, **params}, "top_k", f"{path} [cfg.activation.params]",  # 32: saev's default
               "the number of active latents")
    if name == "BatchTopK" and THRESHOLD in sd:
        theta = float(tensor(sd, THRESHOLD, path).reshape(-1)[0])
        if theta <= 0:  # saev: no threshold learned yet -> plain ReLU
            return {"activation": "relu"}
        n = sd["W_enc"].shape[1] if "W_enc" in sd else 0
        return {"activation": "jumprelu", "threshold": torch.full((n,), theta)}
    return {"activation": "topk", "k": k, "topk_relu": False}


def _widths(cfg: dict, sd: dict, path: Path) -> tuple[int, int]:
    """(d, n): saev's config names (d_vit/exp_factor before Nov 2025, d_model/d_sae after), else W_enc."""
    if "W_enc" not in sd:
        raise CorruptFileError(path, f"missing tensor 'W_enc'; found {sorted(sd)[:8]}")
    d_key = "d_vit" if "d_vit" in cfg else "d_model"
    d = as_int(cfg, d_key, path, "input width") if d_key in cfg else int(sd["W_enc"].shape[0])
    if "d_sae" in cfg:
        return d, as_int(cfg, "d_sae", path, "number of latents")
    if "exp_factor" in cfg:
        return d, d * as_int(cfg, "exp_factor", path, "expansion factor")
    return d, int(sd["W_enc"].shape[1])


def load(location: str, offline: bool, common: dict, opts: dict):
    path = _path(location, offline)
    header, sd = read(path)
    unknown = sorted(k for k in sd if k not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: tensors {unknown[:6]} are not in any saev SAE (it saves W_enc, b_enc, W_dec, b_dec "
                          f"and, for BatchTopK, {THRESHOLD})")
    cfg = header.get("cfg", header)
    d, n = _widths(cfg if isinstance(cfg, dict) else {}, sd, path)
    act = activation(header, sd, path)
    hook = make_hook(None, common, str(path))
    prov = {"files": [str(path)], "schema": header.get("schema"), "lib": header.get("lib"),
            "commit": header.get("commit")}
    return build(tensor(sd, "W_enc", path, (d, n)), tensor(sd, "b_enc", path, (n,)),
                 tensor(sd, "W_dec", path, (n, d)), tensor(sd, "b_dec", path, (d,)), fmt=NAME, common=common,
                 hook=hook, file_base=None, provenance=prov, pre_bias=False, input_norm="none",
                 **act)
