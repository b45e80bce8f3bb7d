"""Data sources, chosen by a data spec string (docs/data.md has the full grammar).

    shapes[:SPLIT]            the Shapes world (split eval by default; train, test)
    shapes-spurious[:SPLIT]   the spurious variant (background follows shape in train)
    folder:DIR                image folder, one sub-folder per class (labelled)
    table:FILE                CSV/TSV or JSON-lines table of image paths + captions [+ label]
    coco:FILE[?images=DIR]    COCO captions JSON (paired)
    wds:SHARDS                webdataset tar shards of image + txt (paired)
    clip_benchmark:NAME[?root=DIR&split=SPLIT]   a clip-benchmark data set
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from interpbench.data.base import ImageSource, ShapesSource
from interpbench.data.shapes import ShapesConfig
from interpbench.errors import BadSpecError

DATA_GRAMMAR = """accepted data specs:
  shapes[:eval|train|test]            the Shapes world (default)
  shapes-spurious[:eval|train|test]   Shapes with background correlated with shape in train
  folder:DIR                          image folder, one sub-folder per class (zero-shot)
  table:FILE.csv|.tsv|.jsonl          image paths + captions [+ label] (multimodality)
  coco:ANNOTATIONS.json[?images=DIR]  COCO captions file (multimodality)
  wds:SHARDS                          webdataset .tar shards: file, folder, glob or {000..009} range
  clip_benchmark:NAME[?root=DIR&split=test]   a clip-benchmark data set (cifar10, mscoco_captions, ...)"""

_OPTIONS = {"coco": {"images"}, "clip_benchmark": {"root", "split"}}


def _split_options(spec: str, scheme: str, rest: str) -> tuple[str, dict]:
    """'PATH?k=v&k2=v2' -> (PATH, {k: v}); only schemes with options read a query."""
    if scheme not in _OPTIONS or "?" not in rest:
        return rest, {}
    target, _, query = rest.rpartition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(opts) - _OPTIONS[scheme]
    if unknown:
        raise BadSpecError(f"bad data spec {spec!r}: unknown option(s) {sorted(unknown)}; "
                           f"{scheme} takes {sorted(_OPTIONS[scheme])}\n{DATA_GRAMMAR}")
    return target, opts


def _shapes(spec: str, name: str, split: str, n_images: int, seed: int) -> ImageSource:
    split = split or "eval"
    if split not in ("eval", "train", "test"):
        raise BadSpecError(f"bad data spec {spec!r}: unknown split {split!r}\n{DATA_GRAMMAR}")
    if n_images < 1:
        raise BadSpecError(f"--n-images must be positive, got {n_images}")
    return ShapesSource(split, length=n_images, seed=seed,
                        config=ShapesConfig(spurious=name == "shapes-spurious"))


def load_source(spec: str = "shapes", n_images: int = 2000, seed: int = 0,
                skip_unreadable: bool = False) -> ImageSource:
    """The source for a data spec; file-based sources use a seeded subset of n_images items.
    With skip_unreadable, the images of a file-based source that cannot be decoded are left
    out and listed in `source.skipped` (rendered sources have none)."""
    source = _load_source(spec, n_images, seed)
    source.skipped = source.drop_unreadable() if skip_unreadable and hasattr(source, "drop_unreadable") else []
    return source


def _load_source(spec: str, n_images: int, seed: int) -> ImageSource:
    name, _, rest = spec.partition(":")
    if name in ("shapes", "shapes-spurious"):
        return _shapes(spec, name, rest, n_images, seed)
    if name in ("folder", "table", "coco", "wds", "clip_benchmark", "cb"):
        name = "clip_benchmark" if name == "cb" else name
        if not rest:
            raise BadSpecError(f"bad data spec {spec!r}: {name} needs a path or name after the colon\n{DATA_GRAMMAR}")
        target, opts = _split_options(spec, name, rest)
        return _file_source(name, target, opts, n_images, seed)
    raise BadSpecError(f"bad data spec {spec!r}: unknown source {name!r}\n{DATA_GRAMMAR}")


def _file_source(name: str, target: str, opts: dict, n_images: int, seed: int) -> ImageSource:
    # Imported here: each pulls in its own dependencies (torchvision, clip_benchmark).
    if name == "folder":
        from interpbench.data.folder import ImageFolderSource

        return ImageFolderSource(target, n_images, seed)
    if name == "table":
        from interpbench.data.table import TableSource

        return TableSource(target, n_images, seed)
    if name == "coco":
        from interpbench.data.coco import CocoSource

        return CocoSource(target, opts.get("images"), n_images, seed)
    if name == "wds":
        from interpbench.data.wds import WebDatasetSource

        return WebDatasetSource(target, n_images, seed)
    from interpbench.data.benchmark import ClipBenchmarkSource

    return ClipBenchmarkSource(target, opts.get("root"), opts.get("split", "test"), n_images, seed)


__all__ = ["ImageSource", "load_source", "DATA_GRAMMAR"]
