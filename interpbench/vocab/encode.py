"""Encode a vocabulary through a text tower once, then reuse it from disk.

There is one text cache in interpbench: `extraction.extract.encode_texts_cached` (chunked,
atomic, resumable; captions use it too). This module only decides the *key* a vocabulary
is stored under, so that every caller keys it the same way: the model's key (fingerprint,
spec, which output), the vocabulary's content hash and the prompt template. Keying by
content rather than by name means an edited vocabulary file is never served stale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from interpbench.errors import BadSpecError
from interpbench.vocab.store import Vocabulary, words_sha256

if TYPE_CHECKING:  # torch is imported only when something is encoded (`vocab list` stays light)
    import torch

EncodeFn = Callable[[list[str]], "torch.Tensor"]


def apply_template(template: str, word: str) -> str:
    """Put `word` into `template` at "{}" (or "{c}", the Shapes prompt style).

    str.replace, not str.format, so braces elsewhere in a template are harmless.
    """
    for slot in ("{c}", "{}"):
        if slot in template:
            return template.replace(slot, word)
    raise BadSpecError(f"template {template!r} has no slot for the word; expected '{{}}' or '{{c}}', "
                       "e.g. 'a photo of a {}.'")


def vocab_cache_key(key: dict, words: Sequence[str], template: str) -> dict:
    """The cache key of (model key, vocabulary content, template)."""
    if not isinstance(key, dict) or not key:
        raise BadSpecError(f"encode cache key must be a non-empty dict identifying the model "
                           f"(e.g. {{'model': meta.fingerprint, 'spec': meta.spec}}), got {key!r}")
    return {**key, "what_texts": "vocabulary", "vocab_sha256": words_sha256(words),
            "n_words": len(words), "template": template}


def encode_vocab(encode: EncodeFn, words: Vocabulary | Sequence[str], cache_root: Path | str, key: dict, *,
                 template: str = "{}", sparse: bool = True, batch_size: int = 512, rows: bool = False,
                 progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """[V, F] float32 encodings of the templated words, computed once per (key, words, template);
    with `rows`, as extraction.cache.SparseRows (never dense: V x F is large at wide SAEs).

    `encode(list_of_texts) -> [B, F]`; `cache_root` is the run's cache folder (the texts
    go under cache_root/texts, beside the image activations).
    """
    from interpbench.extraction.extract import encode_texts_cached  # heavy import, only when encoding

    words = list(words.words if isinstance(words, Vocabulary) else words)
    if not words or not all(isinstance(w, str) for w in words):
        raise BadSpecError("encode_vocab needs a non-empty list of strings (the vocabulary entries)")
    texts = [apply_template(template, w) for w in words]
    return encode_texts_cached(encode, texts, Path(cache_root), vocab_cache_key(key, words, template),
                               batch_size=batch_size, sparse=sparse, rows=rows, progress=progress)
