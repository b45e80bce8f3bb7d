"""Reconstruction metrics by hand: both FVU conventions, NMAE, cosine, L0, fraction of zeros, dead latents."""

import numpy as np
import pytest

from interpbench.metrics.inputs import to_entries
from interpbench.metrics.reconstruction import ReconstructionAccumulator, reconstruction_metrics


def test_hand_computed_values():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 0.0, 0.0, 0.0]])
    xh = np.array([[1.0, 2.0, 3.0, 3.0], [1.0, 1.0, 0.0, 0.0]])
    z = np.array([[0.5, 0, 0, 0, 0], [0, 0, 2.0, -1.0, 0]])
    r = reconstruction_metrics(x, xh, z)
    # variant B: mean (x_hat - x)^2 / mean x^2, per sample then mean
    b = [(1 / 4) / (30 / 4), (2 / 4) / (4 / 4)]
    assert r.fvu == pytest.approx(np.mean(b))
    # variant A: Var(x - x_hat) / Var(x) over the 4 dims of each sample
    a = [np.var([0, 0, 0, 1]) / np.var([1, 2, 3, 4]), np.var([1, -1, 0, 0]) / np.var([2, 0, 0, 0])]
    assert r.fvu_msae == pytest.approx(np.mean(a))
    assert r.nmae == pytest.approx(np.mean([(1 / 4) / (10 / 4), (2 / 4) / (2 / 4)]))
    cos = [26 / (np.sqrt(30) * np.sqrt(23)), 2 / (2 * np.sqrt(2))]
    assert r.recon_cosine == pytest.approx(np.mean(cos))
    assert r.sae_l0 == pytest.approx(1.5)
    assert r.sae_frac_zero == pytest.approx(1 - 1.5 / 5)
    assert r.dead_latents_pct == pytest.approx(100 * 2 / 5)  # latents 1 and 4 never fire


def test_perfect_reconstruction_and_zero_denominators():
    x = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, -2.0, 0.5]])
    r = reconstruction_metrics(x, x.copy(), np.ones((3, 2)))
    assert r.fvu == pytest.approx(0.0) and r.nmae == pytest.approx(0.0)
    assert r.recon_cosine == pytest.approx(1.0)
    # constant row 0 has Var = 0 and row 1 is all zero: both skipped for variant A
    assert r.fvu_msae == pytest.approx(0.0)
    assert reconstruction_metrics(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2))).fvu is None


def test_merge_equals_one_pass():
    rng = np.random.default_rng(0)
    x, xh = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    z = rng.random((40, 9)) * (rng.random((40, 9)) < 0.3)
    one = reconstruction_metrics(x, xh, z)
    import torch

    a, b = ReconstructionAccumulator(9, 6), ReconstructionAccumulator(9, 6)
    a.update(torch.tensor(x[:15]), torch.tensor(xh[:15]), to_entries(z[:15], "z", 9))
    b.update(torch.tensor(x[15:]), torch.tensor(xh[15:]), to_entries(z[15:], "z", 9))
    a.merge(b)
    two = a.result()
    for k in ("fvu", "fvu_msae", "nmae", "recon_cosine", "sae_l0", "sae_frac_zero", "dead_latents_pct"):
        assert getattr(two, k) == pytest.approx(getattr(one, k), abs=1e-12)
