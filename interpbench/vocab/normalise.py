"""Normalisation rules shared by every built vocabulary (docs/vocab.md lists them).

`clean_entry` only tidies whitespace and Unicode form: it is what user files get, so their
words reach the text tower as written. `normalise_word` is the stricter rule for the
`default` vocabulary: lower case, real words only, no stop words, lemma form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from interpbench.vocab.stopwords import STOP_WORDS

_SPACES = re.compile(r"\s+")
_ALLOWED_PUNCT = frozenset(" -'.")
MIN_LETTERS = 2


def clean_entry(text: str) -> str:
    """NFC form, typographic apostrophe to ', outer whitespace stripped, inner runs -> one space."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'")
    return _SPACES.sub(" ", text).strip()


def is_word(entry: str) -> bool:
    """Letters, optionally joined by single spaces, hyphens, apostrophes or periods.

    Rejects digits and symbols (".22 caliber", "1530s", "u.s"), entries that start with
    punctuation ("'hood"), and anything with fewer than two letters ("a", "x").
    """
    if not entry or not entry[0].isalpha() or not (entry[-1].isalpha() or entry[-1] == "."):
        return False
    if any(not (c.isalpha() or c in _ALLOWED_PUNCT) for c in entry):
        return False
    return sum(c.isalpha() for c in entry) >= MIN_LETTERS


def is_stop_word(entry: str) -> bool:
    return entry in STOP_WORDS


def normalise_word(word: str, lemmatise: Callable[[str], str] | None = None) -> str | None:
    """The `default` vocabulary form of `word`, or None when the word is dropped.

    Steps: underscores to spaces, `clean_entry`, lower case; drop non-words and stop
    words; then, if `lemmatise` is given (the build passes WordNet's morphy, see
    `interpbench.vocab.wordnet.make_lemmatiser`), map to the lemma and check again, since
    a lemma can itself be a stop word.
    """
    entry = clean_entry(word.replace("_", " ")).lower()
    if not is_word(entry) or is_stop_word(entry):
        return None
    if lemmatise is not None:
        entry = lemmatise(entry)
        if not is_word(entry) or is_stop_word(entry):
            return None
    return entry


def normalise_all(words: Iterable[str], lemmatise: Callable[[str], str] | None = None) -> list[str]:
    """Normalised, deduplicated, sorted (Unicode code point order, so locale-independent)."""
    kept = {n for w in words if (n := normalise_word(w, lemmatise)) is not None}
    return sorted(kept)
