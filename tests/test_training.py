"""Short training runs lower the loss (real open_clip model, real Shapes data)."""

import numpy as np
import pytest
import torch

from interpbench.adapters.sae_canonical import load_own
from interpbench.clipmodels import load_model_folder
from interpbench.training.clip import ClipTrainCfg, train_clip
from interpbench.training.sae import SAETrainCfg, train_sae


def test_short_clip_training_lowers_loss_and_writes_a_loadable_folder(tmp_path):
    cfg = ClipTrainCfg(steps=30, batch_size=16, warmup=5, lr=1e-3, seed=1)
    out = train_clip(cfg, out_dir=tmp_path / "m", log_every=0)
    losses = out["losses"]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1
    model, cfg_json = load_model_folder(tmp_path / "m")
    assert cfg_json["architecture"] == "shapes-vit-tiny"
    img = torch.randn(2, 3, 64, 64)
    # float16 storage: the loaded model matches the trained one to fp16 precision
    ref = out["model"].encode_image(img)
    got = model.encode_image(img)
    assert torch.allclose(ref, got, atol=5e-2, rtol=5e-2)


def test_sparse_clip_training_outputs_are_nonnegative(tmp_path):
    cfg = ClipTrainCfg(arch="shapes-vit-tiny-sparse", sparse=True, logit_scale_cap=50.0, steps=3, batch_size=8,
                       warmup=1)
    out = train_clip(cfg, out_dir=tmp_path / "s", log_every=0)
    model, _ = load_model_folder(tmp_path / "s")
    z = model.encode_image(torch.randn(4, 3, 64, 64))
    assert z.shape == (4, 2048) and (z >= 0).all() and (z == 0).any()
    assert float(out["model"].clip.logit_scale.exp()) <= 50.0 + 1e-4


def test_sae_training_lowers_loss_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(32, 16, generator=g)
    codes = torch.relu(torch.randn(2000, 32, generator=g)) * (torch.rand(2000, 32, generator=g) < 0.1)
    x = codes @ atoms + 0.5
    out = train_sae(x, SAETrainCfg(expansion=4, k=4, epochs=3, batch_size=64), out_dir=tmp_path / "sae")
    assert out["final_loss"] < out["first_loss"] * 0.8
    sae = load_own(tmp_path / "sae")
    z, x_hat = sae(x[:10])
    assert ((z > 0).sum(1) <= 4).all()
    z_ref, x_ref = out["sae"](x[:10])
    assert torch.allclose(z, z_ref, atol=1e-6) and torch.allclose(x_hat, x_ref, atol=1e-6)


def test_sparse_model_starts_from_dense_towers(tmp_path):
    """copy_towers carries every encoder tensor over and leaves the widened projections new."""
    from interpbench.clipmodels import create_random, save_model_folder
    from interpbench.training.clip import copy_towers

    dense = create_random("shapes-vit-tiny", seed=3)
    save_model_folder(tmp_path / "d", dense, "shapes-vit-tiny", dtype=torch.float32)
    sparse = create_random("shapes-vit-tiny-sparse", seed=4)
    skipped = copy_towers(sparse, tmp_path / "d")
    assert set(skipped) == {"visual.proj", "text_projection", "logit_scale"}
    d, s = dense.state_dict(), sparse.state_dict()
    for k in d:
        if k not in skipped:
            assert torch.equal(d[k], s[k]), k
    assert s["visual.proj"].shape == (128, 2048)


def _visual(model):
    return {k: v.clone() for k, v in model.visual.state_dict().items()}


def test_supervised_phase_learns_concepts_and_leaves_text_tower_alone(tmp_path):
    """The supervised objective trains the image tower only (BCE on concept vectors)."""
    from interpbench.clipmodels import create_random

    cfg = ClipTrainCfg(objective="supervised", steps=40, batch_size=32, warmup=5, lr=1e-3, seed=2)
    out = train_clip(cfg, out_dir=tmp_path / "p", log_every=0)
    # BCE starts near log 2 (random head) and must fall well below it
    assert out["losses"][0] == pytest.approx(np.log(2), abs=0.1)
    assert np.mean(out["losses"][-5:]) < np.log(2) - 0.15
    fresh = create_random("shapes-vit-tiny", seed=2).state_dict()
    trained = out["model"].state_dict()
    assert torch.equal(trained["token_embedding.weight"], fresh["token_embedding.weight"])
    assert not torch.equal(trained["visual.conv1.weight"], fresh["visual.conv1.weight"])
    assert out["train_data"]["targets"] == "concept vectors"


def test_locked_image_tower_does_not_move(tmp_path):
    """lock_image='all' (LiT) keeps every image weight; 'trunk' lets only the projection train."""
    from interpbench.clipmodels import create_random, save_model_folder

    base = create_random("shapes-vit-tiny", seed=5)
    save_model_folder(tmp_path / "b", base, "shapes-vit-tiny", dtype=torch.float32)
    before = _visual(base)
    lit = train_clip(ClipTrainCfg(steps=4, batch_size=8, warmup=1, lock_image="all", init_towers=str(tmp_path / "b"),
                                  init_scope="image"), log_every=0)["model"]
    assert all(torch.equal(before[k], v) for k, v in _visual(lit).items())
    # init_scope="image": the text tower is not copied from the base
    assert not torch.equal(lit.state_dict()["token_embedding.weight"], base.state_dict()["token_embedding.weight"])
    trunk = train_clip(ClipTrainCfg(steps=4, batch_size=8, warmup=1, lock_image="trunk",
                                    init_towers=str(tmp_path / "b")), log_every=0)["model"]
    moved = {k for k, v in _visual(trunk).items() if not torch.equal(before[k], v)}
    assert moved == {"proj"}


def test_spurious_training_draws_the_spurious_variant(tmp_path):
    out = train_clip(ClipTrainCfg(steps=2, batch_size=8, warmup=1, spurious=True), log_every=0)
    assert out["config"]["spurious"] and out["train_data"]["spurious"]


def test_bad_training_config_names_the_field():
    with pytest.raises(ValueError, match="objective"):
        ClipTrainCfg(objective="mse")
    with pytest.raises(ValueError, match="lock_image"):
        ClipTrainCfg(lock_image="text")


def test_spurious_preset_reuses_the_dense_image_tower_and_loads_by_spec(tmp_path, monkeypatch):
    """`train clip spurious` (2 steps here): locked image tower = shipped shapes:dense's, bit for bit
    after the float16 round trip; the folder then loads as `shapes:spurious`."""
    from safetensors.torch import load_file

    import interpbench.adapters.openclip_dense as od
    from interpbench.adapters import load_representation
    from interpbench.clipmodels import OPENCLIP_WEIGHTS
    from interpbench.training.reference import REFERENCE_DIR, build_clip

    folder = build_clip("spurious", tmp_path / "spurious", steps=2)
    card = __import__("json").loads((folder / "card.json").read_text())
    assert card["training"]["config"]["spurious"] and card["training"]["config"]["lock_image"] == "all"
    new, dense = load_file(str(folder / OPENCLIP_WEIGHTS)), load_file(str(REFERENCE_DIR / "dense" / OPENCLIP_WEIGHTS))
    visual = [k for k in dense if k.startswith("visual.")]
    assert visual and all(torch.equal(new[k], dense[k]) for k in visual)
    assert not torch.equal(new["token_embedding.weight"], dense["token_embedding.weight"])
    monkeypatch.setattr(od, "REFERENCE_DIR", tmp_path)
    rep = load_representation("shapes:spurious")
    z = rep.encode_image_features(torch.zeros(2, 3, 64, 64))
    assert z.shape == (2, rep.n_features) and (z >= 0).all()


def test_residual_sae_preset_trains_on_the_last_blocks_class_token(tmp_path, monkeypatch):
    """`train sae --preset sae-resid` on a few images: its inputs are the residual stream after the
    last block at the class token (read here independently, block by block), and its card records
    the eval-split reconstruction."""
    import json

    from test_adapters_support import resid_at

    from interpbench.data.torch_datasets import normalise_uint8
    from interpbench.training import reference

    monkeypatch.setattr(reference, "SAE_TRAIN_IMAGES", 64)
    monkeypatch.setattr(reference, "EVAL_IMAGES", 8)
    out = reference.build_sae(out_dir=tmp_path / "r", preset="sae-resid")
    sae, card = load_own(out), json.loads((out / "card.json").read_text())
    assert (sae.settings.hook.site, sae.settings.hook.layer, sae.settings.hook.tokens) == ("resid_post", 3, "cls")
    assert card["command"] == f"interpbench train sae --preset sae-resid --out {tmp_path / 'r'}"
    assert card["training"]["train_data"]["rows"] == 64 and card["training"]["eval_reconstruction"]["images"] == 8
    model = load_model_folder(reference.REFERENCE_DIR / "dense")[0].eval()
    world = reference._train_world(64, 0)
    imgs = normalise_uint8(np.stack([world[i].image for i in range(64)]), (0.48145466, 0.4578275, 0.40821073),
                           (0.26862954, 0.26130258, 0.27577711))
    x = resid_at(model, imgs, layer=3)[:, 0]
    torch.testing.assert_close(sae.input_mean, x.mean(0), atol=1e-4, rtol=1e-4)  # the trainer saw these rows


def test_unknown_sae_preset_and_reseeding_another_preset_are_clear_errors():
    from typer.testing import CliRunner

    from interpbench.cli.main import app

    out = CliRunner().invoke(app, ["train", "sae", "--preset", "sae-nope"])
    msg = str(out.exception or out.output)
    assert out.exit_code != 0 and "unknown SAE preset 'sae-nope'; expected one of ['sae', 'sae-resid'" in msg
    out = CliRunner().invoke(app, ["train", "sae", "--preset", "sae-resid", "--seeds", "0,1"])
    assert out.exit_code != 0 and "--seeds reseeds shapes:sae's recipe only" in str(out.exception or out.output)
