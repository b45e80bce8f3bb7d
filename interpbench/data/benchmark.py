"""`clip_benchmark:NAME[?root=DIR&split=SPLIT]`: a data set through clip-benchmark's build_dataset.

Uses clip_benchmark.datasets.builder.build_dataset itself (same classes, templates and
splits as clip-benchmark's published numbers). Classification sets (cifar10, imagenet1k,
...) are labelled sources (zero-shot accuracy); retrieval sets (mscoco_captions,
flickr30k, ...) are paired sources (multimodality). It downloads where the data set
allows it and the network is reachable; offline (--offline, HF_HUB_OFFLINE=1) it only
reads what is already under DIR (default ~/.cache/interpbench/clip_benchmark).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from interpbench.data.common import IndexedSource, Item
from interpbench.errors import BadSpecError, OfflineError


def default_root() -> Path:
    base = Path(os.environ.get("INTERPBENCH_CACHE", Path.home() / ".cache" / "interpbench"))
    return base / "clip_benchmark"


def build(name: str, root: Path, split: str):
    """clip-benchmark's own builder; any failure to find or fetch the data is an OfflineError."""
    from clip_benchmark.datasets.builder import build_dataset, get_dataset_default_task

    task = get_dataset_default_task(name)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        ds = build_dataset(name, root=str(root), transform=None, split=split, download=not offline, task=task)
    except ValueError as exc:
        if "Unsupported dataset" in str(exc):
            raise BadSpecError(f"clip_benchmark:{name}: clip-benchmark does not know this data set ({exc}). "
                               "See clip_benchmark's dataset list (e.g. cifar10, imagenet1k, mscoco_captions).") \
                from exc
        raise
    except Exception as exc:  # network errors, torchvision's "Dataset not found", missing tools
        how = "offline mode (--offline / HF_HUB_OFFLINE=1) forbids downloading" if offline else \
            "downloading failed (no network?)"
        raise OfflineError(f"clip_benchmark:{name} (split {split}): the data is not under {root} and {how}: "
                           f"{type(exc).__name__}: {exc}. Fetch it where the network is reachable (clip_benchmark "
                           f"eval --dataset {name} --dataset_root {root}) and run again, or pass ?root=DIR.") \
            from exc
    return ds, task


class ClipBenchmarkSource(IndexedSource):
    def __init__(self, name: str, root: str | None = None, split: str = "test", n_images: int = 2000,
                 seed: int = 0):
        root_path = Path(root).expanduser().resolve() if root else default_root()
        self.ds, task = build(name, root_path, split)
        if task not in ("zeroshot_classification", "zeroshot_retrieval"):
            raise BadSpecError(f"clip_benchmark:{name}: task {task!r} is not supported; use a classification "
                               "or retrieval data set")
        self._retrieval = task == "zeroshot_retrieval"
        items = [Item(j) for j in range(len(self.ds))]
        identity = {"source": "clip_benchmark", "name": name, "split": split, "root": str(root_path),
                    "length": len(self.ds)}
        super().__init__(f"cb-{name.replace('/', '-')}-{split}", items, identity, n_images, seed)
        if not self._retrieval:
            self.classes = list(self.ds.classes)
            templates = getattr(self.ds, "templates", None)
            self.templates = list(templates) if isinstance(templates, list) else ["a photo of a {c}."]

    def _check_pairing(self) -> None:
        return None  # captions are read lazily from the data set itself

    def _item(self, i: int):
        return self.ds[int(self.items[i].where)]

    def image(self, i: int) -> Image.Image:
        img = self._item(i)[0]
        if not isinstance(img, Image.Image):  # some sets (e.g. `dummy`) yield tensors
            from torchvision.transforms.functional import to_pil_image

            img = to_pil_image(img)
        return img.convert("RGB")

    def captions(self, i: int) -> list[str] | None:
        return list(self._item(i)[1]) if self._retrieval else None

    def label(self, i: int) -> int | None:
        return None if self._retrieval else int(self._item(i)[1])
