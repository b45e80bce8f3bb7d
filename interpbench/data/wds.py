"""`wds:SHARDS`: webdataset tar shards of (image, caption) samples.

SHARDS is one .tar file, a folder (all its *.tar files), a glob (`data/*.tar`) or
webdataset's brace range (`data/shard-{000000..000009}.tar`). Within a shard, files that
share a key (the path up to the first dot of the file name, webdataset's convention) form
one sample: an image (jpg, png, webp, ...) and optionally a caption (`txt`).

Why tarfile and not the `webdataset` package: the benchmark needs random access by index
(chunked, resumable caching; sharding across ranks), while webdataset reads shards as a
stream. An uncompressed tar can be indexed once (each member's byte offset) and then read
at any position, with the standard library alone; so `interpbench[wds]` is optional.
"""

from __future__ import annotations

import glob
import re
import tarfile
from pathlib import Path

from PIL import Image

from interpbench.data.common import IMAGE_EXTENSIONS, IndexedSource, Item, digest, open_image
from interpbench.errors import CorruptFileError, EmptyDatasetError, MissingFileError

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def expand_shards(pattern: str) -> list[Path]:
    """Shard paths for a file, folder, glob or {a..b} numeric range (zero padding kept)."""
    m = _RANGE.search(pattern)
    if m:
        lo, hi = m.group(1), m.group(2)
        width = len(lo) if lo.startswith("0") else 0
        out = []
        for n in range(int(lo), int(hi) + 1):
            out += expand_shards(pattern[:m.start()] + str(n).zfill(width) + pattern[m.end():])
        return out
    p = Path(pattern).expanduser()
    if p.is_dir():
        return sorted(p.glob("*.tar"))
    if any(ch in pattern for ch in "*?["):
        return [Path(s) for s in sorted(glob.glob(str(p)))]
    if not p.is_file():
        raise MissingFileError(p, "a webdataset .tar shard", "check the path or pattern after `wds:`")
    return [p]


def _split_key(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def index_shard(path: Path) -> list[tuple[str, dict[str, tuple[int, int]], str | None]]:
    """[(key, {ext: (offset, size)}, caption)] in tar order; reading an image is then one seek."""
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    texts: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:  # "r:" refuses compressed tars (not seekable)
            for m in tar:
                if m.isfile():
                    key, ext = _split_key(m.name)
                    samples.setdefault(key, {})[ext] = (m.offset_data, m.size)
                    if ext == "txt":  # captions are small: read them while indexing
                        texts[key] = tar.extractfile(m).read().decode("utf-8", errors="replace").strip()
    except tarfile.ReadError as exc:
        raise CorruptFileError(path, f"not an uncompressed tar archive ({exc})",
                               "write shards as plain .tar (webdataset's default), not .tar.gz") from exc
    return [(k, v, texts.get(k)) for k, v in samples.items()]


def _image_ext(members: dict) -> str | None:
    return next((e for e in members if f".{e}" in IMAGE_EXTENSIONS), None)


class WebDatasetSource(IndexedSource):
    def __init__(self, pattern: str, n_images: int = 2000, seed: int = 0):
        shards = expand_shards(pattern)
        if not shards:
            raise EmptyDatasetError(f"wds:{pattern}: no .tar shards match; expected e.g. "
                                    "wds:data/shard-{000000..000009}.tar or a folder of .tar files")
        items, files = [], []
        for shard in shards:
            shard = shard.resolve()
            files.append((str(shard), shard.stat().st_size))
            for key, members, caption in index_shard(shard):
                ext = _image_ext(members)
                if ext is None:
                    raise CorruptFileError(shard, f"sample {key!r} has no image (members: {sorted(members)})",
                                           f"add one of {', '.join(IMAGE_EXTENSIONS)} per sample")
                items.append(Item((shard, key, members[ext]), [caption] if caption else None))
        identity = {"source": "wds", "shards": digest(files), "n_shards": len(shards)}
        super().__init__(f"wds-{shards[0].stem}", items, identity, n_images, seed)

    def _read(self, item: Item) -> Image.Image:
        shard, key, span = item.where
        return open_image(_read(shard, span), f"{shard} (sample {key})")


def _read(shard: Path, span: tuple[int, int]) -> bytes:
    offset, size = span
    with open(shard, "rb") as fh:
        fh.seek(offset)
        return fh.read(size)
