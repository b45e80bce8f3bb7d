"""Shapes world: determinism and ground-truth consistency."""

import numpy as np
import pytest

from interpbench.data.shapes import (
    ATTRIBUTES,
    BACKGROUNDS,
    COLORS,
    CONCEPT_INDEX,
    CONCEPTS,
    SYNONYMS,
    ShapesConfig,
    ShapesWorld,
    concept_words,
)


def test_same_seed_same_samples_and_splits_differ():
    a, b = ShapesWorld("eval", 50, seed=3), ShapesWorld("eval", 50, seed=3)
    for i in (0, 7, 49):
        assert np.array_equal(a[i].image, b[i].image)
        assert a[i].captions == b[i].captions
        assert np.array_equal(a[i].mask, b[i].mask)
    train = ShapesWorld("train", 50, seed=3)
    assert any(not np.array_equal(a[i].image, train[i].image) for i in range(10))
    other = ShapesWorld("eval", 50, seed=4)
    assert any(not np.array_equal(a[i].image, other[i].image) for i in range(10))


def test_random_access_is_order_independent():
    w = ShapesWorld("train", 100, seed=0)
    forward = [w[i].captions for i in range(20)]
    backward = [w[i].captions for i in reversed(range(20))][::-1]
    assert forward == backward


def _mentioned(caption, value):
    return any(f" {s} " in f" {caption} ".replace(",", " ").replace(":", " ") for s in SYNONYMS[value])


def test_masks_match_attributes():
    w = ShapesWorld("eval", 200, seed=1)
    for i in range(200):
        s = w[i]
        assert s.mask.max() <= len(s.objects)
        for k, obj in enumerate(s.objects, start=1):
            pix = s.mask == k
            if pix.sum() < 10:  # heavily occluded objects are allowed to be small
                continue
            mean_rgb = s.image[pix].astype(float).mean(0)
            assert np.abs(mean_rgb - np.array(COLORS[obj.color])).max() < 12
            ys, xs = np.nonzero(pix)
            cx, cy = xs.mean() / 64, ys.mean() / 64
            horiz = "left" if cx < 0.4 else "right" if cx > 0.6 else "mid"
            vert = "top" if cy < 0.4 else "bottom" if cy > 0.6 else "mid"
            if obj.position == "center":
                assert (horiz, vert) == ("mid", "mid") or pix.sum() < 40
            else:
                assert obj.position == f"{vert} {horiz}"


def test_captions_mention_only_true_attributes():
    w = ShapesWorld("eval", 300, seed=2)
    for i in range(300):
        s = w[i]
        true_values = {getattr(o, a) for o in s.objects for a in ("shape", "color", "size", "position")}
        true_values |= {s.background, s.attributes["count"]}
        for cap in s.captions:
            for attr, values in ATTRIBUTES.items():
                for v in values:
                    if v in true_values or attr == "count":
                        continue
                    # "one" may also appear inside other words; counts are checked below
                    assert not _mentioned(cap, v), (cap, v)
            for n, word in enumerate(("two", "three", "four"), start=2):
                if _mentioned(cap, word):
                    assert len(s.objects) == n, cap


def test_concept_vector_matches_objects():
    w = ShapesWorld("eval", 100, seed=0)
    for i in range(100):
        s = w[i]
        expected = {f"{a}:{getattr(o, a)}" for o in s.objects for a in ("shape", "color", "size", "position")}
        expected |= {f"background:{s.background}", f"count:{s.attributes['count']}"}
        assert {CONCEPTS[j] for j in np.nonzero(s.concepts)[0]} == expected
        assert s.concepts[CONCEPT_INDEX[f"count:{s.attributes['count']}"]] == 1


def test_spurious_variant_correlates_only_in_train():
    cfg = ShapesConfig(spurious=True)
    def home_rate(split):
        w = ShapesWorld(split, 600, seed=0, config=cfg)
        hits = [BACKGROUNDS.index(w[i].background) == ATTRIBUTES["shape"].index(w[i].objects[0].shape) % 4
                for i in range(600)]
        return np.mean(hits)
    assert home_rate("train") > 0.9
    assert 0.15 < home_rate("eval") < 0.35
    s = ShapesWorld("eval", 5, config=cfg)[0]
    assert s.group == ATTRIBUTES["shape"].index(s.objects[0].shape) * 4 + BACKGROUNDS.index(s.background)


def test_concept_words_cover_every_concept_and_are_unique():
    words = concept_words()
    assert len(words) == len(set(words))
    for values in ATTRIBUTES.values():
        for v in values:
            assert SYNONYMS[v][0] in words


def test_bad_config_is_rejected_with_the_field_named():
    with pytest.raises(ValueError, match="max_objects"):
        ShapesConfig(max_objects=9)
    with pytest.raises(ValueError, match="split"):
        ShapesWorld("validation")
