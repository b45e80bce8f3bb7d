"""Build the shipped vocabularies into a folder, byte for byte reproducibly.

Each vocabulary NAME becomes NAME.txt (one entry per line, UTF-8, LF, sorted by Unicode
code point) and NAME.json (provenance: source, version, licence, rules, counts, input
checksums). Nothing depends on the clock, the locale, hash seeds or the machine, so the
same inputs give the same bytes; tests/test_vocab_build.py checks the committed vocab/.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from interpbench.errors import BadSpecError, VocabularyError
from interpbench.ioutils import atomic_write_bytes, atomic_write_text
from interpbench.vocab import common, wordnet
from interpbench.vocab.normalise import clean_entry, is_stop_word, is_word, normalise_word
from interpbench.vocab.store import render_words, words_sha256

ALL_NAMES = ("shapes", "wordnet", "common-20k", "default")
BUILD_COMMAND = "interpbench vocab build"
PAPER_SIZE = 98_619  # Sparse CLIP's WordNet + 20k common words vocabulary (metrics.md 4.1)
FORMAT = "UTF-8 text, one entry per line, LF line ends, sorted by Unicode code point, no duplicates"

WORDNET_POS = ("n", "v", "a", "r")  # every synset, as in the paper (docs/vocab.md argues it)
WORDNET_NOTICE = "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved."
WORDNET_LICENCE = ("WordNet 3.0 licence (Princeton University): use, copy, modify and distribute for any "
                   "purpose without fee, provided the copyright notice and the licence appear on all copies. "
                   "https://wordnet.princeton.edu/license-and-commercial-use")
WORDFREQ_LICENCE = ("wordfreq code: Apache-2.0; wordfreq data (which this list is): CC BY-SA 4.0 "
                    "https://creativecommons.org/licenses/by-sa/4.0/ ; see the wordfreq README for sources")


def _nltk_version() -> str:
    return importlib.metadata.version("nltk")


def _shapes() -> tuple[list[str], dict]:
    from interpbench.data.shapes import concept_words

    words = sorted({clean_entry(w) for w in concept_words()})
    return words, {
        "description": "Concept words and synonyms of the Shapes synthetic world",
        "source": "interpbench.data.shapes.concept_words() (ATTRIBUTES x SYNONYMS)",
        "licence": "MIT (part of interpbench)",
        "rules": ["every synonym of every concept value", "whitespace tidied, deduplicated, sorted"],
    }


def _wordnet(lemmas: dict[str, set[str]], counts: dict[str, int], version: str, inputs: dict) -> tuple[list[str], dict]:
    raw = set().union(*(lemmas[p] for p in WORDNET_POS))
    words = sorted({clean_entry(w) for w in raw})
    return words, {
        "description": "First lemma of every WordNet 3.0 synset",
        "source": "Princeton WordNet database files (Debian packages wordnet-base, wordnet-sense-index) "
                  "read with nltk.corpus.reader.wordnet.WordNetCorpusReader",
        "source_version": version,
        "licence": WORDNET_LICENCE,
        "copyright_notice": WORDNET_NOTICE,
        "parts_of_speech_kept": {"n": "noun", "v": "verb", "a": "adjective (incl. satellites)", "r": "adverb"},
        "synsets_per_pos": counts,
        "distinct_first_lemmas_per_pos": {p: len(lemmas[p]) for p in WORDNET_POS},
        "input_sha256": inputs,
        "built_with": {"nltk": _nltk_version()},
        "rules": ["first lemma (synset.lemmas()[0]) of every synset of the kept parts of speech",
                  "underscores to spaces; case kept as in WordNet",
                  "whitespace tidied, exact duplicates removed, sorted"],
    }


def _common(words_ranked: list[str]) -> tuple[list[str], dict]:
    return sorted(words_ranked), {
        "description": f"The {common.COMMON_SIZE:,} most frequent English words (wordfreq) passing the filter",
        "source": "wordfreq.top_n_list('en', N), read in frequency order until the count is reached",
        "source_version": common.wordfreq_version(),
        "licence": WORDFREQ_LICENCE,
        "built_with": {"wordfreq": common.wordfreq_version()},
        "rules": ["alphabetic only (no digits, apostrophes, periods), at least 2 letters",
                  "stop words removed (interpbench.vocab.stopwords)",
                  "first the filter, then the top N, so the list has exactly N words",
                  "not lemmatised (the `default` vocabulary is); sorted alphabetically, not by rank"],
    }


def _default(wn_words: list[str], common_words: list[str], lemmatise) -> tuple[list[str], dict]:
    words, report = normalise_all_with_report(wn_words + common_words, lemmatise)
    return words, {
        "description": "WordNet first lemmas + common English words, normalised: the default naming vocabulary",
        "source": "union of the `wordnet` and `common-20k` vocabularies of this folder",
        "input_sha256": {"wordnet": words_sha256(wn_words), "common-20k": words_sha256(common_words)},
        "licence": f"{WORDNET_LICENCE} AND {WORDFREQ_LICENCE} (share-alike: the merged list is CC BY-SA 4.0)",
        "copyright_notice": WORDNET_NOTICE,
        "paper_reference_size": PAPER_SIZE,
        "size_vs_paper": f"{len(words)} vs {PAPER_SIZE} ({len(words) - PAPER_SIZE:+d})",
        "normalisation_report": report,
        "built_with": {"nltk": _nltk_version(), "wordfreq": common.wordfreq_version()},
        "rules": ["underscores to spaces, NFC, whitespace tidied, lower case",
                  "non-words dropped: only letters joined by single spaces, hyphens, apostrophes or periods; "
                  "must start with a letter; at least 2 letters; no digits or symbols",
                  "stop words dropped (interpbench.vocab.stopwords, before and after lemmatising)",
                  "lemma form: entries that are WordNet lemmas in any part of speech are kept; others are "
                  "mapped by WordNet morphy (nouns, then verbs, adjectives, adverbs), else kept",
                  "deduplicated after all of the above; sorted by Unicode code point"],
    }


def normalise_all_with_report(entries: list[str], lemmatise) -> tuple[list[str], dict]:
    """`normalise_all`, also counting why entries were dropped or changed."""
    report = dict.fromkeys(("dropped_non_word", "dropped_stop_word", "dropped_after_lemmatising",
                            "changed_by_lemmatiser"), 0)
    kept: set[str] = set()
    for raw in entries:
        basic = clean_entry(raw.replace("_", " ")).lower()
        result = normalise_word(raw, lemmatise)
        if result is None:
            reason = ("dropped_non_word" if not is_word(basic) else
                      "dropped_stop_word" if is_stop_word(basic) else "dropped_after_lemmatising")
            report[reason] += 1
            continue
        report["changed_by_lemmatiser"] += result != basic
        kept.add(result)
    return sorted(kept), {"entries_in": len(entries), **report, "distinct_out": len(kept)}


def _write(out_dir: Path, name: str, words: list[str], meta: dict) -> dict:
    if not words:
        raise VocabularyError(f"vocabulary {name!r} came out empty; check the inputs of the build")
    meta = {"name": name, "count": len(words), "sha256": words_sha256(words), "format": FORMAT,
            "build_command": BUILD_COMMAND, **meta}
    txt, meta_path = out_dir / f"{name}.txt", out_dir / f"{name}.json"
    atomic_write_bytes(txt, render_words(words))
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return {"path": txt, "count": len(words), "sha256": meta["sha256"]}


def check_requirements(names: tuple[str, ...], wordnet_dir: Path | str | None) -> None:
    """Fail before writing anything, naming every missing input and how to install it."""
    problems = []
    if {"wordnet", "default"} & set(names):
        try:
            wordnet.locate_wordnet_dir(wordnet_dir)
        except VocabularyError as exc:
            problems.append(str(exc))
    if {"common-20k", "default"} & set(names):
        try:
            common.wordfreq_version()
        except VocabularyError as exc:
            problems.append(str(exc))
    if problems:
        raise VocabularyError("cannot build the vocabularies:\n  - " + "\n  - ".join(problems))


def build_all(out_dir: Path | str, wordnet_dir: Path | str | None = None,
              names: tuple[str, ...] | list[str] | None = None) -> dict[str, dict]:
    """Write the named vocabularies (default: all) into `out_dir`; name -> {path, count, sha256}."""
    names = tuple(ALL_NAMES if names is None else names)
    unknown = sorted(set(names) - set(ALL_NAMES))
    if unknown:
        raise BadSpecError(f"unknown vocabulary name(s) {unknown}; buildable: {list(ALL_NAMES)}")
    check_requirements(names, wordnet_dir)
    out_dir = Path(out_dir)
    out: dict[str, dict] = {}
    if "shapes" in names:
        out["shapes"] = _write(out_dir, "shapes", *_shapes())
    ranked = common.common_words() if {"common-20k", "default"} & set(names) else []
    if "common-20k" in names:
        out["common-20k"] = _write(out_dir, "common-20k", *_common(ranked))
    if {"wordnet", "default"} & set(names):
        out.update(_build_wordnet_based(out_dir, names, wordnet_dir, sorted(ranked)))
    return {n: out[n] for n in ALL_NAMES if n in out}


def _build_wordnet_based(out_dir: Path, names: tuple[str, ...], wordnet_dir, common_sorted: list[str]) -> dict:
    out = {}
    source = wordnet.locate_wordnet_dir(wordnet_dir)
    inputs = wordnet.input_checksums(source)
    with wordnet.open_wordnet(source) as reader:
        lemmas, counts = wordnet.first_lemmas(reader)
        wn_words, wn_meta = _wordnet(lemmas, counts, reader.get_version(), inputs)
        if "wordnet" in names:
            out["wordnet"] = _write(out_dir, "wordnet", wn_words, wn_meta)
        if "default" in names:
            out["default"] = _write(out_dir, "default", *_default(wn_words, common_sorted, wordnet.make_lemmatiser(reader)))
    return out
