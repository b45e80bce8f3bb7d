"""An SAE with NaN/inf weights is refused at load, naming the file and the tensor."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_adapters_saelens import write_saelens

from interpbench.adapters import load_representation
from interpbench.adapters.sae_canonical import CanonicalSAE, SAESettings, save_own
from interpbench.adapters.sae_formats import load_sae
from interpbench.errors import NumericalError

D, F = 64, 96  # shapes-vit-tiny's embedding width; 96 latents


def _own_folder(folder, **poison):
    g = torch.Generator().manual_seed(0)
    sae = CanonicalSAE(torch.randn(D, F, generator=g), torch.zeros(F), torch.randn(F, D, generator=g), torch.zeros(D),
                       SAESettings(activation="topk", k=4, base_model="openclip:shapes-vit-tiny/random"))
    save_own(sae, folder)
    weights = load_file(str(folder / "sae.safetensors"))
    for name, fill in poison.items():
        fill(weights[name])
    save_file(weights, str(folder / "sae.safetensors"))  # the file a diverged training run would leave
    return folder


def test_all_nan_decoder_is_refused_at_load_naming_file_and_tensor(tmp_path):
    folder = _own_folder(tmp_path / "sae", W_dec=lambda t: t.fill_(math.nan))
    with pytest.raises(NumericalError) as err:
        load_sae("interpbench", str(folder))
    msg = str(err.value)
    assert msg.startswith(f"{folder / 'sae.safetensors'}: SAE tensor 'W_dec' has {F * D:,} non-finite values")
    assert f"of {F * D:,}, the first at index (0, 0)" in msg
    assert err.value.exit_code == 12
    with pytest.raises(NumericalError, match="'W_dec'"):  # the spec path a user runs: at load, before any image
        load_representation(f"sae:interpbench:{folder}@openclip:shapes-vit-tiny/random")


def test_one_inf_bias_in_a_saelens_file_is_refused(tmp_path):
    t = write_saelens(tmp_path / "sae", D, hook_name="blocks.1.hook_resid_post")
    t["b_enc"][7] = math.inf
    save_file(t, str(tmp_path / "sae" / "sae_weights.safetensors"))
    with pytest.raises(NumericalError, match=r"sae_weights\.safetensors: SAE tensor 'b_enc' has 1 non-finite "
                                             r"values \(NaN or inf\) of 96, the first at index \(7,\)"):
        load_sae("saelens", str(tmp_path / "sae"))


def test_finite_weights_still_load(tmp_path):
    sae = load_sae("interpbench", str(_own_folder(tmp_path / "ok")))
    assert sae.n_latents == F and torch.isfinite(sae.W_dec).all()
