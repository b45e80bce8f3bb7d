"""saev (OSU-NLP-Group/saev): `sae.pt` = one JSON header line, then torch.save(state_dict) bytes.

The header is {"schema": N, "cfg": {...}, ...} or, before schemas, the raw config (then the
activation is ReLU). We parse the header as JSON and read the rest with the weights-only
unpickler: nothing in the file runs. saev encodes *without* subtracting b_dec, and its TopK
keeps the k largest pre-activations as they are (no ReLU); BatchTopK is per-sample TopK at
inference. The file does not say where it reads the model, so pass ?hook= (the registry does).
"""

from __future__ import annotations

import json
from pathlib import Path

from interpbench.adapters import hub
from interpbench.adapters.sae_formats._common import build, find_one, make_hook, tensor
from interpbench.adapters.safe_load import load_pickle_stream
from interpbench.errors import ConfigError, CorruptFileError

NAME = "saev"
DESCRIPTION = "saev sae.pt: JSON header line + torch state dict (ReLU | TopK | BatchTopK); needs ?hook="
OPTIONS: dict[str, str] = {}


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


def activation(header: dict, path: Path) -> tuple[str, int | None]:
    """saev's schema rules: pre-schema = ReLU; schema 1 has two layouts; schema 2 cfg.activation."""
    cfg = header.get("cfg", header)
    if "schema" not in header:
        return "relu", None
    if header["schema"] not in (1, 2):
        raise ConfigError(f"{path}: unknown saev header schema {header['schema']!r} (known: 1, 2)")
    act = cfg.get("activation")
    if header["schema"] == 1 and header.get("cls") in ("Relu", "TopK", "BatchTopK"):
        name, params = header["cls"], {"top_k": cfg.get("top_k", 32)}
    elif isinstance(act, dict):
        name, params = act.get("cls"), act.get("params") or {}
    else:
        name, params = "Relu", {}
    if name == "Relu":
        return "relu", None
    if name in ("TopK", "BatchTopK"):
        return "topk", int(params.get("top_k", 32))  # saev's TopK default k
    raise ConfigError(f"{path}: saev activation {name!r} is not supported (Relu, TopK, BatchTopK)")


def load(location: str, offline: bool, common: dict, opts: dict):
    path = _path(location, offline)
    header, sd = read(path)
    cfg = header.get("cfg", header)
    d = cfg.get("d_vit") or (sd["W_enc"].shape[0] if "W_enc" in sd else None)
    if not isinstance(d, int):
        raise ConfigError(f"{path}: header lacks 'd_vit' (input width) and there is no W_enc tensor")
    n = d * int(cfg.get("exp_factor", 16)) if "exp_factor" in cfg else sd["W_enc"].shape[1]
    act, k = activation(header, path)
    hook = make_hook(None, common, str(path))
    prov = {"files": [str(path)], "schema": header.get("schema"), "lib": header.get("lib"),
            "commit": header.get("commit")}
    return build(tensor(sd, "W_enc", path, (d, n)), tensor(sd, "b_enc", path, (n,)),
                 tensor(sd, "W_dec", path, (n, d)), tensor(sd, "b_dec", path, (d,)), fmt=NAME, common=common,
                 hook=hook, file_base=None, provenance=prov, activation=act, k=k, pre_bias=False,
                 input_norm="none", topk_relu=False)
