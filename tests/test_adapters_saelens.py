"""SAELens folders (cfg.json + sae_weights.safetensors) on a tiny open_clip base: activations
match an independent re-implementation of SAELens' encoder math to 1e-5."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from test_adapters_support import (
    EMBED,
    WIDTH,
    base_spec,
    images,
    pool,
    rand,
    site_input,
    write_json,
)

from interpbench.adapters import load_representation
from interpbench.adapters.sae_formats import load_sae
from interpbench.adapters.sae_formats._common import parse_hook
from interpbench.errors import ConfigError, CorruptFileError

N = 96


def write_saelens(folder, d, arch="standard", norm="none", hook_name="blocks.1.hook_resid_post", k=5,
                  rescale=False, apply_b_dec=True, seed=0, pre6=False):
    t = {"W_enc": rand(d, N, seed=seed, scale=0.3), "b_enc": rand(N, seed=seed + 1),
         "W_dec": rand(N, d, seed=seed + 2, scale=0.3), "b_dec": rand(d, seed=seed + 3)}
    if arch == "jumprelu":
        t["threshold"] = rand(N, seed=seed + 4).abs()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "sae_weights.safetensors"))
    if pre6:  # SAELens < 6: hook_point, activation_fn_str, bool normalisation, defaults for the rest
        cfg = {"d_in": d, "d_sae": N, "hook_point": hook_name, "activation_fn_str": "topk" if arch == "topk" else "relu",
               "activation_fn_kwargs": {"k": k} if arch == "topk" else {}, "normalize_activations": False,
               "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"}
    else:
        cfg = {"d_in": d, "d_sae": N, "architecture": arch, "apply_b_dec_to_input": apply_b_dec,
               "normalize_activations": norm, "dtype": "float32", "device": "cpu",
               "metadata": {"hook_name": hook_name, "model_name": "tiny", "sae_lens_version": "6.21.0"}}
        if arch == "topk":
            cfg.update(k=k, rescale_acts_by_decoder_norm=rescale)
    write_json(folder / "cfg.json", cfg)
    return t


def saelens_encode(t, x, arch, norm, k=5, rescale=False, apply_b_dec=True):
    """SAELens' encode, written out independently."""
    if norm == "constant_norm_rescale":
        x = x * (x.shape[-1] ** 0.5) / x.norm(dim=-1, keepdim=True)
    elif norm == "layer_norm":
        mu = x.mean(-1, keepdim=True)
        x = (x - mu) / ((x - mu).std(-1, keepdim=True) + 1e-5)
    if apply_b_dec:
        x = x - t["b_dec"]
    pre = x @ t["W_enc"] + t["b_enc"]
    if arch == "standard":
        return torch.relu(pre)
    if arch == "jumprelu":
        return torch.relu(pre) * (pre > t["threshold"])
    if rescale:
        pre = pre * t["W_dec"].norm(dim=-1)
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))


CASES = [  # (arch, normalize_activations, hook, rescale, apply_b_dec)
    ("standard", "none", "resid_post:1:all", False, True),
    ("standard", "expected_average_only_in", "resid_post:2:cls", False, False),
    ("topk", "constant_norm_rescale", "resid_post:0:patch", False, True),
    ("topk", "layer_norm", "resid_post:3:cls", True, True),
    ("jumprelu", "layer_norm", "mlp_out:1:all", False, True),
    ("jumprelu", "none", "image_embed", False, True),
]


@pytest.mark.parametrize("arch,norm,hook,rescale,apply_b_dec", CASES)
def test_saelens_matches_reference_math(base, tmp_path, arch, norm, hook, rescale, apply_b_dec):
    folder, model = base
    d = EMBED if hook == "image_embed" else WIDTH
    name = {"image_embed": None, "resid_post": "blocks.{}.hook_resid_post", "mlp_out": "blocks.{}.hook_mlp_out"}
    site = hook.split(":")[0]
    hook_name = name[site].format(hook.split(":")[1]) if name[site] else "final_embedding"
    t = write_saelens(tmp_path / "sae", d, arch, norm, hook_name, rescale=rescale, apply_b_dec=apply_b_dec)
    opts = {} if site != "image_embed" and hook.endswith(":all") else {"hook": hook}
    sae = load_sae("saelens", str(tmp_path / "sae"), **opts)
    x = site_input(model, images(), hook)
    want = saelens_encode(t, x, arch, norm, rescale=rescale, apply_b_dec=apply_b_dec)
    torch.testing.assert_close(sae.encode(x), want, atol=1e-5, rtol=1e-5)
    assert sae.n_latents == N and sae.settings.hook == parse_hook(hook)


def test_saelens_end_to_end_through_spec(base, tmp_path):
    """The spec path: base model, hook read, per-token codes max-pooled into image features."""
    folder, model = base
    t = write_saelens(tmp_path / "sae", WIDTH, "topk", "layer_norm", "blocks.3.hook_resid_post", rescale=True)
    rep = load_representation(f"sae:saelens:{tmp_path / 'sae'}@{base_spec(folder)}")
    imgs = images()
    want = saelens_encode(t, site_input(model, imgs, "resid_post:3:all"), "topk", "layer_norm", rescale=True)
    torch.testing.assert_close(rep.encode_image_features(imgs), pool(want), atol=1e-5, rtol=1e-5)
    assert rep.meta.extra["token_pooling"] == "max" and not rep.meta.has_text


def test_saelens_reconstruction_undoes_layer_norm(base, tmp_path):
    folder, model = base
    t = write_saelens(tmp_path / "sae", WIDTH, "standard", "layer_norm", "blocks.2.hook_resid_post")
    rep = load_representation(f"sae:saelens:{tmp_path / 'sae'}?tokens=cls@{base_spec(folder)}")
    imgs = images()
    x = site_input(model, imgs, "resid_post:2:cls")
    z = saelens_encode(t, x, "standard", "layer_norm")
    mu = x.mean(-1, keepdim=True)
    sd = (x - mu).std(-1, keepdim=True) + 1e-5
    want = (z @ t["W_dec"] + t["b_dec"]) * sd + mu
    torch.testing.assert_close(rep.sae_outputs(imgs)["sae_recon"], want, atol=1e-4, rtol=1e-4)


def test_pre_6_config_uses_saelens_defaults(base, tmp_path):
    folder, model = base
    t = write_saelens(tmp_path / "sae", WIDTH, "topk", hook_name="blocks.1.hook_resid_post", pre6=True)
    rep = load_representation(f"sae:saelens:{tmp_path / 'sae'}?tokens=cls@{base_spec(folder)}")
    imgs = images()
    want = saelens_encode(t, site_input(model, imgs, "resid_post:1:cls"), "topk", "none", apply_b_dec=True)
    torch.testing.assert_close(rep.encode_image_features(imgs), want, atol=1e-5, rtol=1e-5)
    assert rep.sae.settings.base_model == "openclip:hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"


def test_missing_key_wrong_shape_and_truncation(base, tmp_path):
    folder, _ = base
    spec = f"sae:saelens:{tmp_path / 'sae'}@{base_spec(folder)}"
    write_saelens(tmp_path / "sae", WIDTH)
    cfg = (tmp_path / "sae" / "cfg.json").read_text()
    (tmp_path / "sae" / "cfg.json").write_text(cfg.replace('"d_sae": 96, ', ""))
    with pytest.raises(ConfigError, match=r"cfg.json: missing required key 'd_sae'"):
        load_representation(spec)
    (tmp_path / "sae" / "cfg.json").write_text(cfg.replace('"d_sae": 96', '"d_sae": 97'))
    with pytest.raises(CorruptFileError, match=r"sae_weights.safetensors: tensor 'W_enc' has shape \(128, 96\), "
                                               r"expected \(128, 97\)"):
        load_representation(spec)
    (tmp_path / "sae" / "cfg.json").write_text(cfg)
    w = tmp_path / "sae" / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:-40])
    with pytest.raises(CorruptFileError, match="sae_weights.safetensors.*truncated"):
        load_representation(spec)


def test_gated_is_refused_clearly(base, tmp_path):
    folder, _ = base
    write_saelens(tmp_path / "sae", WIDTH, "gated")
    with pytest.raises(ConfigError, match="gated"):
        load_representation(f"sae:saelens:{tmp_path / 'sae'}@{base_spec(folder)}")
