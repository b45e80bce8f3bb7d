"""Counterfactual Shapes pairs: each edit changes one attribute, in the pixels and concepts it implies."""

import hashlib

import numpy as np
import pytest

from interpbench.data.counterfactual import (
    CF_ATTRIBUTES,
    CounterfactualSource,
    concept_attributes,
    edit_scene,
)
from interpbench.data.shapes import ATTRIBUTES, CONCEPTS, ShapesConfig, ShapesWorld, word_concepts

N = 12


@pytest.fixture(scope="module")
def source():
    return CounterfactualSource(n_scenes=N, seed=3)


def _items(source):
    base, edited, scene = source.pairs()
    for b, e, s in zip(base, edited, scene, strict=True):
        yield int(b), int(e), int(s), source.locate(int(e))[1]


def test_base_items_are_the_generator_samples(source):
    world = ShapesWorld("test", N, 3, ShapesConfig(min_objects=1, max_objects=1))
    for s in range(N):
        image, mask = source.rendered(s * (1 + len(CF_ATTRIBUTES)))
        np.testing.assert_array_equal(image, world[s].image)
        np.testing.assert_array_equal(mask, world[s].mask)


def test_scene_and_render_split_keeps_every_sample_bit_identical():
    """Digest of samples drawn before ShapesWorld was split into scene + render (main at 2201ba0)."""
    h = hashlib.sha256()
    for w in (ShapesWorld("eval", 60, 0), ShapesWorld("train", 40, 3, ShapesConfig(spurious=True)),
              ShapesWorld("test", 20, 1, ShapesConfig(image_size=32, min_objects=2))):
        for i in range(len(w)):
            s = w[i]
            h.update(s.image.tobytes())
            h.update(s.mask.tobytes())
            h.update(repr((s.captions, s.concepts.tolist(), s.group, s.attributes, s.background,
                           [vars(o) for o in s.objects])).encode())
    assert h.hexdigest() == "b202965926bd97037b5e44fdfa594e59cc459240568d2eb6996db5210f3ba4a5"


def test_pixels_change_only_where_the_edited_attribute_implies(source):
    for b, e, _, attribute in _items(source):
        (img_b, mask_b), (img_e, mask_e) = source.rendered(b), source.rendered(e)
        diff = (img_b != img_e).any(axis=2)
        assert diff.any(), f"edit of {attribute} changed no pixel"
        obj_b, obj_e = mask_b > 0, mask_e > 0
        if attribute == "color":  # same object, same place: only its pixels change
            np.testing.assert_array_equal(mask_b, mask_e)
            assert not diff[~obj_b].any()
        elif attribute == "background":  # the object keeps every pixel
            np.testing.assert_array_equal(mask_b, mask_e)
            assert not diff[obj_b].any()
        else:  # shape, size, position: only where the object was or is now
            assert not diff[~(obj_b | obj_e)].any()
            assert not np.array_equal(mask_b, mask_e)


def test_concepts_differ_in_exactly_the_edited_attribute(source):
    toggled = source.toggled()
    groups = concept_attributes()
    for p, (b, e, _, attribute) in enumerate(_items(source)):
        changed = np.flatnonzero(source.concepts(b) != source.concepts(e))
        assert len(changed) == 2 and {CONCEPTS[c].split(":")[0] for c in changed} == {attribute}
        np.testing.assert_array_equal(np.flatnonzero(toggled[p]), changed)
        assert set(groups[changed]) == {list(ATTRIBUTES).index(attribute)}


def test_edits_are_seeded_and_never_keep_the_value(source):
    again = CounterfactualSource(n_scenes=N, seed=3)
    other = CounterfactualSource(n_scenes=N, seed=4)
    values = [source.edit_value(s, a) for s in range(N) for a in CF_ATTRIBUTES]
    assert values == [again.edit_value(s, a) for s in range(N) for a in CF_ATTRIBUTES]
    assert values != [other.edit_value(s, a) for s in range(N) for a in CF_ATTRIBUTES]
    assert source.identity != other.identity and len(source) == N * 6
    for s in range(N):
        scene = source.world.scene(s)
        assert source.edit_value(s, "shape") != scene.objects[0].shape
        assert source.edit_value(s, "background") != scene.background


def test_bad_edits_and_settings_are_refused():
    scene = ShapesWorld("eval", 4, 0, ShapesConfig(min_objects=2, max_objects=2)).scene(0)
    with pytest.raises(ValueError, match="one-object"):
        edit_scene(scene, "color", "red")
    with pytest.raises(ValueError, match="cannot set"):
        edit_scene(scene, "color", "mauve")
    with pytest.raises(ValueError, match="one-object"):
        edit_scene(scene, "count", "two")  # a count edit would move position concepts too
    with pytest.raises(ValueError, match="attributes"):
        CounterfactualSource(4, attributes=("count",))


def test_every_vocabulary_word_names_one_concept():
    m = word_concepts()
    assert m["disc"] == "shape:circle" and m["upper left"] == "position:top left"
    assert set(m.values()) == set(CONCEPTS)
