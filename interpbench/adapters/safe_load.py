"""Loading strangers' weight files without running strangers' code.

safetensors wherever a format allows; pickled files only through
`torch.load(weights_only=True)` with a small explicit allowlist (a few numpy scalar types
that MSAE checkpoints hold). A pickle that asks for anything else (os.system,
builtins.eval, a library's config class, ...) is refused by torch's restricted unpickler
before the object is built, so its payload never runs; we turn that refusal into
`UnsafeFileError`. Anything else that goes wrong while reading is `CorruptFileError`
(truncated download, not a checkpoint at all).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from interpbench.errors import CorruptFileError, MissingFileError, UnsafeFileError

# Phrases torch uses when its restricted unpickler refuses something (torch 2.4 .. 2.14).
_REFUSAL_MARKERS = ("Weights only load failed", "Unsupported global", "Unsupported operand")


def _numpy_allowlist() -> list:
    """numpy scalar types that MSAE checkpoints hold (target_norm as np.float64 etc.).

    Rebuilding a numpy scalar only copies bytes into a known dtype; none of these can call
    arbitrary functions, which is why they are safe to allow.
    """
    import numpy as np

    allow = [np.dtype, np.float64, np.float32, np.int64, np.int32, np.bool_]
    for modname in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy < 2, >= 2
        try:
            mod = __import__(modname, fromlist=["scalar"])
            allow.append(mod.scalar)
        except (ImportError, AttributeError):  # pragma: no cover - depends on the numpy version
            pass
    allow += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return allow


def load_safetensors(path: Path, required: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "a safetensors weights file", "check the path or the repo's file name")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptFileError(path, f"cannot be read as safetensors ({exc}); it may be truncated") from exc
    missing = [k for k in required if k not in tensors]
    if missing:
        raise CorruptFileError(path, f"missing tensor(s) {missing}; found {sorted(tensors)[:12]}",
                               "check that the file matches the declared format")
    return tensors


def load_pickle_weights(path: Path, extra_allowed: list | None = None):
    """torch.load with weights_only=True and a minimal allowlist; refuses code-executing pickles."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "a torch checkpoint", "check the path or the repo's file name")
    return _restricted_load(str(path), path, extra_allowed)


def load_pickle_stream(data: bytes | BinaryIO, source: Path, extra_allowed: list | None = None):
    """Same as `load_pickle_weights` for bytes already read from `source` (e.g. after a header line)."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return _restricted_load(stream, Path(source), extra_allowed)


def _restricted_load(target, path: Path, extra_allowed: list | None):
    allowed = _numpy_allowlist() + list(extra_allowed or [])
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(target, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types here; we classify by message below
        text = str(exc) or type(exc).__name__
        if any(m in text for m in _REFUSAL_MARKERS):
            raise UnsafeFileError(
                f"{path}: refused to unpickle: the file asks for objects outside the weights-only "
                f"allowlist (it could run code). Nothing from it was executed. Convert it to safetensors "
                f"with code you trust, or ask the checkpoint's authors for a plain state dict. "
                f"Detail: {_detail(text)}"
            ) from exc
        raise CorruptFileError(path, f"cannot be read as a torch checkpoint ({_detail(text)}); "
                                     "it may be truncated or not a torch file") from exc


def checkpoint_error(path: Path, exc: Exception) -> Exception:
    """Classify an exception a library (open_clip, torch, safetensors) raised while reading
    checkpoint `path` into the project's error for it; the caller raises it `from exc`."""
    text = str(exc) or type(exc).__name__
    if any(m in text for m in _REFUSAL_MARKERS):
        return UnsafeFileError(f"{path}: refused to unpickle: the file asks for objects outside the weights-only "
                               f"allowlist (it could run code). Nothing from it was executed. Convert it to "
                               f"safetensors with code you trust. Detail: {_detail(text)}")
    if "size mismatch" in text or "Missing key" in text or "Unexpected key" in text:
        from interpbench.errors import ShapeMismatchError

        return ShapeMismatchError(f"{path}: the weights do not fit the architecture ({_detail(text)}). "
                                  "Check that the architecture before '@' is the one the checkpoint was trained as.")
    return CorruptFileError(path, f"cannot be read as a checkpoint ({type(exc).__name__}: {_detail(text)}); "
                                  "it may be truncated or not a weights file")


def _detail(text: str) -> str:
    """The informative line of torch's long refusal message (the one naming the global)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln:
            return ln[:300]
    return (lines[0] if lines else text)[:300]
