"""The natively sparse head: its loss, sparsity pressure, resume, model folders and ablation table."""

from dataclasses import replace

import pytest
import torch

from interpbench.clipmodels import create_random, load_model_folder, register_configs
from interpbench.training.sparse_head import (
    SparseHeadTrainCfg,
    _without_projections,
    assemble,
    save_sparse,
    train_head,
)


def _pairs(n=512, w=16, c=2, seed=0):
    """Captions are noisy copies of their image's tower output: a learnable pairing."""
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, w, generator=g)
    txt = img[:, None, :] + 0.3 * torch.randn(n, c, w, generator=g)
    return img, txt


CFG = SparseHeadTrainCfg(expansion=4, steps=60, batch_size=64, lr=3e-3, warmup=5, train_images=512)


def test_head_loss_matches_an_independent_clip_loss_and_falls():
    img, txt = _pairs()
    head, rec = train_head(img, txt, CFG, width=64)
    assert rec["final_loss"] < rec["first_loss"] - 0.5
    # the record's loss is open_clip's ClipLoss on unit ReLU codes
    import open_clip

    head.requires_grad_(False)
    with torch.no_grad():
        zi, zt = head(img[:64], txt[:64, 0])
        ui, ut = torch.nn.functional.normalize(zi, dim=-1), torch.nn.functional.normalize(zt, dim=-1)
        ours = torch.nn.functional.cross_entropy(head.logit_scale.exp() * ui @ ut.T, torch.arange(64))
        ref = open_clip.ClipLoss()(ui, ut, head.logit_scale.exp())
    assert float(ref) == pytest.approx((float(ours) + float(torch.nn.functional.cross_entropy(
        head.logit_scale.exp() * ut @ ui.T, torch.arange(64)))) / 2, rel=1e-5)
    assert (zi >= 0).all() and (zt >= 0).all()
    assert float(head.logit_scale.detach().exp()) <= CFG.logit_scale_cap + 1e-4


@pytest.mark.parametrize("l1", [0.0, 0.5])
def test_first_loss_is_the_clip_loss_plus_the_l1_over_l2_penalty(l1):
    """Recomputed independently at initialisation: same seed, same first batch."""
    import open_clip

    from interpbench.training.sparse_head import SparseHead

    img, txt = _pairs()
    cfg = replace(CFG, steps=1, l1=l1)
    _, rec = train_head(img, txt, cfg, width=64)
    head = SparseHead(16, 16, 64, cfg.logit_scale_cap, cfg.seed).requires_grad_(False)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003)
    idx = torch.randint(0, len(img), (cfg.batch_size,), generator=g)
    cap = torch.randint(0, txt.shape[1], (cfg.batch_size,), generator=g)
    zi, zt = torch.relu(img[idx] @ head.image_proj), torch.relu(txt[idx, cap] @ head.text_proj)
    ui, ut = zi / zi.norm(dim=1, keepdim=True), zt / zt.norm(dim=1, keepdim=True)
    expected = open_clip.ClipLoss()(ui, ut, torch.tensor(1 / 0.07)) + l1 * (
        (zi.abs().sum(1) / zi.norm(dim=1)).mean() + (zt.abs().sum(1) / zt.norm(dim=1)).mean()) / 2
    assert rec["first_loss"] == pytest.approx(float(expected), abs=1e-4)


def test_logit_scale_cap_is_enforced():
    img, txt = _pairs()
    head, rec = train_head(img, txt, replace(CFG, logit_scale_cap=5.0, lr=3e-2), width=64)
    assert rec["logit_scale"] <= 5.0 + 1e-4


def test_resume_with_an_identical_config_continues_exactly(tmp_path):
    img, txt = _pairs()
    cfg = replace(CFG, steps=40, batch_size=16)
    reference, _ = train_head(img, txt, cfg, width=32)
    resume = tmp_path / "resume.pt"

    class Stop(Exception):
        pass

    def stop_after_20(step, total, loss):
        if step == 21:
            raise Stop

    with pytest.raises(Stop):
        train_head(img, txt, cfg, width=32, resume=resume, progress=stop_after_20, save_every=10)
    assert int(torch.load(resume, weights_only=True)["step"]) == 20
    resumed, _ = train_head(img, txt, cfg, width=32, resume=resume, save_every=10)
    assert torch.allclose(resumed.image_proj, reference.image_proj, atol=1e-6)
    assert torch.allclose(resumed.text_proj, reference.text_proj, atol=1e-6)


def test_sparse_folder_is_the_base_towers_plus_the_relu_head(tmp_path):
    register_configs()
    base = create_random("shapes-vit-tiny", seed=2).eval()
    w_img, w_txt = base.visual.proj.shape[0], base.text_projection.shape[0]
    img, txt = _pairs(n=64, w=w_img)
    head, rec = train_head(img, txt, replace(CFG, steps=3, expansion=2), width=2 * 64)
    save_sparse(tmp_path / "s", assemble(base, head, CFG), 128, rec)
    model, cfg = load_model_folder(tmp_path / "s")
    assert cfg["model_cfg"]["embed_dim"] == 128 and w_txt == w_img
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad(), _without_projections(base):
        pooled = base.encode_image(images)
        z = model.encode_image(images)
    expected = torch.relu(pooled @ head.image_proj.detach())
    assert z.shape == (3, 128) and (z >= 0).all()
    assert torch.allclose(z, expected, atol=2e-2, rtol=2e-2)  # float16 storage
    assert base.visual.proj is not None  # the context manager restored the projection


def test_ablation_table_renders_every_row_from_its_record():
    from interpbench.leaderboard.ablation import render_ablation

    rows = [{"expansion": e, "width": 64 * e, "inducer": "ReLU", "logit_scale_cap": 50.0, "logit_scale": 25.0, "image_l0": 12.5,
             "image_active_pct": 100 * 12.5 / (64 * e), "text_l0": 10.0, "active_features_pct": 40.0,
             "clarity": 0.5, "clarity_baseline": 0.2, "zeroshot_mean": 0.9, "train_time_s": 30.0} for e in (16, 32)]
    md = render_ablation({"command": "cmd", "seed": 0, "machine": "m", "wall_time_s": 60, "base": "b", "preset": {},
                          "eval": {"split": "eval", "images": 2000, "seed": 0, "judge": "gt", "tau": 0.001,
                                   "n_min": 2}, "rows": rows})
    assert "| 16x | 1,024 | ReLU | 50 | 25.0 | 12.5 | 1.22% |" in md
    assert "| 32x | 2,048 | ReLU | 50 | 25.0 | 12.5 | 0.61% |" in md
