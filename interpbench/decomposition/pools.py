"""Text pools for TextSpan: Shapes descriptions, a general description list, or a user file.

A pool spec is "shapes", "general", several joined with "+" ("shapes+general"), or a path to a
UTF-8 text file with one description per line (blank lines and lines starting with "#" are
skipped). Pools are deduplicated (first occurrence kept), because TextSpan would otherwise
waste picks on identical embeddings.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.data.shapes import ATTRIBUTES, COUNTS, SYNONYMS
from interpbench.errors import CorruptFileError, EmptyDatasetError, MissingFileError

POOL_DIR = Path(__file__).parent / "pools"
BUILTIN_POOLS = ("shapes", "general")

# Phrasings per attribute; the Shapes captions use the same patterns.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "shape": ("{a} {w}", "an image of {a} {w}", "a picture of {a} {w}"),
    "color": ("{a} {w} object", "{a} {w} shape", "something {w}"),
    "size": ("{a} {w} object", "{a} {w} shape"),
    "position": ("an object at the {w}", "a shape in the {w}"),
    "background": ("{a} {w} background", "an object on {a} {w} background"),
}
_COUNT_PHRASES = ("{w} objects", "{w} shapes", "an image of {w} objects")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fill(template: str, word: str) -> str:
    return template.format(a=_article(word), w=word)


def shapes_pool() -> list[str]:
    """Descriptions built from every Shapes attribute word and synonym, plus attribute pairs."""
    texts: list[str] = []
    for attribute, templates in _TEMPLATES.items():
        for value in ATTRIBUTES[attribute]:
            for word in SYNONYMS[value]:
                texts += [_fill(t, word) for t in templates]
    for value in COUNTS:
        for word in SYNONYMS[value]:
            if value == "one":
                texts += [f"{word} object", f"{word} shape", f"an image of {word} object"]
            else:
                texts += [_fill(t, word) for t in _COUNT_PHRASES]
    for shape in ATTRIBUTES["shape"]:
        texts += [_fill("{a} {w}", f"{color} {shape}") for color in ATTRIBUTES["color"]]
        texts += [_fill("{a} {w}", f"{size} {shape}") for size in ATTRIBUTES["size"]]
        texts += [f"{_article(shape)} {shape} on {_article(bg)} {bg} background" for bg in ATTRIBUTES["background"]]
        texts += [f"{_article(shape)} {shape} at the {pos}" for pos in ATTRIBUTES["position"]]
    return dedupe(texts)


def general_pool() -> list[str]:
    """A few hundred general image descriptions written for this project (pools/general.txt)."""
    return read_pool(POOL_DIR / "general.txt")


def read_pool(path: Path | str) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "a text pool (one description per line, UTF-8)",
                               f"pass a built-in pool name {BUILTIN_POOLS} or an existing file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorruptFileError(path, f"not UTF-8 text ({exc})", "save the pool as UTF-8, one text per line") from exc
    texts = dedupe(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not texts:
        raise EmptyDatasetError(f"{path}: the text pool has no descriptions; write one description per line")
    return texts


def dedupe(texts) -> list[str]:
    return list(dict.fromkeys(texts))


def resolve_pool(spec: str) -> list[str]:
    """Texts for a pool spec ("shapes", "general", "shapes+general", or a file path)."""
    if Path(spec).is_file():
        return read_pool(spec)
    texts: list[str] = []
    for part in spec.split("+"):
        if part == "shapes":
            texts += shapes_pool()
        elif part == "general":
            texts += general_pool()
        else:
            texts += read_pool(part)  # raises MissingFileError naming the part
    return dedupe(texts)
