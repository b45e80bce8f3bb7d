"""Counterfactual Shapes pairs: one scene rendered as drawn and with one attribute changed.

Scene s (s = 0 .. n_scenes - 1) is sample s of a one-object Shapes world (`test` split by
default, so the scenes are held out from the `eval` images that ground-truth labels are
chosen on). For each edited attribute the same scene, with the same jitter, background
phase and pixel noise, is rendered again with only that attribute set to another value;
the value is drawn uniformly from the other values by a generator seeded with
(seed, scene, attribute), so the pairs are a pure function of the identity.

Items, as an ImageSource: item s * (1 + A) is scene s as drawn, item s * (1 + A) + 1 + a is
its edit of attribute a (A = len(attributes)). `pairs()` lists (base item, edited item).

Count is not edited: a second object needs a position of its own, so changing the count
changes the position concepts too and is no single-attribute intervention.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from interpbench.data.shapes import (
    ATTRIBUTES,
    CONCEPTS,
    OBJECT_ATTRIBUTES,
    ShapesConfig,
    ShapesScene,
    ShapesWorld,
    concept_vector,
)

CF_ATTRIBUTES = ("shape", "color", "size", "position", "background")
_EDIT_STREAM = 0xCF  # keeps the edit draws apart from any other use of (seed, scene)


def edit_scene(scene: ShapesScene, attribute: str, value: str) -> ShapesScene:
    """The scene with one attribute of its (single) object, or its background, set to value."""
    if value not in ATTRIBUTES.get(attribute, ()):
        raise ValueError(f"cannot set {attribute!r} to {value!r}; expected an attribute of "
                         f"{CF_ATTRIBUTES} and one of its values")
    if attribute == "background":
        return dataclasses.replace(scene, background=value)
    if attribute not in OBJECT_ATTRIBUTES or len(scene.objects) != 1:
        raise ValueError(f"edit_scene edits {CF_ATTRIBUTES} of one-object scenes; got {attribute!r} "
                         f"on a scene with {len(scene.objects)} objects")
    obj = dataclasses.replace(scene.objects[0], **{attribute: value})
    return dataclasses.replace(scene, objects=(obj,))


def scene_value(scene: ShapesScene, attribute: str) -> str:
    return scene.background if attribute == "background" else getattr(scene.objects[0], attribute)


class CounterfactualSource:
    """One-object Shapes scenes and their single-attribute edits, as an ImageSource."""

    def __init__(self, n_scenes: int = 200, seed: int = 0, split: str = "test",
                 attributes: tuple[str, ...] = CF_ATTRIBUTES, image_size: int = 64):
        unknown = [a for a in attributes if a not in CF_ATTRIBUTES]
        if unknown or not attributes:
            raise ValueError(f"counterfactual attributes {list(attributes)}: expected a non-empty subset of "
                             f"{CF_ATTRIBUTES}")
        if n_scenes < 1:
            raise ValueError(f"counterfactual n_scenes must be positive, got {n_scenes}")
        config = ShapesConfig(image_size=image_size, min_objects=1, max_objects=1)
        self.world = ShapesWorld(split, length=n_scenes, seed=seed, config=config)
        self.attributes, self.n_scenes, self.seed = tuple(attributes), int(n_scenes), int(seed)
        self.identity = {**self.world.identity, "counterfactual": {"attributes": list(self.attributes),
                                                                   "edit_stream": _EDIT_STREAM}}
        self.name = f"shapes-counterfactual-{split}"

    def __len__(self) -> int:
        return self.n_scenes * (1 + len(self.attributes))

    def locate(self, i: int) -> tuple[int, str | None]:
        """Item -> (scene, edited attribute or None for the scene as drawn)."""
        if not 0 <= i < len(self):
            raise IndexError(f"counterfactual item {i} out of range [0, {len(self)})")
        s, k = divmod(i, 1 + len(self.attributes))
        return s, (self.attributes[k - 1] if k else None)

    def edit_value(self, s: int, attribute: str) -> str:
        """The seeded new value of `attribute` in scene s (never its current value)."""
        current = scene_value(self.world.scene(s), attribute)
        others = [v for v in ATTRIBUTES[attribute] if v != current]
        rng = np.random.default_rng([self.seed, _EDIT_STREAM, s, CF_ATTRIBUTES.index(attribute)])
        return others[int(rng.integers(len(others)))]

    def scene(self, i: int) -> ShapesScene:
        s, attribute = self.locate(i)
        base = self.world.scene(s)
        return base if attribute is None else edit_scene(base, attribute, self.edit_value(s, attribute))

    def rendered(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 [H, W, 3], object mask uint8 [H, W]) of item i."""
        return self.world.render(self.scene(i))

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.rendered(i)[0])

    def captions(self, i: int) -> None:
        return None

    def concepts(self, i: int) -> np.ndarray:
        sc = self.scene(i)
        return concept_vector(list(sc.objects), sc.background)

    @property
    def concept_names(self) -> list[str]:
        return list(CONCEPTS)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base item [P], edited item [P], scene [P]) for every (scene, attribute), scene-major."""
        a = len(self.attributes)
        scene = np.repeat(np.arange(self.n_scenes), a)
        base = scene * (1 + a)
        return base, base + 1 + np.tile(np.arange(a), self.n_scenes), scene

    def toggled(self) -> np.ndarray:
        """[P, C] 0/1: the concepts each pair's edit switches on or off."""
        base, edited, _ = self.pairs()
        vec = {i: self.concepts(int(i)) for i in np.unique(np.concatenate([base, edited]))}
        return np.stack([np.abs(vec[int(e)] - vec[int(b)]) for b, e in zip(base, edited, strict=True)]).astype(np.int8)


def concept_attributes() -> np.ndarray:
    """[C] index of each concept's attribute in ATTRIBUTES (the metric's concept groups)."""
    names = list(ATTRIBUTES)
    return np.array([names.index(c.split(":", 1)[0]) for c in CONCEPTS], dtype=np.int64)
