"""The Shapes world: synthetic images with captions, ground-truth concepts and masks.

Every sample is a pure function of (seed, split, index), so any process can draw any
sample without coordination, and two runs see identical data. Rendering is plain
numpy on a 64x64 grid (about 0.3 ms per image), fast enough to generate on the fly.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")
COUNTS = ("one", "two", "three", "four")
BACKGROUNDS = ("plain", "striped", "dotted", "checkered")

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "size": SIZES,
    "position": POSITIONS,
    "count": COUNTS,
    "background": BACKGROUNDS,
}

# Words a caption may use for a concept. The first entry is the canonical word; the
# `shapes` vocabulary and label-accuracy scoring accept any of them.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "round shape"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "star": ("star", "hexagram"),
    "hexagon": ("hexagon",),
    "cross": ("cross", "plus sign"),
    "red": ("red",),
    "green": ("green",),
    "blue": ("blue",),
    "yellow": ("yellow",),
    "purple": ("purple", "violet"),
    "orange": ("orange",),
    "white": ("white",),
    "black": ("black",),
    "small": ("small", "little", "tiny"),
    "large": ("large", "big"),
    "top left": ("top left", "upper left"),
    "top right": ("top right", "upper right"),
    "bottom left": ("bottom left", "lower left"),
    "bottom right": ("bottom right", "lower right"),
    "center": ("center", "middle"),
    "one": ("one", "a single"),
    "two": ("two",),
    "three": ("three",),
    "four": ("four",),
    "plain": ("plain", "plain gray"),
    "striped": ("striped", "stripy"),
    "dotted": ("dotted", "polka dot"),
    "checkered": ("checkered", "checkerboard"),
}

CONCEPTS: tuple[str, ...] = tuple(f"{a}:{v}" for a, vals in ATTRIBUTES.items() for v in vals)
CONCEPT_INDEX = {c: i for i, c in enumerate(CONCEPTS)}

# Zero-shot tasks: attribute -> prompt templates. Captions are generated with the same
# phrasings, so a model trained on Shapes captions can be probed with them.
ZEROSHOT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "shape": ("a {c}", "an image of a {c}"),
    "color": ("a {c} object", "a {c} shape"),
    "size": ("a {c} object", "a {c} shape"),
    "position": ("an object at the {c}", "a shape at the {c}"),
    "count": ("{c}", "an image of {c}"),
    "background": ("an object on a {c} background", "a shape on a {c} background"),
}
# Class names shown to the text tower; only count needs a noun to read naturally.
ZEROSHOT_CLASSNAMES: dict[str, tuple[str, ...]] = {
    **{a: v for a, v in ATTRIBUTES.items() if a != "count"},
    "count": ("one object", "two objects", "three objects", "four objects"),
}
# Object-level attributes are only well defined (single label) on one-object images.
OBJECT_ATTRIBUTES = ("shape", "color", "size", "position")

_SPLIT_CODE = {"train": 0, "eval": 1, "test": 2}
_REGION_CENTERS = {  # fractions of the image side
    "top left": (0.26, 0.26),
    "top right": (0.74, 0.26),
    "bottom left": (0.26, 0.74),
    "bottom right": (0.74, 0.74),
    "center": (0.5, 0.5),
}
_RADIUS = {"small": 0.09, "large": 0.17}  # fraction of the image side
_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class ShapesConfig:
    """How a Shapes split is drawn. Part of the data identity (cache keys, results)."""

    image_size: int = 64
    min_objects: int = 1
    max_objects: int = 4
    p_single: float = 0.5  # share of one-object images; the rest are uniform over 2..max
    n_captions: int = 3
    spurious: bool = False  # Waterbirds analogue: background follows shape in train only
    spurious_strength: float = 0.95

    def __post_init__(self):
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"ShapesConfig.image_size must be in [16, 1024], got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects <= 4:
            raise ValueError(
                f"ShapesConfig needs 1 <= min_objects <= max_objects <= 4, "
                f"got {self.min_objects}..{self.max_objects}"
            )
        if not 0.0 <= self.p_single <= 1.0 or not 0.0 <= self.spurious_strength <= 1.0:
            raise ValueError("ShapesConfig.p_single and spurious_strength must lie in [0, 1]")
        if self.n_captions < 1:
            raise ValueError("ShapesConfig.n_captions must be at least 1")


@dataclass
class ShapesObject:
    shape: str
    color: str
    size: str
    position: str


@dataclass(frozen=True)
class ShapesScene:
    """Everything random about one image except its captions; `ShapesWorld.render` draws it.

    Editing a field (dataclasses.replace) and rendering again gives the same scene with
    only that change: same jitter, background phase and pixel noise (counterfactual pairs).
    """

    objects: tuple[ShapesObject, ...]
    background: str
    phase: int  # background pattern offset
    jitters: tuple[tuple[float, float], ...]  # per object, fraction of the image side
    noise: np.ndarray  # int16 [H, W, 3], added to every pixel


@dataclass
class ShapesSample:
    index: int
    image: np.ndarray  # uint8 [H, W, 3]
    captions: list[str]
    concepts: np.ndarray  # float32 multi-hot [len(CONCEPTS)]
    mask: np.ndarray  # uint8 [H, W]; 0 = background, k = k-th object (1-based)
    objects: list[ShapesObject]
    background: str
    group: int = 0  # spurious variant: shape index * len(BACKGROUNDS) + background index
    attributes: dict = field(default_factory=dict)  # attribute -> value or None


def _regular_polygon(dx, dy, r, n, rot):
    inside = np.ones(dx.shape, dtype=bool)
    apothem = r * np.cos(np.pi / n)
    for k in range(n):
        a = rot + (2 * k + 1) * np.pi / n
        inside &= dx * np.cos(a) + dy * np.sin(a) <= apothem
    return inside


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of a shape of radius r centred at the origin of (dx, dy)."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r
    if shape == "triangle":  # apex up; image y grows downwards
        return _regular_polygon(dx, dy - 0.2 * r, 1.15 * r, 3, np.pi / 2)
    if shape == "hexagon":
        return _regular_polygon(dx, dy, r, 6, 0.0)
    if shape == "star":  # hexagram: two opposed triangles
        up = _regular_polygon(dx, dy, r, 3, np.pi / 2)
        return up | _regular_polygon(dx, dy, r, 3, -np.pi / 2)
    if shape == "cross":
        w = 0.33 * r
        ax, ay = np.abs(dx), np.abs(dy)
        return ((ax <= w) & (ay <= r)) | ((ay <= w) & (ax <= r))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def background_period(size: int) -> int:
    return max(4, size // 8)


def render_background(kind: str, size: int, rng: np.random.Generator | None = None,
                      phase: int | None = None) -> np.ndarray:
    """Background pattern; its phase is drawn from rng unless given (scenes carry it)."""
    yy, xx = np.mgrid[0:size, 0:size]
    period = background_period(size)
    if phase is None:
        phase = int(rng.integers(period))
    lo, hi = 95, 165
    if kind == "plain":
        level = np.full((size, size), 128, dtype=np.int16)
    elif kind == "striped":
        level = np.where(((xx + yy + phase) // (period // 2)) % 2 == 0, lo, hi)
    elif kind == "dotted":
        cx = (xx + phase) % period - period / 2
        cy = (yy + phase) % period - period / 2
        level = np.where(cx * cx + cy * cy <= (period / 4) ** 2, lo - 30, hi - 20)
    elif kind == "checkered":
        level = np.where((((xx + phase) // period) + ((yy + phase) // period)) % 2 == 0, lo, hi)
    else:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
    img = np.repeat(level[..., None], 3, axis=2)
    return img.astype(np.int16)


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_CODE[split], index])


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _object_phrase(obj: ShapesObject, keep: set[str], rng) -> str:
    words = []
    if "size" in keep:
        words.append(_pick(rng, SYNONYMS[obj.size]))
    if "color" in keep:
        words.append(_pick(rng, SYNONYMS[obj.color]))
    words.append(_pick(rng, SYNONYMS[obj.shape]) if "shape" in keep else _pick(rng, ("object", "shape")))
    phrase = " ".join(words)
    if "position" in keep:
        phrase += f" {_pick(rng, ('at the', 'in the'))} {_pick(rng, SYNONYMS[obj.position])}"
    return phrase


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def make_caption(objects: list[ShapesObject], background: str, rng: np.random.Generator) -> str:
    """One caption naming a random subset (2 to 4 kinds) of the sample's true attributes."""
    kinds = ["shape", "color", "size", "position", "background", "count"]
    n_keep = int(rng.integers(2, 5))
    keep = set(rng.choice(kinds, size=min(n_keep, len(kinds)), replace=False).tolist())
    bg = ""
    if "background" in keep:
        bg = f" on a {_pick(rng, SYNONYMS[background])} background"
    count = _COUNT_WORDS[len(objects)]
    if "count" in keep and not (keep & {"shape", "color", "size", "position"}):
        noun = _pick(rng, ("object", "shape")) + ("s" if len(objects) > 1 else "")
        return f"{_pick(rng, ('', 'an image of '))}{count} {noun}{bg}"
    if len(objects) == 1:
        phrase = _object_phrase(objects[0], keep, rng)
        lead = _pick(rng, ("", "an image of ", "a picture of ", "there is "))
        det = _pick(rng, ("one", "a single")) if "count" in keep else _article(phrase)
        return f"{lead}{det} {phrase}{bg}"
    parts = [f"{_article(p)} {p}" for p in (_object_phrase(o, keep, rng) for o in objects)]
    listing = ", ".join(parts[:-1]) + " and " + parts[-1]
    if "count" in keep:
        return f"{count} {_pick(rng, ('objects', 'shapes'))}: {listing}{bg}"
    return f"{listing}{bg}"


class ShapesWorld:
    """A deterministic, indexable Shapes split of `length` samples.

    >>> world = ShapesWorld("eval", length=10, seed=0)
    >>> world[3].captions  # doctest: +SKIP
    """

    def __init__(self, split: str = "train", length: int = 10_000, seed: int = 0,
                 config: ShapesConfig | None = None):
        if split not in _SPLIT_CODE:
            raise ValueError(f"unknown Shapes split {split!r}; expected one of {tuple(_SPLIT_CODE)}")
        if length < 1:
            raise ValueError(f"Shapes length must be positive, got {length}")
        self.split, self.length, self.seed = split, int(length), int(seed)
        self.config = config or ShapesConfig()
        size = self.config.image_size
        self._yy, self._xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5

    def __len__(self) -> int:
        return self.length

    @property
    def identity(self) -> dict:
        """Everything that determines the samples: used in cache keys and results."""
        return {"source": "shapes", "split": self.split, "length": self.length,
                "seed": self.seed, "config": asdict(self.config)}

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.identity.items())).encode()).hexdigest()[:16]

    def _draw_objects(self, rng) -> tuple[list[ShapesObject], str]:
        cfg = self.config
        if cfg.min_objects == cfg.max_objects:
            n = cfg.min_objects
        elif cfg.min_objects == 1 and rng.random() < cfg.p_single:
            n = 1
        else:
            n = int(rng.integers(max(2, cfg.min_objects), cfg.max_objects + 1))
        positions = rng.choice(len(POSITIONS), size=n, replace=False)
        objects = [
            ShapesObject(_pick(rng, SHAPES), _pick(rng, tuple(COLORS)), _pick(rng, SIZES), POSITIONS[p])
            for p in positions
        ]
        background = _pick(rng, BACKGROUNDS)
        if cfg.spurious:
            # Waterbirds analogue: each shape has a "home" background. In train the first
            # object's background follows its shape with probability spurious_strength;
            # in other splits background and shape are independent.
            home = BACKGROUNDS[SHAPES.index(objects[0].shape) % len(BACKGROUNDS)]
            if self.split == "train" and rng.random() < cfg.spurious_strength:
                background = home
        return objects, background

    def scene(self, index: int) -> ShapesScene:
        """Every random draw of sample `index` except its captions, as a ShapesScene."""
        if not 0 <= index < self.length:
            raise IndexError(f"Shapes index {index} out of range [0, {self.length})")
        return self._draw_scene(_rng(self.seed, self.split, index))

    def _draw_scene(self, rng) -> ShapesScene:
        # The order of draws is part of the data identity: objects, background phase,
        # per-object jitter, pixel noise (then captions, drawn by __getitem__).
        objects, background = self._draw_objects(rng)
        size = self.config.image_size
        phase = int(rng.integers(background_period(size)))
        # Kept as numpy float64 scalars: with NumPy 2 promotion a Python float would turn the
        # centre arithmetic below float32 and move mask edges.
        jitters = tuple(tuple(rng.uniform(-0.04, 0.04, size=2)) for _ in objects)
        noise = rng.integers(-6, 7, size=(size, size, 3), dtype=np.int16)
        return ShapesScene(tuple(objects), background, phase, jitters, noise)

    def render(self, scene: ShapesScene) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 [H, W, 3], mask uint8 [H, W]) of a scene: a pure function of it."""
        size = self.config.image_size
        img = render_background(scene.background, size, phase=scene.phase)
        mask = np.zeros((size, size), dtype=np.uint8)
        for k, (obj, jitter) in enumerate(zip(scene.objects, scene.jitters, strict=True), start=1):
            fx, fy = _REGION_CENTERS[obj.position]
            cx, cy = (fx + jitter[0]) * size, (fy + jitter[1]) * size
            m = shape_mask(obj.shape, self._xx - cx, self._yy - cy, _RADIUS[obj.size] * size)
            img[m] = COLORS[obj.color]
            mask[m] = k
        return np.clip(img + scene.noise, 0, 255).astype(np.uint8), mask

    def __getitem__(self, index: int) -> ShapesSample:
        if not 0 <= index < self.length:
            raise IndexError(f"Shapes index {index} out of range [0, {self.length})")
        rng = _rng(self.seed, self.split, index)
        scene = self._draw_scene(rng)
        image, mask = self.render(scene)
        objects, background = list(scene.objects), scene.background
        captions = [make_caption(objects, background, rng) for _ in range(self.config.n_captions)]
        return ShapesSample(
            index=index, image=image, captions=captions,
            concepts=concept_vector(objects, background), mask=mask, objects=objects,
            background=background,
            group=SHAPES.index(objects[0].shape) * len(BACKGROUNDS) + BACKGROUNDS.index(background),
            attributes=sample_attributes(objects, background),
        )

    def labels(self, index: int) -> tuple[dict, np.ndarray]:
        """(attributes, concept vector) of sample `index` without rendering it: the scene is
        drawn first from the sample's generator, so these equal world[index]'s."""
        if not 0 <= index < self.length:
            raise IndexError(f"Shapes index {index} out of range [0, {self.length})")
        objects, background = self._draw_objects(_rng(self.seed, self.split, index))
        return sample_attributes(objects, background), concept_vector(objects, background)


def sample_attributes(objects: list[ShapesObject], background: str) -> dict:
    """attribute -> single true value, or None where the image has several."""
    single = len(objects) == 1
    out = {a: (getattr(objects[0], a) if single else None) for a in OBJECT_ATTRIBUTES}
    out["count"] = _COUNT_WORDS[len(objects)]
    out["background"] = background
    return out


def concept_vector(objects: list[ShapesObject], background: str) -> np.ndarray:
    v = np.zeros(len(CONCEPTS), dtype=np.float32)
    for o in objects:
        for a in OBJECT_ATTRIBUTES:
            v[CONCEPT_INDEX[f"{a}:{getattr(o, a)}"]] = 1.0
    v[CONCEPT_INDEX[f"count:{_COUNT_WORDS[len(objects)]}"]] = 1.0
    v[CONCEPT_INDEX[f"background:{background}"]] = 1.0
    return v


def word_concept_matrix(words: list[str], concept_names=CONCEPTS) -> np.ndarray:
    """[V, C] float32: 1 where word v names concept c ("attribute:value": the value itself or
    one of its SYNONYMS; case and spacing ignored), else 0. A word that names no concept
    gets a zero row. The ground-truth judge's "text embedding" of a word."""
    def norm(w: str) -> str:
        return " ".join(w.lower().split())

    names: dict[str, list[int]] = {}
    for c, concept in enumerate(concept_names):
        value = concept.split(":", 1)[-1]
        for w in dict.fromkeys((value, *SYNONYMS.get(value, ()))):
            names.setdefault(norm(w), []).append(c)
    out = np.zeros((len(words), len(concept_names)), dtype=np.float32)
    for v, word in enumerate(words):
        out[v, names.get(norm(word), [])] = 1.0
    return out


def concept_words() -> list[str]:
    """Every concept word and synonym, deduplicated, in a fixed order (the `shapes` vocab)."""
    seen: dict[str, None] = {}
    for values in ATTRIBUTES.values():
        for v in values:
            for w in SYNONYMS[v]:
                seen.setdefault(w, None)
    return list(seen)


def word_concepts() -> dict[str, str]:
    """Vocabulary word or synonym (lower case) -> the "attribute:value" concept it names."""
    out = {}
    for attribute, values in ATTRIBUTES.items():
        for v in values:
            for w in SYNONYMS[v]:
                out[" ".join(w.lower().split())] = f"{attribute}:{v}"
    return out
