"""sparsify, MSAE, Prisma, saev and overcomplete checkpoints, written here in each library's
on-disk layout with random weights, loaded through the adapters, and compared with an
independent re-implementation of that library's encoder math (1e-5)."""

from __future__ import annotations

import io
import json

import numpy as np
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
from interpbench.errors import ConfigError, CorruptFileError

N = 80


def close(a, b):
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def topk(pre, k, relu=True):
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals) if relu else vals)


# ---------------------------------------------------------------- sparsify
def test_sparsify_bf16_hookpoint_folder(base, tmp_path):
    folder, model = base
    d, k = WIDTH, 6
    hp = tmp_path / "ckpt" / "visual.transformer.resblocks.2"
    t = {"encoder.weight": rand(N, d, seed=1, scale=0.3).bfloat16(), "encoder.bias": rand(N, seed=2).bfloat16(),
         "W_dec": rand(N, d, seed=3).bfloat16(), "b_dec": rand(d, seed=4).bfloat16()}
    hp.mkdir(parents=True)
    save_file(t, str(hp / "sae.safetensors"))
    write_json(hp / "cfg.json", {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
                                 "num_latents": N, "k": k, "multi_topk": False, "skip_connection": False,
                                 "transcode": False, "d_in": d})
    rep = load_representation(f"sae:sparsify:{tmp_path / 'ckpt'}?hookpoint=visual.transformer.resblocks.2"
                              f"@{base_spec(folder)}")
    imgs = images()
    x = site_input(model, imgs, "resid_post:2:all")
    f = {n: v.float() for n, v in t.items()}
    pre = torch.relu((x - f["b_dec"]) @ f["encoder.weight"].T + f["encoder.bias"])
    close(rep.encode_image_features(imgs), pool(topk(pre, k)))
    assert rep.sae.settings.hook.layer == 2 and rep.sae.settings.hook.tokens == "all"


def test_sparsify_transcoder_refused(tmp_path):
    write_json(tmp_path / "cfg.json", {"activation": "topk", "k": 4, "num_latents": 8, "d_in": 4, "transcode": True})
    save_file({"x": torch.zeros(1)}, str(tmp_path / "sae.safetensors"))
    with pytest.raises(ConfigError, match="transcode"):
        load_sae("sparsify", str(tmp_path), hook="image_embed")


# ---------------------------------------------------------------- MSAE
MSAE_NAME = f"{N}_{EMBED}_TopKReLU_8_RW_False_False_0.0_cc3m_ViT-L~14_train_image_100_{EMBED}.pth"


def write_msae(path, d=EMBED, n=N):
    sd = {"pre_bias": rand(d, seed=1), "encoder": rand(d, n, seed=2, scale=0.3), "latent_bias": rand(n, seed=3),
          "decoder": rand(n, d, seed=4), "latents_activation_frequency": torch.zeros(n, dtype=torch.int64)}
    obj = {"model": sd, "mean_center": rand(d, seed=5), "scaling_factor": 1.7, "target_norm": np.float64(d) ** 0.5}
    torch.save(obj, path)
    return obj


def test_msae_topk_and_relu_latents(base, tmp_path):
    folder, model = base
    obj = write_msae(tmp_path / MSAE_NAME)
    imgs = images()
    e = model.encode_image(imgs)
    sd = obj["model"]
    pre = ((e - obj["mean_center"]) * obj["scaling_factor"] - sd["pre_bias"]) @ sd["encoder"] + sd["latent_bias"]
    rep = load_representation(f"sae:msae:{tmp_path / MSAE_NAME}@{base_spec(folder)}")
    close(rep.encode_image_features(imgs), topk(pre, 8))
    close(rep.encode_text_features(["a red square"]).shape and rep.encode_text_features(["a red square"]),
          topk(((model.encode_text(rep.base.tokenizer(["a red square"])) - obj["mean_center"]) * 1.7
                - sd["pre_bias"]) @ sd["encoder"] + sd["latent_bias"], 8))
    full = load_sae("msae", str(tmp_path / MSAE_NAME), latents="relu")
    close(full.encode(e), torch.relu(pre))
    # MSAE's postprocess: decoded / scaling_factor + mean_center
    z = topk(pre, 8)
    close(rep.sae.decode(z), (z @ sd["decoder"] + sd["pre_bias"]) / 1.7 + obj["mean_center"])


def test_msae_bad_file_name_and_missing_entry(tmp_path):
    torch.save({"model": {}}, tmp_path / "my_sae.pth")
    with pytest.raises(ConfigError, match=r"my_sae.pth: not an MSAE file name; expected \{n_latents\}"):
        load_sae("msae", str(tmp_path / "my_sae.pth"))
    obj = write_msae(tmp_path / MSAE_NAME)
    del obj["scaling_factor"]
    torch.save(obj, tmp_path / MSAE_NAME)
    with pytest.raises(CorruptFileError, match="scaling_factor"):
        load_sae("msae", str(tmp_path / MSAE_NAME))


def test_msae_wrong_shape_names_tensor(tmp_path):
    name = MSAE_NAME.replace(f"{N}_{EMBED}_", f"{N}_{EMBED + 1}_")
    write_msae(tmp_path / name)
    with pytest.raises(CorruptFileError, match=rf"tensor 'encoder' has shape \({EMBED}, {N}\), expected \({EMBED + 1}, {N}\)"):
        load_sae("msae", str(tmp_path / name))


# ---------------------------------------------------------------- Prisma
def write_prisma(folder, cfg, d=WIDTH, expansion=2, legacy=False):
    n = d * expansion
    sd = {"W_enc": rand(d, n, seed=1, scale=0.3), "b_enc": rand(n, seed=2), "W_dec": rand(n, d, seed=3),
          "b_dec": rand(d, seed=4)}
    folder.mkdir(parents=True, exist_ok=True)
    if legacy:
        torch.save({"cfg": cfg, "state_dict": sd}, folder / "out.pt")
    else:
        torch.save(sd, folder / "n_images_2600058.pt")
        write_json(folder / "config.json", cfg)
    return sd


def prisma_encode(sd, x, norm, k=None):
    if norm == "layer_norm":
        mu = x.mean(-1, keepdim=True)
        x = (x - mu) / ((x - mu).std(-1, keepdim=True) + 1e-5)
    pre = (x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"]
    return topk(pre, k) if k else torch.relu(pre)


def test_prisma_missing_normalisation_defaults_to_layer_norm(base, tmp_path):
    folder, model = base
    cfg = {"d_in": WIDTH, "expansion_factor": 2, "hook_point_layer": 1, "layer_subtype": "hook_resid_post",
           "activation_fn_str": "relu", "cls_token_only": True, "model_name": "open-clip:laion/x"}
    sd = write_prisma(tmp_path / "p", cfg)
    rep = load_representation(f"sae:prisma:{tmp_path / 'p' / 'n_images_2600058.pt'}@{base_spec(folder)}")
    imgs = images()
    close(rep.encode_image_features(imgs), prisma_encode(sd, site_input(model, imgs, "resid_post:1:cls"), "layer_norm"))
    assert "normalize_activations" in rep.sae.provenance["defaults_applied"]
    assert rep.sae.settings.hook.tokens == "cls" and rep.sae.settings.input_norm == "layer_norm"


def test_prisma_topk_patches_no_norm_from_folder(base, tmp_path):
    folder, model = base
    cfg = {"d_in": WIDTH, "expansion_factor": 2, "hook_point_layer": 3, "layer_subtype": "hook_mlp_out",
           "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 7}, "cls_token_only": False,
           "use_patches_only": True, "normalize_activations": "none", "architecture": "standard"}
    sd = write_prisma(tmp_path / "p", cfg)
    sae = load_sae("prisma", str(tmp_path / "p"))
    x = site_input(model, images(), "mlp_out:3:patch")
    close(sae.encode(x), prisma_encode(sd, x, "none", k=7))
    assert (sae.settings.hook.site, sae.settings.hook.layer, sae.settings.hook.tokens) == ("mlp_out", 3, "patch")


def test_patchsae_legacy_single_file(base, tmp_path):
    _folder, model = base
    cfg = {"d_in": WIDTH, "activation_fn_str": "relu", "normalize_activations": "none"}  # no expansion_factor
    sd = write_prisma(tmp_path / "p", cfg, legacy=True)
    with pytest.raises(CorruptFileError, match=r"out.pt: tensor 'W_enc' has shape \(128, 256\), expected \(128, 2048\)"):
        load_sae("patchsae", str(tmp_path / "p" / "out.pt"), hook="resid_post:2:all")  # Prisma's default 16
    sae = load_sae("patchsae", str(tmp_path / "p" / "out.pt"), hook="resid_post:2:all", expansion_factor="2")
    x = site_input(model, images(), "resid_post:2:all")
    close(sae.encode(x), prisma_encode(sd, x, "none"))


def test_prisma_without_config_is_clear(tmp_path):
    (tmp_path / "p").mkdir()
    torch.save({"W_enc": torch.zeros(2, 4)}, tmp_path / "p" / "w.pt")
    with pytest.raises(ConfigError, match="no config.json next to the weights"):
        load_sae("prisma", str(tmp_path / "p" / "w.pt"))


# ---------------------------------------------------------------- saev
def write_saev(path, header, d=WIDTH, n=N):
    sd = {"W_enc": rand(d, n, seed=1, scale=0.3), "b_enc": rand(n, seed=2), "W_dec": rand(n, d, seed=3),
          "b_dec": rand(d, seed=4)}
    buf = io.BytesIO()
    torch.save(sd, buf)
    path.write_bytes((json.dumps(header) + "\n").encode() + buf.getvalue())
    return sd


def test_saev_schema2_topk_without_bdec(base, tmp_path):
    folder, model = base
    header = {"schema": 2, "cfg": {"d_vit": WIDTH, "exp_factor": N // WIDTH or 1, "seed": 0,
                                   "activation": {"cls": "TopK", "params": {"top_k": 9}}}, "commit": "x", "lib": "1"}
    header["cfg"].pop("exp_factor")
    sd = write_saev(tmp_path / "sae.pt", header)
    rep = load_representation(f"sae:saev:{tmp_path / 'sae.pt'}?hook=resid_post:2:patch@{base_spec(folder)}")
    imgs = images()
    x = site_input(model, imgs, "resid_post:2:patch")
    close(rep.encode_image_features(imgs), pool(topk(x @ sd["W_enc"] + sd["b_enc"], 9, relu=False)))


def test_saev_preschema_relu_and_missing_hook(base, tmp_path):
    _folder, model = base
    sd = write_saev(tmp_path / "sae.pt", {"d_vit": WIDTH, "exp_factor": 1}, n=WIDTH)
    sae = load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:0:cls")
    x = site_input(model, images(), "resid_post:0:cls")
    close(sae.encode(x), torch.relu(x @ sd["W_enc"] + sd["b_enc"]))
    with pytest.raises(ConfigError, match=r"does not record where the SAE reads.*\?hook="):
        load_sae("saev", str(tmp_path / "sae.pt"))


def _saev_act(cls, **params):
    """saev's own serialisation of an activation config (nn.modeling._serialize_dataclass)."""
    key = {"Relu": "relu", "TopK": "top-k", "BatchTopK": "batch-top-k"}.get(cls, cls)
    return {"cls": cls, "params": {"key": key, **params}}


@pytest.mark.parametrize("value", ["topk", "TopK", "gelu", {"cls": "Gelu", "params": {}}, {"cls": "topk"}, None])
def test_saev_activation_not_written_by_saev_is_refused(tmp_path, value):
    """A string (or unknown class, or a missing field) used to be read as ReLU."""
    cfg = {"d_model": WIDTH, "d_sae": N}
    if value is not None:
        cfg["activation"] = value
    write_saev(tmp_path / "sae.pt", {"schema": 5, "cfg": cfg, "commit": "x", "lib": "1.0"})
    with pytest.raises(ConfigError, match=r"sae\.pt: header field cfg\.activation.*saev"):
        load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:0:cls")


def test_saev_unknown_schema_and_schema1_without_activation_refused(tmp_path):
    write_saev(tmp_path / "sae.pt", {"schema": 6, "cfg": {"d_model": WIDTH}})
    with pytest.raises(ConfigError, match="unknown saev header schema 6"):
        load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:0:cls")
    write_saev(tmp_path / "sae.pt", {"schema": 1, "cls": "SparseAutoencoderConfig", "cfg": {"d_vit": WIDTH}})
    with pytest.raises(ConfigError, match=r"cfg\.activation is None"):
        load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:0:cls")


@pytest.mark.parametrize("header,k", [
    ({"schema": 1, "cls": "TopK", "cfg": {"d_vit": WIDTH, "exp_factor": 1, "top_k": 7, "seed": 0}}, 7),
    ({"schema": 1, "cls": "BatchTopK", "cfg": {"d_vit": WIDTH, "exp_factor": 1}}, 32),  # saev's default k
    ({"schema": 1, "cls": "SparseAutoencoderConfig", "cfg": {"d_vit": WIDTH, "exp_factor": 1,
                                                              "activation": _saev_act("TopK", top_k=5)}}, 5),
    ({"schema": 3, "cfg": {"d_vit": WIDTH, "exp_factor": 1, "activation": _saev_act("TopK", top_k=9)}}, 9),
    ({"schema": 4, "cfg": {"d_model": WIDTH, "d_sae": WIDTH, "activation": _saev_act("BatchTopK", top_k=6)}}, 6),
])
def test_saev_topk_forms(base, tmp_path, header, k):
    """Every TopK form saev wrote: per-sample top-k of the pre-activations, signs kept, no b_dec."""
    _folder, model = base
    sd = write_saev(tmp_path / "sae.pt", header, n=WIDTH)
    sae = load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:1:cls")
    x = site_input(model, images(), "resid_post:1:cls")
    close(sae.encode(x), topk(x @ sd["W_enc"] + sd["b_enc"], k, relu=False))


@pytest.mark.parametrize("theta", [0.05, 0.0])
def test_saev_schema5_batchtopk_uses_its_inference_threshold(base, tmp_path, theta):
    """saev >= Nov 2025 saves BatchTopK's running threshold θ as `activation.threshold`; in eval
    mode it keeps x where x > θ (plain ReLU while θ <= 0), not a per-sample top-k."""
    _folder, model = base
    header = {"schema": 5, "cfg": {"d_model": WIDTH, "d_sae": N, "activation": _saev_act(
        "BatchTopK", top_k=4, sparsity={"cls": "NoSparsity", "params": {"key": "no-sparsity"}}, momentum=0.1,
        aux={"cls": "AuxK", "params": {"key": "auxk", "k_aux": 512, "alpha": 1 / 32}}),
        "reinit_blend": 0.8, "reinit_enc_dec_tranpose": True, "remove_parallel_grads": True,
        "normalize_w_dec": True}, "commit": "3d73f1f", "lib": "1.0.0"}
    sd = {"W_dec": rand(N, WIDTH, seed=3), "b_dec": rand(WIDTH, seed=4), "W_enc": rand(WIDTH, N, seed=1, scale=0.3),
          "b_enc": rand(N, seed=2), "activation.threshold": torch.tensor(theta)}
    buf = io.BytesIO()
    torch.save(sd, buf)
    (tmp_path / "sae.pt").write_bytes((json.dumps(header) + "\n").encode() + buf.getvalue())
    sae = load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:1:cls")
    x = site_input(model, images(), "resid_post:1:cls")
    pre = x @ sd["W_enc"] + sd["b_enc"]
    want = torch.where(pre > theta, pre, torch.zeros_like(pre))
    assert int((want > 0).sum(1).min()) > 4  # not what a top-4 would give
    close(sae.encode(x), want)
    sd["extra"] = torch.zeros(1)
    torch.save(sd, buf := io.BytesIO())
    (tmp_path / "sae.pt").write_bytes((json.dumps(header) + "\n").encode() + buf.getvalue())
    with pytest.raises(ConfigError, match=r"\['extra'\] are not in any saev SAE"):
        load_sae("saev", str(tmp_path / "sae.pt"), hook="resid_post:1:cls")


def test_saev_bad_header(tmp_path):
    (tmp_path / "sae.pt").write_bytes(b"\x80\x02not json\n" + b"\x00" * 10)
    with pytest.raises(CorruptFileError, match="first line is not a JSON header"):
        load_sae("saev", str(tmp_path / "sae.pt"), hook="image_embed")


# ---------------------------------------------------------------- overcomplete
def write_overcomplete(path, d=EMBED, c=N):
    sd = {"encoder.final_block.0.weight": rand(c, d, seed=1, scale=0.3), "encoder.final_block.0.bias": rand(c, seed=2),
          "dictionary._weights": rand(c, d, seed=3), "dictionary.multiplier": torch.tensor(0.3)}
    torch.save(sd, path)
    return sd


def test_overcomplete_dictionary_and_topk(base, tmp_path):
    folder, model = base
    sd = write_overcomplete(tmp_path / "sae.pt")
    rep = load_representation(f"sae:overcomplete:{tmp_path / 'sae.pt'}?hook=image_embed&top_k=5@{base_spec(folder)}")
    imgs = images()
    e = model.encode_image(imgs)
    pre = e @ sd["encoder.final_block.0.weight"].T + sd["encoder.final_block.0.bias"]
    z = topk(pre, 5)
    close(rep.encode_image_features(imgs), z)
    w = sd["dictionary._weights"]
    D = w / w.norm(dim=1, keepdim=True) * torch.exp(torch.tensor(0.3))
    close(rep.sae.decode(z), z @ D)  # no decoder bias
    relu_sae = load_sae("overcomplete", str(tmp_path / "sae.pt"), hook="image_embed", activation="relu")
    close(relu_sae.encode(e), torch.relu(pre))


def test_overcomplete_topk_file_without_top_k_is_refused(base, tmp_path):
    """SAE and TopKSAE state dicts are identical (top_k is a plain attribute): reading a TopKSAE
    as ReLU gave every positive latent (236-271 of 16 in a real file). The loader must ask."""
    _folder, model = base
    sd = write_overcomplete(tmp_path / "sae.pt")
    path = str(tmp_path / "sae.pt")
    with pytest.raises(ConfigError, match=r"sae\.pt.*does not record.*\?top_k=K.*\?activation=relu"):
        load_sae("overcomplete", path, hook="image_embed")
    with pytest.raises(ConfigError, match="activation=topk needs the number of active latents"):
        load_sae("overcomplete", path, hook="image_embed", activation="topk")
    with pytest.raises(ConfigError, match="contradict"):
        load_sae("overcomplete", path, hook="image_embed", activation="relu", top_k=5)
    with pytest.raises(ConfigError, match="must be relu or topk"):
        load_sae("overcomplete", path, hook="image_embed", activation="gelu")
    # activation=topk with top_k is the TopKSAE: top-k of relu(pre), kept as they are (overcomplete's encode)
    e = model.encode_image(images())
    codes = torch.relu(e @ sd["encoder.final_block.0.weight"].T + sd["encoder.final_block.0.bias"])
    vals, idx = codes.topk(7, dim=-1)
    want = torch.zeros_like(codes).scatter(-1, idx, vals)
    close(load_sae("overcomplete", path, hook="image_embed", activation="topk", top_k=7).encode(e), want)
    assert int((want > 0).sum(1).max()) <= 7


def test_overcomplete_jumpsae_read_from_its_thresholds(base, tmp_path):
    """A JumpSAE records itself: a top-level `thresholds` [C] holding log thresholds; codes are
    relu(pre) with entries below exp(thresholds) set to 0 (overcomplete's JumpReLU forward)."""
    _folder, model = base
    sd = write_overcomplete(tmp_path / "sae.pt")
    sd["thresholds"] = rand(N, seed=5, scale=0.5) - 2.0
    torch.save(sd, tmp_path / "sae.pt")
    sae = load_sae("overcomplete", str(tmp_path / "sae.pt"), hook="image_embed")
    e = model.encode_image(images())
    codes = torch.relu(e @ sd["encoder.final_block.0.weight"].T + sd["encoder.final_block.0.bias"])
    want = codes.clone()
    want[codes < torch.exp(sd["thresholds"])] = 0
    assert 0 < int((want > 0).sum()) < int((codes > 0).sum())  # the thresholds bite
    close(sae.encode(e), want)
    with pytest.raises(ConfigError, match="is a JumpSAE"):
        load_sae("overcomplete", str(tmp_path / "sae.pt"), hook="image_embed", top_k=5)


def test_overcomplete_other_sae_classes_refused(tmp_path):
    sd = write_overcomplete(tmp_path / "sae.pt")
    sd["Q"] = torch.linspace(0, 1, 4)  # QSAE's quantisation levels
    torch.save(sd, tmp_path / "sae.pt")
    with pytest.raises(ConfigError, match=r"\['Q'\].*cannot be read as a linear SAE"):
        load_sae("overcomplete", str(tmp_path / "sae.pt"), hook="image_embed", activation="relu")


def test_overcomplete_nonlinear_encoder_refused(tmp_path):
    sd = write_overcomplete(tmp_path / "sae.pt")
    sd["encoder.final_block.1.running_mean"] = torch.zeros(N)
    torch.save(sd, tmp_path / "sae.pt")
    with pytest.raises(ConfigError, match="only overcomplete's linear encoder"):
        load_sae("overcomplete", str(tmp_path / "sae.pt"), hook="image_embed")
