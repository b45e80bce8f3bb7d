"""The project's own SAE format through the full spec path: train_sae output -> load_representation."""

from __future__ import annotations

import pytest
import torch
from test_adapters_support import EMBED, base_model, images, shared_base

from interpbench.adapters import load_representation
from interpbench.adapters.sae_canonical import HookSite
from interpbench.errors import (
    ConfigError,
    CorruptFileError,
    MissingFileError,
    ShapeMismatchError,
    UnknownFormatError,
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from interpbench.training.sae import SAETrainCfg, train_sae

    root = tmp_path_factory.mktemp("own")
    base = shared_base()
    x = torch.randn(64, EMBED, generator=torch.Generator().manual_seed(1))
    train_sae(x, SAETrainCfg(expansion=2, k=4, epochs=1, batch_size=32), hook=HookSite("image_embed"),
              base_model=f"openclip:{base}", out_dir=root / "sae")
    return base, root / "sae"


def test_trained_sae_loads_through_spec(folders):
    base, sae_dir = folders
    rep = load_representation(f"sae:interpbench:{sae_dir}@openclip:local-dir:{base}")
    assert rep.n_features == 2 * EMBED and rep.meta.kind == "sae" and rep.meta.has_text
    imgs = images()
    feats = rep.encode_image_features(imgs)
    # independent: the saved tensors and the TopK recipe, written out here
    from safetensors.torch import load_file

    t = load_file(str(sae_dir / "sae.safetensors"))
    import json

    cfg = json.loads((sae_dir / "cfg.json").read_text())
    e = base_model(base).encode_image(imgs)
    xn = (e - t["input_mean"]) * cfg["input_scale"]
    pre = (xn - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    vals, idx = pre.topk(4, dim=-1)
    want = torch.zeros_like(pre).scatter(-1, idx, vals.clamp_min(0))
    torch.testing.assert_close(feats, want, atol=1e-5, rtol=1e-5)
    assert rep.encode_text_features(["a red circle"]).shape == (1, 2 * EMBED)
    assert len(rep.meta.fingerprint) > 16


def test_wrong_base_width_is_caught_before_compute(folders):
    _base, sae_dir = folders
    with pytest.raises(ShapeMismatchError, match=r"width 64.*width 128"):
        load_representation(f"sae:interpbench:{sae_dir}?hook=resid_post:1:cls@openclip:shapes-vit-tiny/random")


def test_layer_past_last_block(folders):
    _base, sae_dir = folders
    with pytest.raises(ShapeMismatchError, match="4 blocks"):
        load_representation(f"sae:interpbench:{sae_dir}?hook=resid_post:9:cls@openclip:shapes-vit-tiny/random")


def test_errors_name_the_problem(folders, tmp_path):
    _base, sae_dir = folders
    with pytest.raises(UnknownFormatError, match="saelens"):
        load_representation(f"sae:saelense:{sae_dir}@openclip:shapes-vit-tiny/random")
    with pytest.raises(MissingFileError, match="cfg.json"):
        load_representation(f"sae:interpbench:{tmp_path}@openclip:shapes-vit-tiny/random")
    with pytest.raises(ConfigError, match="unknown option"):
        load_representation(f"sae:interpbench:{sae_dir}?kk=3@openclip:shapes-vit-tiny/random")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cfg.json").write_text((sae_dir / "cfg.json").read_text())
    (bad / "sae.safetensors").write_bytes((sae_dir / "sae.safetensors").read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="sae.safetensors.*truncated"):
        load_representation(f"sae:interpbench:{bad}@openclip:shapes-vit-tiny/random")


def test_shapes_sae_resolves_to_own_format(folders, tmp_path, monkeypatch):
    """`shapes:sae` = sae:interpbench:<reference sae>@shapes:dense, on a stand-in reference dir."""
    import shutil

    from interpbench.adapters import openclip_dense

    base, sae_dir = folders
    shutil.copytree(base, tmp_path / "dense")
    shutil.copytree(sae_dir, tmp_path / "sae")
    monkeypatch.setattr(openclip_dense, "REFERENCE_DIR", tmp_path)
    rep = load_representation("shapes:sae")
    assert rep.meta.name == "shapes:sae" and rep.meta.kind == "sae" and rep.base.meta.name == "shapes:dense"
    direct = load_representation(f"sae:interpbench:{sae_dir}@openclip:local-dir:{base}")
    imgs = images()
    torch.testing.assert_close(rep.encode_image_features(imgs), direct.encode_image_features(imgs))
