"""Modality score, activation density, multimodal fraction and bridge diagonal on hand-built features."""

import numpy as np
import pytest

from interpbench.errors import NumericalError, ShapeMismatchError
from interpbench.metrics._inputs import to_entries
from interpbench.metrics.multimodality import MultimodalityAccumulator, modality_scores


def _hand_built():
    n = 4
    img, txt = np.zeros((n, 5)), np.zeros((n, 5))
    img[:, 0] = 1.0  # image-only -> 1
    txt[:, 1] = 2.0  # text-only -> 0
    img[:2, 2], txt[2:, 2] = 1.0, 1.0  # balanced, never on the same pair -> 0.5, bridge 0
    img[:, 3], txt[:, 3] = 3.0, 1.0  # 3:1 -> 0.75, bridge 3
    # feature 4 never fires -> undefined
    return img, txt


def test_known_modality_scores_density_and_bridge():
    img, txt = _hand_built()
    r = modality_scores(img, txt)
    np.testing.assert_allclose(r.modality_score[:4], [1.0, 0.0, 0.5, 0.75])
    assert np.isnan(r.modality_score[4])
    np.testing.assert_allclose(r.energy_image, [1, 0, 0.5, 3, 0])
    np.testing.assert_allclose(r.energy_text, [0, 2, 0.5, 1, 0])
    # density = sum of activations over 2N inputs / (2N * max activation)
    np.testing.assert_allclose(r.density, [4 / 8, 8 / (8 * 2), 4 / 8, 16 / (8 * 3), 0])
    np.testing.assert_allclose(r.bridge, [0, 0, 0, 3, 0])
    assert r.n_scored == 4
    assert r.multimodal_fraction == pytest.approx(2 / 4)  # 0.5 and 0.75 lie in [0.1, 0.9]


def test_band_is_closed_and_configurable():
    img, txt = _hand_built()
    assert modality_scores(img, txt, band=(0.5, 0.75)).multimodal_fraction == pytest.approx(0.5)
    assert modality_scores(img, txt, band=(0.0, 1.0)).multimodal_fraction == pytest.approx(1.0)
    assert modality_scores(img, txt, band=(0.6, 0.7)).multimodal_fraction == pytest.approx(0.0)


def test_independent_computation_on_random_data_and_merge():
    rng = np.random.default_rng(0)
    img = rng.exponential(1, (50, 7)) * (rng.random((50, 7)) < 0.3)
    txt = rng.exponential(1, (50, 7)) * (rng.random((50, 7)) < 0.3)
    r = modality_scores(img, txt)
    e_i, e_t = img.mean(0), txt.mean(0)
    np.testing.assert_allclose(r.modality_score, e_i / (e_i + e_t), atol=1e-6)
    mx = np.maximum(img.max(0), txt.max(0))
    np.testing.assert_allclose(r.density, (img.sum(0) + txt.sum(0)) / (100 * mx), atol=1e-6)
    np.testing.assert_allclose(r.bridge, (img * txt).mean(0), atol=1e-6)
    a, b = MultimodalityAccumulator(7), MultimodalityAccumulator(7)
    a.update(to_entries(img[:20], "i", 7), to_entries(txt[:20], "t", 7))
    b.update(to_entries(img[20:], "i", 7), to_entries(txt[20:], "t", 7))
    a.merge(b)
    m = a.result()
    for k in ("modality_score", "density", "energy_image", "energy_text", "bridge"):
        np.testing.assert_allclose(getattr(m, k), getattr(r, k), atol=1e-12)
    assert m.multimodal_fraction == pytest.approx(r.multimodal_fraction)


def test_n_min_excludes_rare_features_from_the_fraction():
    img, txt = np.zeros((5, 2)), np.zeros((5, 2))
    img[0, 0], txt[0, 0] = 1, 1  # fires on 2 inputs
    img[:3, 1], txt[:3, 1] = 1, 1
    assert modality_scores(img, txt, n_min=3).n_scored == 1
    assert modality_scores(img, txt, n_min=2).n_scored == 2


def test_errors():
    img, txt = _hand_built()
    with pytest.raises(ShapeMismatchError, match="paired"):
        MultimodalityAccumulator(5).update(to_entries(img, "i", 5), to_entries(txt[:2], "t", 5))
    with pytest.raises(NumericalError, match="negative"):
        modality_scores(-img, txt)
