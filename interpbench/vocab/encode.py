"""Encode a vocabulary through a text tower once, then reuse it from disk.

One cache file per (model key, vocabulary hash, template): a safetensors file named by the
hash of those three, written atomically, its header repeating them so a stale or foreign
file is detected and re-encoded rather than trusted.

Storage: float32 values exactly as the encoder returned them (no float16 rounding, so
label rankings from the cache equal those from a fresh encode). Layout by density: CSR
(row pointers int64, column indices int32, values) when fewer than half the entries are
non-zero, which is what sparse CLIP and SAE features give (a 98k x 55k vocabulary would
be 21 GB dense, ~0.2 GB as CSR); dense [V, F] otherwise, which is smaller when nearly all
entries are non-zero (dense CLIP embeddings). The caller picks the returned layout.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from interpbench.errors import BadSpecError, NumericalError, ShapeMismatchError
from interpbench.ioutils import atomic_writer
from interpbench.vocab.store import Vocabulary, words_sha256

FORMAT_NAME = "interpbench-vocab-encoding"
FORMAT_VERSION = "1"
EncodeFn = Callable[[list[str]], torch.Tensor]


def default_vocab_cache_dir() -> Path:
    """$INTERPBENCH_CACHE/vocab, else ~/.cache/interpbench/vocab (same root as the activation cache)."""
    from interpbench.extraction.cache import default_cache_dir

    return default_cache_dir() / "vocab"


def apply_template(template: str, word: str) -> str:
    """Put `word` into `template` at "{}" (or "{c}", the Shapes prompt style)."""
    for slot in ("{c}", "{}"):
        if slot in template:
            return template.replace(slot, word)
    raise BadSpecError(f"template {template!r} has no slot for the word; expected '{{}}' or '{{c}}', "
                       "e.g. 'a photo of a {}.'")


def _canonical_key(key: dict) -> str:
    if not isinstance(key, dict) or not key:
        raise BadSpecError(f"encode cache key must be a non-empty dict identifying the model "
                           f"(e.g. {{'fingerprint': meta.fingerprint}}), got {key!r}")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadSpecError(f"encode cache key must be JSON-serialisable (strings, numbers, lists, "
                           f"dicts): {exc}") from exc


def cache_header(words: Sequence[str], key: dict, template: str) -> dict[str, str]:
    """What identifies an encoding; also stored in the file header and checked on load."""
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "key": _canonical_key(key),
            "vocab_sha256": words_sha256(words), "n_words": str(len(words)), "template": template}


def cache_path(cache_dir: Path, header: dict[str, str]) -> Path:
    blob = json.dumps(header, sort_keys=True).encode()
    return Path(cache_dir) / f"{hashlib.sha256(blob).hexdigest()[:32]}.safetensors"


class _Pieces:
    """Batches of encoder output, kept dense or as CSR pieces per batch (by batch density)."""

    def __init__(self):
        self.batches: list[torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.rows = 0
        self.n_features: int | None = None
        self.nnz = 0

    def add(self, out: torch.Tensor, n_expected: int, start: int) -> None:
        out = _check_batch(out, n_expected, self.n_features, start)
        self.n_features = out.shape[1]
        rows, cols = out.nonzero(as_tuple=True)
        self.nnz += rows.numel()
        self.rows += out.shape[0]
        if 2 * rows.numel() >= out.numel():
            self.batches.append(out)
        else:
            counts = torch.bincount(rows, minlength=out.shape[0])
            self.batches.append((counts, cols.to(torch.int32), out[rows, cols].contiguous()))

    def dense(self) -> torch.Tensor:
        return torch.cat([b if isinstance(b, torch.Tensor) else _piece_to_dense(b, self.n_features)
                          for b in self.batches])

    def csr(self) -> dict[str, torch.Tensor]:
        counts, cols, vals = [], [], []
        for b in self.batches:
            c, col, val = _dense_to_piece(b) if isinstance(b, torch.Tensor) else b
            counts.append(c)
            cols.append(col)
            vals.append(val)
        crow = torch.zeros(self.rows + 1, dtype=torch.int64)
        crow[1:] = torch.cat(counts).cumsum(0)
        return {"crow": crow, "col": torch.cat(cols), "val": torch.cat(vals)}


def _dense_to_piece(dense: torch.Tensor):
    rows, cols = dense.nonzero(as_tuple=True)
    return torch.bincount(rows, minlength=dense.shape[0]), cols.to(torch.int32), dense[rows, cols].contiguous()


def _piece_to_dense(piece, n_features: int) -> torch.Tensor:
    counts, cols, vals = piece
    rows = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    out = torch.zeros(counts.numel(), n_features, dtype=torch.float32)
    out[rows, cols.long()] = vals
    return out


def _check_batch(out, n_expected: int, n_features: int | None, start: int) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != n_expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ShapeMismatchError(f"encode_fn returned {got} for {n_expected} words (batch at word {start}); "
                                 "expected a tensor [n_words, n_features]")
    if n_features is not None and out.shape[1] != n_features:
        raise ShapeMismatchError(f"encode_fn returned {out.shape[1]} features at word {start} but "
                                 f"{n_features} before; the feature count must not change between batches")
    out = out.detach().to("cpu", torch.float32)
    if out.is_sparse or out.layout != torch.strided:
        out = out.to_dense()
    if not torch.isfinite(out).all():
        raise NumericalError(f"encode_fn returned NaN or inf for words {start}..{start + n_expected - 1}")
    return out


def _encode(texts: list[str], encode_fn: EncodeFn, batch_size: int, progress: bool) -> _Pieces:
    pieces = _Pieces()
    starts = range(0, len(texts), batch_size)
    bar = _progress(progress and len(starts) > 1)
    with bar, torch.no_grad():
        task = bar.add_task("encoding vocabulary", total=len(texts))
        for start in starts:
            batch = texts[start:start + batch_size]
            pieces.add(encode_fn(batch), len(batch), start)
            bar.advance(task, len(batch))
    return pieces


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, disable=not enabled)


def _save(path: Path, pieces: _Pieces, header: dict[str, str]) -> dict[str, torch.Tensor]:
    v, f = pieces.rows, pieces.n_features
    if 2 * pieces.nnz < v * f:
        tensors, layout = pieces.csr(), "csr"
    else:
        tensors, layout = {"features": pieces.dense()}, "dense"
    meta = {**header, "layout": layout, "n_features": str(f)}
    with atomic_writer(path) as tmp:
        save_file(tensors, tmp, metadata=meta)
    return _as_result(tensors, v, f)


def _load(path: Path, header: dict[str, str]) -> dict[str, torch.Tensor] | None:
    """The cached tensors, or None (with a warning) when the file is unreadable or not ours."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if any(meta.get(k) != v for k, v in header.items()):
            raise ValueError("its header names a different model key, vocabulary or template")
        tensors = load_file(str(path))
        return _as_result(tensors, int(meta["n_words"]), int(meta["n_features"]))
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as exc:
        warnings.warn(f"{path}: unusable vocabulary encoding cache ({exc}); encoding again", stacklevel=3)
        return None


def _as_result(tensors: dict[str, torch.Tensor], v: int, f: int) -> dict:
    if "features" in tensors:
        if tuple(tensors["features"].shape) != (v, f):
            raise ValueError(f"features have shape {tuple(tensors['features'].shape)}, expected {(v, f)}")
        return {"dense": tensors["features"], "shape": (v, f)}
    crow, col, val = tensors["crow"], tensors["col"], tensors["val"]
    if crow.numel() != v + 1 or col.numel() != val.numel() or int(crow[-1]) != val.numel():
        raise ValueError("CSR arrays are inconsistent")
    return {"csr": (crow, col, val), "shape": (v, f)}


def _to_layout(result: dict, sparse: bool) -> torch.Tensor:
    if "dense" in result:
        dense = result["dense"]
        return dense.to_sparse_csr() if sparse else dense
    crow, col, val = result["csr"]
    csr = torch.sparse_csr_tensor(crow, col.long(), val, size=result["shape"])
    return csr if sparse else csr.to_dense()


def encode_vocab(words: Vocabulary | Sequence[str], encode_fn: EncodeFn, cache_dir: Path | str | None = None,
                 key: dict | None = None, *, template: str = "{}", batch_size: int = 256,
                 sparse: bool = False, progress: bool = True) -> torch.Tensor:
    """Text-tower features of every word, [V, F] float32, encoded once per (key, words, template).

    `encode_fn(list_of_texts) -> [B, F]` is called on templated words in order, in batches
    of `batch_size`, under no_grad. `key` must identify everything that changes the output
    (model fingerprint, precision, feature kind). `cache_dir=None` means
    `default_vocab_cache_dir()`. `sparse=True` returns a sparse CSR tensor, else dense.
    """
    words = list(words.words if isinstance(words, Vocabulary) else words)
    if not words or not all(isinstance(w, str) for w in words):
        raise BadSpecError("encode_vocab needs a non-empty list of strings (the vocabulary entries)")
    if batch_size < 1:
        raise BadSpecError(f"batch_size must be >= 1, got {batch_size}")
    texts = [apply_template(template, w) for w in words]
    header = cache_header(words, key, template)
    path = cache_path(Path(cache_dir) if cache_dir is not None else default_vocab_cache_dir(), header)
    result = _load(path, header) if path.is_file() else None
    if result is None:
        result = _save(path, _encode(texts, encode_fn, batch_size, progress), header)
    return _to_layout(result, sparse)


def encode_vocab_for(representation, words: Vocabulary | Sequence[str], *, template: str = "{}",
                     cache_dir: Path | str | None = None, batch_size: int = 256,
                     sparse: bool | None = None, progress: bool = True) -> torch.Tensor:
    """`encode_vocab` through a `Representation`'s `encode_text_features`, keyed by its fingerprint.

    `sparse=None` returns CSR when the representation has more than 4096 features.
    """
    meta = representation.meta
    if not meta.fingerprint:
        raise BadSpecError(f"representation {meta.name!r} has no weight fingerprint, so its vocabulary "
                           "encodings cannot be cached safely; set meta.fingerprint when loading it")
    if not meta.has_text:
        raise BadSpecError(f"representation {meta.name!r} has no text tower (has_text is False); "
                           "name its features from images or decoder atoms instead")
    key = {"fingerprint": meta.fingerprint, "spec": meta.spec, "output": "text_features"}
    return encode_vocab(words, representation.encode_text_features, cache_dir, key, template=template,
                        batch_size=batch_size, sparse=meta.n_features > 4096 if sparse is None else sparse,
                        progress=progress)
