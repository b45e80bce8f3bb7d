"""Data sources, chosen by a data spec string.

    shapes[:SPLIT]            the Shapes world (split eval by default; train, test)
    shapes-spurious[:SPLIT]   the spurious variant (background follows shape in train)
"""

from __future__ import annotations

from interpbench.data.base import ImageSource, ShapesSource
from interpbench.data.shapes import ShapesConfig
from interpbench.errors import BadSpecError

DATA_GRAMMAR = """accepted data specs:
  shapes[:eval|train|test]            the Shapes world (default)
  shapes-spurious[:eval|train|test]   Shapes with background correlated with shape in train"""


def load_source(spec: str = "shapes", n_images: int = 2000, seed: int = 0) -> ImageSource:
    name, _, split = spec.partition(":")
    split = split or "eval"
    if name in ("shapes", "shapes-spurious"):
        if split not in ("eval", "train", "test"):
            raise BadSpecError(f"bad data spec {spec!r}: unknown split {split!r}\n{DATA_GRAMMAR}")
        if n_images < 1:
            raise BadSpecError(f"--n-images must be positive, got {n_images}")
        return ShapesSource(split, length=n_images, seed=seed,
                            config=ShapesConfig(spurious=name == "shapes-spurious"))
    raise BadSpecError(f"bad data spec {spec!r}: unknown source {name!r}\n{DATA_GRAMMAR}")


__all__ = ["ImageSource", "load_source", "DATA_GRAMMAR"]
