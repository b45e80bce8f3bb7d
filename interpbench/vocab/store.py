"""Vocabulary files: where they live, how they are read, the `Vocabulary` object.

File format (shipped and user files alike): UTF-8 text, one word or phrase per line.
Reading rules: each line goes through `clean_entry` (NFC, whitespace tidied); blank lines
are skipped; a repeated entry keeps its first position and later copies are dropped and
counted (`Vocabulary.n_duplicates`). Case and spelling are otherwise kept, so a user's
words reach the text tower as written. There is no comment syntax: '#' is a character.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from interpbench.errors import CorruptFileError, VocabularyError
from interpbench.vocab.normalise import clean_entry

VOCAB_DIR_ENV = "INTERPBENCH_VOCAB_DIR"
# Always shipped: its presence tells our vocab/ folder from any other folder of that name.
_MARKER = "shapes.txt"


def words_sha256(words: Sequence[str]) -> str:
    """Hash of the entries as the canonical file bytes (LF after every entry)."""
    return hashlib.sha256(render_words(words)).hexdigest()


def render_words(words: Sequence[str]) -> bytes:
    return "".join(f"{w}\n" for w in words).encode("utf-8")


@dataclass(frozen=True)
class Vocabulary:
    name: str
    words: tuple[str, ...]
    path: Path | None = None
    n_duplicates: int = 0  # repeated lines dropped while reading
    provenance: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __getitem__(self, i: int) -> str:
        return self.words[i]

    @property
    def sha256(self) -> str:
        """Content hash: part of every encode-cache key."""
        return words_sha256(self.words)

    def index(self, word: str) -> int:
        return self.words.index(word)


def _checkout_vocab_dir() -> Path | None:
    """The repository's vocab/ folder when running from a source checkout (or editable install)."""
    root = Path(__file__).resolve().parents[2]  # interpbench/vocab/store.py -> repository root
    if (root / "pyproject.toml").is_file() and (root / "vocab").is_dir():
        return root / "vocab"
    return None


def package_vocab_dirs() -> list[Path]:
    """Where shipped vocabularies are looked for, in order.

    1. $INTERPBENCH_VOCAB_DIR; 2. interpbench/vocab/data/, which in a checkout is a symlink
    to the repository's vocab/ and in a built wheel holds copies of its files (pyproject's
    package-data); 3. the repository's vocab/ itself, for checkouts where the symlink was
    not created (git on Windows without symlink support writes a small text file instead).
    Package data comes before the repository guess so an installed copy never picks up an
    unrelated `vocab/` folder that happens to sit next to site-packages.
    """
    dirs = [Path(__file__).resolve().parent / "data"]
    checkout = _checkout_vocab_dir()
    if checkout is not None:
        dirs.append(checkout)
    if os.environ.get(VOCAB_DIR_ENV):
        dirs.insert(0, Path(os.environ[VOCAB_DIR_ENV]))
    return dirs


def vocab_dir() -> Path:
    """The first folder of `package_vocab_dirs` that holds the shipped vocabularies."""
    dirs = package_vocab_dirs()
    for d in dirs:
        if (d / _MARKER).is_file():
            return d
    raise VocabularyError(
        f"no vocabulary folder found (looked for {_MARKER} in {', '.join(map(str, dirs))}). "
        f"Reinstall interpbench, run from a checkout, set {VOCAB_DIR_ENV} to a folder of vocabularies, "
        "or rebuild them with `interpbench vocab build --out DIR`.")


def default_build_dir() -> Path:
    """Where `interpbench vocab build` writes without --out: the checkout's vocab/ only.

    An installed package is never rewritten in place; there the user names a folder.
    """
    checkout = _checkout_vocab_dir()
    if checkout is None:
        raise VocabularyError(
            "not running from a source checkout, so there is no vocab/ folder to rebuild; "
            "pass --out DIR to write the vocabularies elsewhere (then set "
            f"{VOCAB_DIR_ENV}=DIR to use them)")
    return checkout


def read_words(path: Path) -> tuple[list[str], int]:
    """Entries of a vocabulary file under the reading rules above, and the duplicates dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not UTF-8 text (byte {exc.start})",
                               "save the vocabulary as UTF-8, one word or phrase per line") from exc
    seen: dict[str, None] = {}
    n_lines = 0
    for line in text.splitlines():
        entry = clean_entry(line)
        if entry:
            n_lines += 1
            seen.setdefault(entry, None)
    return list(seen), n_lines - len(seen)


def read_provenance(txt_path: Path) -> dict:
    meta = txt_path.with_suffix(".json")
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(meta, f"not valid JSON ({exc})", "rebuild with `interpbench vocab build`") from exc


def load_vocab(name_or_path: str | Path) -> Vocabulary:
    """A shipped vocabulary by name ("default", "wordnet", "common-20k", "shapes") or any file.

    A value that names an existing file, or contains a path separator, or ends in .txt is a
    path; anything else is a name looked up in `vocab_dir()`.
    """
    path = _resolve(name_or_path)
    words, n_dup = read_words(path)
    if not words:
        raise VocabularyError(f"{path}: the vocabulary has no entries; expected one word or phrase per line")
    return Vocabulary(name=path.stem, words=tuple(words), path=path, n_duplicates=n_dup,
                      provenance=read_provenance(path))


def _safe_vocab_dir() -> Path | None:
    try:
        return vocab_dir()
    except VocabularyError:
        return None


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(".txt") or Path(value).is_file()


def _resolve(name_or_path: str | Path) -> Path:
    value = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise VocabularyError(
                f"{path}: vocabulary file not found; expected a UTF-8 text file with one word or "
                f"phrase per line, or one of the names {_names_hint()}")
        return path
    folder = _safe_vocab_dir()
    if folder is not None and (folder / f"{value}.txt").is_file():
        return folder / f"{value}.txt"
    raise VocabularyError(
        f"unknown vocabulary {value!r}; available: {_names_hint()}. "
        "Or pass the path of a text file with one word or phrase per line.")


def _names_hint() -> str:
    entries = list_vocabs() if _safe_vocab_dir() else []
    if not entries:
        return "none found (see `interpbench vocab build`)"
    return ", ".join(f"{name} ({count} words)" for name, count, _ in entries)


def list_vocabs(folder: Path | str | None = None) -> list[tuple[str, int, Path]]:
    """(name, number of entries, path) of every vocabulary in `folder` (default `vocab_dir()`), by name."""
    folder = vocab_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        raise VocabularyError(f"{folder}: vocabulary folder not found; expected a folder of NAME.txt files")
    out = []
    for txt in sorted(folder.glob("*.txt")):
        out.append((txt.stem, len(read_words(txt)[0]), txt))
    return out
