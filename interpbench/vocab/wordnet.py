"""Open Princeton WordNet 3.0 dictionary files with nltk's own WordNet reader, offline.

Debian's `wordnet-base` and `wordnet-sense-index` packages put the database files in
/usr/share/wordnet but ship no `lexnames` file, which nltk's reader needs to name each
synset's lexicographer file. nltk (3.9+) also only opens corpora below a folder on
`nltk.data.path`, refuses symlinks that leave the corpus folder, and looks the corpus up
under the name "wordnet" while building its sense-key map. So we copy the files into a
private temporary `corpora/wordnet/` folder, write `lexnames` there, put the folder's
parent on `nltk.data.path` while the reader is in use, and remove both afterwards.
Nothing is written to system folders and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from interpbench.errors import VocabularyError
from interpbench.ioutils import sha256_file

APT_HINT = (
    "sudo apt-get update && sudo apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index")

# Files the reader opens: the four index/data pairs and exception lists at start-up and
# for synset lookups, index.sense while it builds its sense-key map.
POS_FILES = ("adj", "adv", "noun", "verb")
REQUIRED_FILES = tuple(
    [f"index.{p}" for p in POS_FILES] + [f"data.{p}" for p in POS_FILES]
    + [f"{p}.exc" for p in POS_FILES] + ["index.sense"]
)

# The 45 lexicographer files of WordNet 3.0, in file-number order (lexnames(5WN)).
# The number of each is the lex_filenum field of every synset line in data.*.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
    "noun.artifact", "noun.attribute", "noun.body", "noun.cognition",
    "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon",
    "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change",
    "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception",
    "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

# Folders where the WordNet 3.0 database is commonly installed, checked in order.
CANDIDATE_DIRS = ("/usr/share/wordnet", "/usr/local/WordNet-3.0/dict", "/usr/local/share/wordnet",
                  "/usr/share/wordnet/dict")


def lexnames_text() -> str:
    """The `lexnames` file: number, name, syntactic category, tab separated."""
    lines = (f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
    return "".join(lines)


def _missing(folder: Path) -> list[str]:
    return [f for f in REQUIRED_FILES if not (folder / f).is_file()]


def locate_wordnet_dir(wordnet_dir: Path | str | None = None) -> Path:
    """The folder holding the WordNet database files, or VocabularyError saying how to get it."""
    if wordnet_dir is not None:
        candidates = [Path(wordnet_dir)]
    else:
        env = [os.environ.get("WNSEARCHDIR")]
        if os.environ.get("WNHOME"):
            env.append(str(Path(os.environ["WNHOME"]) / "dict"))
        candidates = [Path(p) for p in [*env, *CANDIDATE_DIRS] if p]
    for folder in candidates:
        if folder.is_dir() and not _missing(folder):
            return folder
    if wordnet_dir is not None:
        folder = Path(wordnet_dir)
        what = f"is missing {', '.join(_missing(folder))}" if folder.is_dir() else "does not exist"
        raise VocabularyError(
            f"--wordnet-dir {folder} {what}; expected the WordNet 3.0 database files "
            f"({', '.join(REQUIRED_FILES)}). On Debian/Ubuntu install them with: {APT_HINT}")
    raise VocabularyError(
        "WordNet 3.0 database files not found (looked in "
        f"{', '.join(str(c) for c in candidates)}). They are needed only to rebuild the "
        f"vocabularies. On Debian/Ubuntu install them with: {APT_HINT} ; "
        "or pass --wordnet-dir to a folder holding index.noun, data.noun, ... and index.sense.")


def input_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every database file the build reads, for the provenance record."""
    return {name: sha256_file(folder / name) for name in REQUIRED_FILES}


@contextlib.contextmanager
def open_wordnet(wordnet_dir: Path | str | None = None) -> Iterator:
    """Yield nltk's `WordNetCorpusReader` over the installed WordNet files (see module doc)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    source = locate_wordnet_dir(wordnet_dir)
    with tempfile.TemporaryDirectory(prefix="interpbench-wordnet-") as tmp:
        corpus = Path(tmp) / "corpora" / "wordnet"
        corpus.mkdir(parents=True)
        for name in REQUIRED_FILES:
            shutil.copyfile(source / name, corpus / name)
        (corpus / "lexnames").write_text(lexnames_text(), encoding="utf-8")
        nltk.data.path.insert(0, tmp)
        try:
            with warnings.catch_warnings():
                # No Open Multilingual WordNet is wanted here; nltk warns that it is absent.
                warnings.filterwarnings("ignore", message=".*multilingual functions are not available.*")
                yield WordNetCorpusReader(str(corpus), None)
        finally:
            nltk.data.path.remove(tmp)


def first_lemmas(reader) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Part of speech ('n', 'v', 'a', 'r') -> first lemmas of its synsets ('_' -> ' '), and
    the number of synsets per part of speech.

    Adjective satellites ('s') count as adjectives, as in the data.adj file they come from.
    """
    lemmas: dict[str, set[str]] = {"n": set(), "v": set(), "a": set(), "r": set()}
    counts = dict.fromkeys(lemmas, 0)
    for synset in reader.all_synsets():
        pos = "a" if synset.pos() == "s" else synset.pos()
        lemmas[pos].add(synset.lemmas()[0].name().replace("_", " "))
        counts[pos] += 1
    return lemmas, counts


def make_lemmatiser(reader) -> Callable[[str], str]:
    """A lower-case entry -> its WordNet lemma ("dogs" -> "dog", "went" -> "go").

    An entry that is already a WordNet lemma in any part of speech is kept as it is:
    morphy tries nouns first, so without this guard a verb or adjective lemma could be
    turned into an unrelated noun. Entries WordNet does not know stay unchanged.
    """
    known = set(reader.all_lemma_names())

    def lemmatise(entry: str) -> str:
        key = entry.replace(" ", "_")
        if key in known:
            return entry
        lemma = reader.morphy(key)
        return lemma.replace("_", " ") if lemma else entry

    return lemmatise
