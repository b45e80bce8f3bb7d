"""Fig. 3b plot from arrays: valid PNG, the drawn points are the scored, active features."""

import numpy as np
import pytest

from interpbench.errors import ShapeMismatchError
from interpbench.metrics.multimodality import modality_scores
from interpbench.metrics.plots import plot_modality_vs_density


def test_plot_writes_png_with_one_point_per_active_feature(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.exponential(1, (30, 8)) * (rng.random((30, 8)) < 0.4)
    txt = rng.exponential(1, (30, 8)) * (rng.random((30, 8)) < 0.4)
    img[:, 7] = txt[:, 7] = 0  # never active: no point
    r = modality_scores(img, txt)
    path, data = plot_modality_vs_density(r.modality_score, r.density, tmp_path / "fig3b.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(data["feature"]) == list(range(7))
    np.testing.assert_allclose(data["modality_score"], r.modality_score[:7])
    with pytest.raises(ShapeMismatchError, match="one value per feature"):
        plot_modality_vs_density(r.modality_score, r.density[:3], tmp_path / "x.png")
