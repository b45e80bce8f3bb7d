"""`folder:DIR`: an image folder with one sub-folder per class (torchvision's ImageFolder layout).

    DIR/dog/001.jpg, DIR/cat/abc.png, ...   ->  classes ["cat", "dog"] (sorted)

A labelled source: it feeds zero-shot accuracy (prompts from the class names, with "_"
read as a space), not multimodality (no captions).
"""

from __future__ import annotations

from pathlib import Path

from interpbench.data.common import IMAGE_EXTENSIONS, IndexedSource, Item, digest
from interpbench.errors import EmptyDatasetError, MissingFileError

TEMPLATES = ["a photo of a {c}.", "a picture of a {c}."]


class ImageFolderSource(IndexedSource):
    def __init__(self, root: str | Path, n_images: int = 2000, seed: int = 0):
        from torchvision.datasets import ImageFolder

        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise MissingFileError(root, "a folder with one sub-folder of images per class",
                                   "check the path given after `folder:`")
        try:
            ds = ImageFolder(str(root), allow_empty=False)
        except FileNotFoundError as exc:  # ImageFolder's "no class folder" / "no valid file"
            raise EmptyDatasetError(f"{root}: {exc}. Expected DIR/<class name>/<image>, with image extensions "
                                    f"{', '.join(IMAGE_EXTENSIONS)}.") from exc
        items = [Item(Path(p), None, int(y)) for p, y in ds.samples]
        files = [(str(Path(p).relative_to(root)), Path(p).stat().st_size) for p, _ in ds.samples]
        identity = {"source": "folder", "root": str(root), "files": digest(files), "classes": ds.classes}
        super().__init__(f"folder-{root.name}", items, identity, n_images, seed)
        self.classes = [c.replace("_", " ") for c in ds.classes]
        self.templates = list(TEMPLATES)
