"""`coco:ANNOTATIONS.json[?images=DIR]`: COCO-style captions (e.g. captions_val2017.json).

The file holds {"images": [{"id", "file_name"}, ...], "annotations": [{"image_id",
"caption"}, ...]}. Images are read from DIR (default: the annotation file's folder; a
relative DIR is taken from there); `file_name` may not leave DIR. Images without a
caption are skipped; items are ordered by image id. A paired source (multimodality).
"""

from __future__ import annotations

import json
from pathlib import Path

from interpbench.data.common import IndexedSource, Item, digest, resolve_inside
from interpbench.errors import CorruptFileError, MissingFileError
from interpbench.ioutils import sha256_file


def read_coco(path: Path, images: Path) -> list[Item]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        by_id = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        caps: dict[int, list[str]] = {}
        for ann in data["annotations"]:
            caps.setdefault(int(ann["image_id"]), []).append(str(ann["caption"]).strip())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not valid JSON ({exc})", "re-download the annotation file") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(path, f"not COCO captions format (missing or bad field {exc})",
                               "expected {'images': [{'id', 'file_name'}], 'annotations': "
                               "[{'image_id', 'caption'}]}") from exc
    unknown = sorted(set(caps) - set(by_id))
    if unknown:
        raise CorruptFileError(path, f"annotation for image_id {unknown[0]} which is not in `images`",
                               "re-download the annotation file")
    return [Item(resolve_inside(images, by_id[i], f"{path} (image id {i})"), caps[i])
            for i in sorted(caps)]


class CocoSource(IndexedSource):
    def __init__(self, path: str | Path, images: str | None = None, n_images: int = 2000, seed: int = 0):
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise MissingFileError(path, "a COCO captions annotation file (JSON)", "check the path after `coco:`")
        img_dir = (path.parent / Path(images).expanduser()).resolve() if images else path.parent
        if not img_dir.is_dir():
            raise MissingFileError(img_dir, "the folder of COCO images", "pass ?images=DIR after the file")
        items = read_coco(path, img_dir)
        identity = {"source": "coco", "path": str(path), "images": str(img_dir),
                    "sha256": sha256_file(path)[:16]}
        super().__init__(f"coco-{path.stem}", items, identity, n_images, seed)
        for it in self.items:
            if not Path(it.where).is_file():
                raise MissingFileError(it.where, f"an image listed in {path}", "check ?images=DIR")
        self.identity["files"] = digest([(str(it.where), Path(it.where).stat().st_size) for it in self.items])
