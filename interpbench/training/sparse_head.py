"""A natively sparse CLIP head on fixed towers: Sparse CLIP's recipe, trained on cached trunk features.

Sparse CLIP (Qin et al. 2026, Sec. 2) changes two things in CLIP: a ReLU after each final
projection and a much wider projection, with the logit scale capped (50 "Sparse", 40
"Sparse+"). Training whole towers from scratch is out of reach on 2 CPU cores, so the reference
sparse model keeps shapes:dense's image and text towers fixed and trains only the two widened
projections and the logit scale with the plain CLIP loss. The towers' pooled outputs (the
inputs of the projections) are computed once and cached, so a step costs two [B, width] x
[width, W] products: thousands of steps take seconds, which is what makes the paper's
"sparsity forms gradually" regime and a full ablation table affordable here.

An optional explicit sparsity penalty (`l1`: the L1 norm of the unit-normalised embedding,
i.e. L1/L2, which is scale-free) is the "Sparse+"-style variant; the default recipe has none.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch

from interpbench.ioutils import atomic_write_text, atomic_writer
from interpbench.training.clip import lr_at


@dataclass(frozen=True)
class SparseHeadTrainCfg:
    expansion: int = 64  # embedding width = expansion x the dense embedding width (64 on Shapes)
    logit_scale_cap: float = 50.0  # Sparse CLIP: 50 (Sparse), 40 (Sparse+); open_clip 100
    l1: float = 0.0  # weight of the L1/L2 penalty on the unit embeddings (0: the paper's plain recipe)
    steps: int = 6000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 200
    seed: int = 0
    train_images: int = 12_000  # cached trunk features of this many training scenes (3 captions each)
    p_single: float = 0.8  # share of one-object training scenes, as the dense model's recipe
    checkpoints: tuple[int, ...] = field(default=())  # steps at which a model folder is also saved

    def __post_init__(self):
        if self.expansion < 1 or self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.l1 < 0:
            raise ValueError("SparseHeadTrainCfg needs expansion >= 1, steps >= 1, batch_size >= 2, lr > 0, l1 >= 0")
        if not 1.0 < self.logit_scale_cap <= 1000.0:
            raise ValueError(f"SparseHeadTrainCfg.logit_scale_cap must be in (1, 1000], got {self.logit_scale_cap}")


@contextmanager
def _without_projections(clip):
    """open_clip returns the pooled tower outputs when the final projections are None."""
    vproj, tproj = clip.visual.proj, clip.text_projection
    clip.visual.proj, clip.text_projection = None, None
    try:
        yield
    finally:
        clip.visual.proj, clip.text_projection = vproj, tproj


@torch.inference_mode()
def trunk_features(clip, tokenizer, samples, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled image [N, w_img] and caption [N, C, w_txt] outputs of the towers, before the projections."""
    from interpbench.data.torch_datasets import normalise_uint8

    images, texts = [], []
    with _without_projections(clip):
        for i in range(0, len(samples), batch):
            part = samples[i:i + batch]
            pixels = normalise_uint8(np.stack([s.image for s in part]), open_clip.OPENAI_DATASET_MEAN,
                                     open_clip.OPENAI_DATASET_STD)
            images.append(clip.encode_image(pixels).float())
            caps = [c for s in part for c in s.captions]
            texts.append(clip.encode_text(tokenizer(caps)).float().view(len(part), len(part[0].captions), -1))
    return torch.cat(images), torch.cat(texts)


class SparseHead(torch.nn.Module):
    """The two widened projections + the capped logit scale; ReLU after each projection."""

    def __init__(self, w_img: int, w_txt: int, width: int, cap: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # open_clip initialises projections with std = tower width ** -0.5
        self.image_proj = torch.nn.Parameter(torch.randn(w_img, width, generator=g) * w_img ** -0.5)
        self.text_proj = torch.nn.Parameter(torch.randn(w_txt, width, generator=g) * w_txt ** -0.5)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.cap = math.log(cap)

    def forward(self, img, txt):
        return torch.relu(img @ self.image_proj), torch.relu(txt @ self.text_proj)


def train_head(img: torch.Tensor, txt: torch.Tensor, cfg: SparseHeadTrainCfg, width: int, resume: Path | None = None,
               on_checkpoint=None, progress=None, save_every: int = 500) -> tuple[SparseHead, dict]:
    """Train the head on cached trunk features (img [N, wi], txt [N, C, wt]); returns (head, record).

    `resume` is a file that holds the head and optimizer state every `save_every` steps, so an
    interrupted run continues where it stopped (the batch draw is a function of the step)."""
    head = SparseHead(img.shape[1], txt.shape[2], width, cfg.logit_scale_cap, cfg.seed)
    decay = [head.image_proj, head.text_proj]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": [head.logit_scale], "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98),
                            eps=1e-6)
    start, losses = 0, []
    if resume is not None and resume.is_file():
        state = torch.load(resume, weights_only=True)
        if state["cfg"] == json.dumps(asdict(cfg), sort_keys=True):
            head.load_state_dict(state["head"])
            opt.load_state_dict(state["opt"])
            start, losses = int(state["step"]), list(state["losses"])
    n, n_cap = img.shape[0], txt.shape[1]
    labels = torch.arange(cfg.batch_size)
    t0 = time.time()
    for step in range(start, cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        cap_idx = torch.randint(0, n_cap, (cfg.batch_size,), generator=g)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)  # warm-up then cosine, as the towers were trained
        zi, zt = head(img[idx], txt[idx, cap_idx])
        ui, ut = torch.nn.functional.normalize(zi, dim=-1), torch.nn.functional.normalize(zt, dim=-1)
        logits = head.logit_scale.exp() * ui @ ut.T
        loss = (torch.nn.functional.cross_entropy(logits, labels)
                + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
        if cfg.l1:
            loss = loss + cfg.l1 * (ui.sum(1).mean() + ut.sum(1).mean()) / 2  # unit rows: L1 = L1/L2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            head.logit_scale.clamp_(0, head.cap)
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, cfg.steps, losses[-1])
        if on_checkpoint is not None and step + 1 in cfg.checkpoints:
            on_checkpoint(step + 1, head)
        if resume is not None and ((step + 1) % save_every == 0 or step + 1 == cfg.steps):
            with atomic_writer(resume, "wb") as tmp:
                torch.save({"cfg": json.dumps(asdict(cfg), sort_keys=True), "step": step + 1, "losses": losses,
                            "head": head.state_dict(), "opt": opt.state_dict()}, tmp)
    record = {"config": asdict(cfg), "width": width, "wall_time_s": round(time.time() - t0, 1),
              "first_loss": round(float(np.mean(losses[:20])), 4), "final_loss": round(float(np.mean(losses[-50:])), 4),
              "loss_curve": [round(float(np.mean(losses[i:i + 100])), 4) for i in range(0, len(losses), 100)],
              "logit_scale": round(float(head.logit_scale.detach().exp()), 3)}
    return head, record


# ---- model folders ---------------------------------------------------------------------------

SPARSE_ARCH = "shapes-vit-tiny-sparse"


def assemble(base, head: SparseHead, cfg: SparseHeadTrainCfg):
    """A SparseCLIP with `base`'s towers and the head's projections and logit scale (a copy)."""
    import copy

    from interpbench.clipmodels import SparseCLIP, SparseHeadCfg

    clip = copy.deepcopy(base)
    with torch.no_grad():
        clip.visual.proj = torch.nn.Parameter(head.image_proj.detach().clone())
        clip.text_projection = torch.nn.Parameter(head.text_proj.detach().clone())
        clip.logit_scale.copy_(head.logit_scale.detach())
    return SparseCLIP(clip, SparseHeadCfg(logit_scale_cap=cfg.logit_scale_cap)).eval()


def save_sparse(folder: Path, model, width: int, record: dict) -> None:
    """Write the open_clip folder (embedding width in its config) plus sparse_config.json and training.json."""
    from interpbench.clipmodels import model_config, save_model_folder

    model_cfg = {**model_config(SPARSE_ARCH), "embed_dim": width}
    save_model_folder(Path(folder), model, SPARSE_ARCH, sparse=model.cfg, model_cfg=model_cfg)
    atomic_write_text(Path(folder) / "training.json", json.dumps(record, indent=2) + "\n")
