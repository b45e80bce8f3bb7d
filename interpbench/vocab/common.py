"""The most common English words, from the `wordfreq` package (its bundled data, offline)."""

from __future__ import annotations

import importlib.metadata
import unicodedata

from interpbench.errors import VocabularyError
from interpbench.vocab.stopwords import STOP_WORDS

PIP_HINT = "pip install wordfreq  (or: pip install 'interpbench[vocab]')"
COMMON_SIZE = 20_000
# wordfreq's list is ranked by frequency; we read further down it than COMMON_SIZE so
# that COMMON_SIZE words remain after the filter below drops numbers, contractions, etc.
_SCAN_DEPTH = 60_000


def wordfreq_version() -> str:
    try:
        return importlib.metadata.version("wordfreq")
    except importlib.metadata.PackageNotFoundError as exc:
        raise VocabularyError(
            f"the wordfreq package is not installed; it is needed only to rebuild the vocabularies. "
            f"Install it with: {PIP_HINT}") from exc


def keep_common(word: str) -> bool:
    """Alphabetic (no digits, apostrophes or periods), at least 2 letters, not a stop word."""
    return word.isalpha() and len(word) >= 2 and word not in STOP_WORDS


def common_words(n: int = COMMON_SIZE) -> list[str]:
    """The `n` most frequent English words that pass `keep_common`, in frequency order."""
    wordfreq_version()  # clear error when absent
    import wordfreq

    ranked = wordfreq.top_n_list("en", _SCAN_DEPTH)
    kept: dict[str, None] = {}
    for word in ranked:
        word = unicodedata.normalize("NFC", word)
        if keep_common(word):
            kept.setdefault(word, None)
            if len(kept) == n:
                return list(kept)
    raise VocabularyError(
        f"wordfreq {wordfreq_version()} yielded only {len(kept)} English words passing the filter "
        f"in its top {_SCAN_DEPTH}; expected {n}. Use a wordfreq 3.x release.")
