"""Normalisation rules of the vocabularies (docs/vocab.md), as known answers."""

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpbench.vocab.common import keep_common
from interpbench.vocab.normalise import clean_entry, is_word, normalise_all, normalise_word
from interpbench.vocab.stopwords import STOP_WORDS

# A stand-in for WordNet's morphy with known answers, so these rules are tested without
# the (slow to open) WordNet files; test_vocab_build.py checks the real lemmatiser.
_LEMMAS = {"dogs": "dog", "went": "go", "geese": "goose", "ones": "one", "cats": "cat", "an": "an"}


def lemmatise(entry: str) -> str:
    return _LEMMAS.get(entry, entry)


@pytest.mark.parametrize("raw, expected", [
    ("  Hot  Dog ", "Hot Dog"),           # whitespace tidied, case kept
    ("rock\tand\nroll", "rock and roll"),
    ("cafe\u0301", "caf\u00e9"),           # NFC: e + combining acute -> one code point
    ("rock \u2019n\u2019 roll", "rock 'n' roll"),  # typographic apostrophe -> '
    ("", ""),
])
def test_clean_entry(raw, expected):
    assert clean_entry(raw) == expected


@pytest.mark.parametrize("entry, ok", [
    ("dog", True), ("hot dog", True), ("jack-o'-lantern", True), ("st. john's wort", True),
    ("a.m.", True), ("ox", True),
    ("a", False), ("x", False),              # fewer than two letters
    (".22 caliber", False), ("1530s", False), ("b12", False),  # digits
    ("'hood", False), ("-ism", False),       # starts with punctuation
    ("rock-", False), ("c++", False), ("at&t", False), ("", False),
])
def test_is_word(entry, ok):
    assert is_word(entry) is ok


@pytest.mark.parametrize("raw, expected", [
    ("Hot_Dog", "hot dog"),          # underscores to spaces, lower case
    ("  DOGS ", "dog"),              # lemma form
    ("Went", "go"),
    ("geese", "goose"),
    ("the", None), ("Between", None),  # stop words
    ("1530s", None), ("x", None),      # non-words
    ("ones", "one"),                   # "one" is deliberately not a stop word (a count concept)
    ("Jack-o'-lantern", "jack-o'-lantern"),
])
def test_normalise_word(raw, expected):
    assert normalise_word(raw, lemmatise) == expected


def test_a_lemma_that_is_a_stop_word_is_dropped():
    assert normalise_word("thems", lambda e: "them") is None


def test_without_a_lemmatiser_only_the_text_rules_apply():
    assert normalise_word("Dogs") == "dogs"


def test_normalise_all_deduplicates_after_normalising_and_sorts_by_code_point():
    words = ["Dogs", "dog", " DOG ", "hot_dog", "Hot Dog", "the", "Zebra", "apple", "\u00e9clair", "eclair"]
    # code point order: ASCII letters before 'é' (U+00E9), independent of the locale
    assert normalise_all(words, lemmatise) == ["apple", "dog", "eclair", "hot dog", "zebra", "\u00e9clair"]


def test_stop_words_are_lower_case_single_words_and_keep_visual_words():
    assert all(w == w.lower() and " " not in w for w in STOP_WORDS)
    for visual in ("one", "two", "top", "down", "can", "red", "half", "inside"):
        assert visual not in STOP_WORDS
    for function in ("the", "of", "and", "she", "would", "very"):
        assert function in STOP_WORDS


@pytest.mark.parametrize("word, kept", [
    ("house", True), ("the", False), ("don't", False), ("u.s", False), ("2020", False), ("x", False),
    ("ok", True), ("café", True),
])
def test_common_words_filter(word, kept):
    assert keep_common(word) is kept


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcDEF _-'.\u00e9\u0301 1\t")), max_size=20))
def test_normalise_is_idempotent_and_its_output_obeys_the_rules(text):
    out = normalise_word(text, lemmatise)
    if out is None:
        return
    assert normalise_word(out, lemmatise) == out
    assert out == out.lower() and is_word(out) and out not in STOP_WORDS
    assert out == unicodedata.normalize("NFC", out) and out == clean_entry(out)
