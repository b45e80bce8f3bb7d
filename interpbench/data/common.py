"""What every file-based source shares: safe paths, image decoding, subsets, identity.

A file-based source is a list of items (an image location plus optional captions and
class label). `IndexedSource` turns such a list into an ImageSource. When the data set
holds more items than `--n-images`, a seeded random subset (kept in file order) is used,
so a folder sorted by class still gives a sample of every class; the subset and its seed
are part of the identity, and so part of every cache key and results file.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from interpbench.errors import CorruptFileError, EmptyDatasetError, MissingFileError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".ppm", ".gif", ".tif", ".tiff")


@dataclass
class Item:
    """One image: `where` locates it (a path, or whatever the source's reader needs)."""

    where: object
    captions: list[str] | None = None
    label: int | None = None


def resolve_inside(base: Path, rel: str, where: str) -> Path:
    """`rel` relative to folder `base`; it may not leave `base` unless it is absolute.

    Why: a table downloaded from elsewhere must not make us read arbitrary files through
    `../../` paths; an absolute path is an explicit choice of the table's author.
    """
    p = Path(rel)
    if p.is_absolute():
        return p
    base = base.resolve()
    full = (base / p).resolve()
    if not full.is_relative_to(base):
        raise CorruptFileError(where, f"image path {rel!r} leaves the folder {base}",
                               "use a path inside that folder, or an absolute path")
    return full


def open_image(data: bytes | Path, where: str) -> Image.Image:
    """Decode an image (file path or bytes) to RGB; a clear error names the file or sample."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            return im.convert("RGB")
    except FileNotFoundError as exc:
        raise MissingFileError(where, "an image file", "check the path in the data set, or re-create it") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CorruptFileError(where, f"not a readable image ({exc})", "re-create or remove this image (or "
                               "pass --skip-unreadable to evaluate without the unreadable images)") from exc


def choose_subset(n_total: int, n_images: int, seed: int, what: str) -> np.ndarray:
    """Indices of the items to use: all of them, or a seeded random subset in file order."""
    if n_total == 0:
        raise EmptyDatasetError(f"{what}: no images found; expected at least one. Check the path and the format "
                                "(see docs/data.md).")
    if n_images < 1:
        raise EmptyDatasetError(f"--n-images must be positive, got {n_images}")
    if n_images >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n_images, replace=False))


def digest(obj) -> str:
    """Short stable hash of a JSON-able object (file lists, table contents)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def clean_captions(values, where: str) -> list[str] | None:
    """Non-empty caption strings, or None when the item has none."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise CorruptFileError(where, f"captions must be a string or a list of strings, got {values!r}",
                               "fix this entry")
    out = [v.strip() for v in values if v and v.strip()]
    return out or None


class IndexedSource:
    """An ImageSource over a list of Items; subclasses supply `_read(item) -> PIL image`."""

    classes: list[str] | None = None
    templates: list[str] | None = None  # zero-shot prompt templates with {c}

    def __init__(self, name: str, items: list[Item], identity: dict, n_images: int, seed: int):
        keep = choose_subset(len(items), n_images, seed, name)
        self.items = [items[int(i)] for i in keep]
        self.name = name
        self.identity = {**identity, "n_total": len(items), "n_images": len(self.items), "seed": seed}
        self._check_pairing()

    def _check_pairing(self) -> None:
        # Multimodality pairs row b's image with its caption: all items need one, or none.
        have = [it.captions is not None for it in self.items]
        if any(have) and not all(have):
            bad = have.index(False)
            raise CorruptFileError(str(self.items[bad].where), "this item has no caption but others do",
                                   "give every image a caption, or none")

    def drop_unreadable(self) -> list[str]:
        """Decode every chosen image once and drop those that fail (missing, truncated, not an
        image); returns their names. The subset is not refilled, and what was skipped enters
        the identity, so caches and results never mix runs with different skips."""
        keep, skipped = [], []
        for item in self.items:
            try:
                self._read(item)
            except (CorruptFileError, MissingFileError):
                skipped.append(str(item.where))
            else:
                keep.append(item)
        if not keep:
            raise EmptyDatasetError(f"{self.name}: none of the {len(self.items)} chosen images is readable; "
                                    f"the first is {skipped[0]}. Check the files and their format.")
        if skipped:
            self.items = keep
            self.identity = {**self.identity, "n_images": len(keep), "skipped_unreadable": digest(skipped)}
        return skipped

    def __len__(self) -> int:
        return len(self.items)

    def image(self, i: int) -> Image.Image:
        return self._read(self.items[i])

    def _read(self, item: Item) -> Image.Image:
        return open_image(Path(item.where), str(item.where))

    def captions(self, i: int) -> list[str] | None:
        return self.items[i].captions

    def concepts(self, i: int):
        return None

    @property
    def concept_names(self):
        return None

    def label(self, i: int) -> int | None:
        return self.items[i].label
