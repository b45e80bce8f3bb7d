"""`table:FILE`: an image-caption table, CSV/TSV or JSON lines.

CSV/TSV: a header row with `image`, one or more caption columns (`caption`, `caption_2`,
...; any column whose name starts with "caption") and optionally `label` (a class name).
JSON lines (.jsonl, .ndjson, .json with one object per line): {"image": ..., "caption":
"..."} or {"image": ..., "captions": [...]}, optionally "label".

Image paths are relative to the table's folder and may not leave it, or absolute.
Every row needs a caption (the source is paired: multimodality); labels make it labelled
(zero-shot).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from interpbench.data.common import IndexedSource, Item, clean_captions, digest, resolve_inside
from interpbench.data.folder import TEMPLATES
from interpbench.errors import CorruptFileError, MissingFileError
from interpbench.ioutils import sha256_file

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
NO_CAPTION_FIX = ("a table needs a caption for every image: a `caption` column (CSV/TSV; also `caption_2`, ... "
                  "any name starting with `caption`) or a `caption`/`captions` field (JSON lines). "
                  "For images without captions use folder:DIR (docs/data.md)")
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}


def _csv_rows(path: Path) -> list[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=CSV_DELIMITERS[path.suffix.lower()])
        fields = reader.fieldnames or []
        if "image" not in fields:
            raise CorruptFileError(path, f"header {fields} has no `image` column",
                                   "add a header row naming the columns image, caption[, label]")
        cap_cols = [f for f in fields if f.startswith("caption")]
        if not cap_cols:
            raise CorruptFileError(path, f"header {fields} has no caption column", NO_CAPTION_FIX)
        rows = []
        for n, row in enumerate(reader, start=2):
            caps = [row[c] for c in cap_cols if row.get(c)]
            rows.append((f"{path}:{n}", {"image": row["image"], "captions": caps, "label": row.get("label") or None,
                                         "fields": fields}))
    return rows


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorruptFileError(where, f"not a JSON object ({exc.msg})",
                                       "write one JSON object per line (JSON lines)") from exc
            if not isinstance(obj, dict) or not isinstance(obj.get("image"), str):
                raise CorruptFileError(where, "expected an object with a string field `image`", "fix this line")
            rows.append((where, {"image": obj["image"], "captions": obj.get("captions", obj.get("caption")),
                                 "label": obj.get("label"), "fields": sorted(obj)}))
    return rows


def _require_captions(rows: list[tuple[str, dict]]) -> None:
    """Every row needs a caption (docs/data.md): a table without them would be evaluated
    without any of the caption metrics, and nothing would say so."""
    for where, r in rows:
        if clean_captions(r["captions"], where) is None:
            raise CorruptFileError(where, f"this row has no caption (fields found: {r['fields']})", NO_CAPTION_FIX)


def read_table(path: Path) -> tuple[list[Item], list[str] | None]:
    """Items (image paths resolved and checked) and the sorted class names, if labelled."""
    suffix = path.suffix.lower()
    if suffix in CSV_DELIMITERS:
        rows = _csv_rows(path)
    elif suffix in JSONL_SUFFIXES:
        rows = _jsonl_rows(path)
    else:
        raise CorruptFileError(path, f"unknown table type {suffix!r}",
                               f"use one of {sorted([*CSV_DELIMITERS, *JSONL_SUFFIXES])}")
    _require_captions(rows)
    labels = [r["label"] for _, r in rows]
    classes = sorted({str(v) for v in labels if v is not None}) or None
    if classes and any(v is None for v in labels):
        where = rows[labels.index(None)][0]
        raise CorruptFileError(where, "this row has no label but others do", "label every row, or none")
    items = []
    for where, r in rows:
        img = resolve_inside(path.parent, r["image"], where)
        label = classes.index(str(r["label"])) if classes else None
        items.append(Item(img, clean_captions(r["captions"], where), label))
    return items, classes


class TableSource(IndexedSource):
    def __init__(self, path: str | Path, n_images: int = 2000, seed: int = 0):
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise MissingFileError(path, "a CSV/TSV or JSON-lines table of image paths and captions",
                                   "check the path given after `table:`")
        items, classes = read_table(path)
        identity = {"source": "table", "path": str(path), "sha256": sha256_file(path)[:16]}
        super().__init__(f"table-{path.stem}", items, identity, n_images, seed)
        for it in self.items:  # only the images in use: a clear error now, not mid-run
            if not Path(it.where).is_file():
                raise MissingFileError(it.where, f"an image listed in {path}", "fix the path in the table")
        self.identity["files"] = digest([(str(it.where), Path(it.where).stat().st_size) for it in self.items])
        if classes:
            self.classes, self.templates = classes, list(TEMPLATES)
