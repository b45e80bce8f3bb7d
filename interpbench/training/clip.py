"""Train a small open_clip CLIP, dense or natively sparse, on Shapes captions.

The sparse variant is Sparse CLIP's recipe: the same contrastive loss, a ReLU after each
final projection, a widened projection (the architecture config) and a capped logit scale.

Two objectives, used as phases of one curriculum:
- "supervised": the image tower alone, with a linear head, learns the ground-truth concept
  vector (multi-label BCE). A tiny ViT learns shape and position this way in minutes; with
  the contrastive loss from scratch it stayed at chance on both after 1,200 steps, because
  colour, size and background (global image statistics) already lower the loss.
- "contrastive": open_clip's ClipLoss on image-caption pairs. `lock_image` freezes the
  image tower ("all", as in LiT, Zhai et al. 2022) or all of it but the final projection
  ("trunk", for a new widened sparse head).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch

from interpbench.clipmodels import (
    SparseCLIP,
    SparseHeadCfg,
    create_random,
    register_configs,
    save_model_folder,
)
from interpbench.data.shapes import ShapesConfig, ShapesWorld
from interpbench.data.torch_datasets import normalise_uint8


@dataclass(frozen=True)
class ClipTrainCfg:
    arch: str = "shapes-vit-tiny"
    sparse: bool = False
    logit_scale_cap: float = 100.0  # open_clip's default cap; Sparse CLIP uses 50 or 40
    steps: int = 1200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    seed: int = 0
    threads: int = 2
    p_single: float = 0.5  # share of one-object training images (shape and position are unambiguous there)
    init_towers: str | None = None  # model folder whose tower weights start training (projections stay new)
    init_scope: str = "both"  # which towers init_towers copies: "both" or "image"
    objective: str = "contrastive"  # or "supervised" (image tower + concept head, see module doc)
    lock_image: str | None = None  # None, "all" (LiT) or "trunk" (all but the final projection)
    spurious: bool = False  # train on ShapesConfig(spurious=True): background follows shape

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.warmup < 0:
            raise ValueError("ClipTrainCfg needs steps >= 1, batch_size >= 2, lr > 0, warmup >= 0")
        if self.objective not in ("contrastive", "supervised"):
            raise ValueError(f"ClipTrainCfg.objective={self.objective!r}: expected 'contrastive' or 'supervised'")
        if self.lock_image not in (None, "all", "trunk") or self.init_scope not in ("both", "image"):
            raise ValueError(f"ClipTrainCfg: lock_image={self.lock_image!r} (expected None, 'all' or 'trunk'), "
                             f"init_scope={self.init_scope!r} (expected 'both' or 'image')")


def lr_at(step: int, cfg) -> float:
    """Linear warm-up, then cosine decay to zero (open_clip's `cosine_lr`)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))


def _batches(world: ShapesWorld, cfg: ClipTrainCfg, mean, std, tokenizer):
    """(step, images, tokens or concept targets) forever; the draw depends on the seed only."""
    rng = np.random.default_rng(cfg.seed)
    step = 0
    while True:
        idx = rng.integers(0, len(world), size=cfg.batch_size)
        samples = [world[int(i)] for i in idx]
        images = normalise_uint8(np.stack([s.image for s in samples]), mean, std)
        if cfg.objective == "supervised":
            yield step, images, torch.from_numpy(np.stack([s.concepts for s in samples]))
        else:
            texts = [s.captions[int(rng.integers(len(s.captions)))] for s in samples]
            yield step, images, tokenizer(texts)
        step += 1


def copy_towers(clip: torch.nn.Module, folder: Path, scope: str = "both") -> list[str]:
    """Start from another CLIP's towers: copy every tensor whose name and shape match.

    A widened sparse head keeps its new random projections (their shapes differ) and the
    logit scale restarts, so only the image and text encoders carry over; scope "image"
    copies the image tower only. Returns the names that were not copied."""
    from safetensors.torch import load_file

    from interpbench.clipmodels import OPENCLIP_WEIGHTS

    source = load_file(str(Path(folder) / OPENCLIP_WEIGHTS))
    own = clip.state_dict()
    keep = {k: v.float() for k, v in source.items() if k in own and own[k].shape == v.shape and k != "logit_scale"
            and (scope == "both" or k.startswith("visual."))}
    clip.load_state_dict(keep, strict=False)
    return sorted(set(own) - set(keep))


def _lock_image(clip: torch.nn.Module, lock: str | None) -> None:
    if lock is None:
        return
    for name, p in clip.visual.named_parameters():
        p.requires_grad_(lock == "trunk" and name == "proj")


class _ConceptHead(torch.nn.Module):
    """Image tower + linear concept classifier: the supervised phase's model (head not saved)."""

    def __init__(self, clip: torch.nn.Module):
        super().__init__()
        from interpbench.data.shapes import CONCEPTS

        self.visual = clip.visual
        dim = clip.visual.output_dim
        self.head = torch.nn.Linear(dim, len(CONCEPTS))

    def loss(self, images, concepts):
        return torch.nn.functional.binary_cross_entropy_with_logits(self.head(self.visual(images)), concepts)


def train_clip(cfg: ClipTrainCfg, out_dir: Path | None = None, progress=None, log_every: int = 50,
               init_from: Path | None = None) -> dict:
    """Train and (optionally) write a model folder; returns the training record.

    `init_from` continues from a saved model folder (a later phase of a curriculum)
    instead of a random initialisation."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    register_configs()  # the tokenizer looks up the project's architectures
    if init_from is not None:
        from interpbench.clipmodels import load_model_folder

        model, _ = load_model_folder(Path(init_from))
        model = model.float()
        clip = model.clip if isinstance(model, SparseCLIP) else model
    else:
        clip = create_random(cfg.arch, seed=cfg.seed)
        model = SparseCLIP(clip, SparseHeadCfg(logit_scale_cap=cfg.logit_scale_cap)) if cfg.sparse else clip
        if cfg.init_towers:
            copy_towers(clip, Path(cfg.init_towers), cfg.init_scope)
    _lock_image(clip, cfg.lock_image)
    trained = _ConceptHead(clip) if cfg.objective == "supervised" else model
    model.train()
    tokenizer = open_clip.get_tokenizer(cfg.arch)
    image_size = clip.visual.image_size
    image_size = image_size[0] if isinstance(image_size, tuple) else image_size
    world = ShapesWorld("train", length=1_000_000, seed=cfg.seed,
                        config=ShapesConfig(image_size=image_size, p_single=cfg.p_single, spurious=cfg.spurious))
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    params = [p for p in trained.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # biases, norms, logit scale: no weight decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.ClipLoss()
    cap = math.log(cfg.logit_scale_cap)
    losses, t0 = [], time.time()
    trained.train()
    for step, images, targets in _batches(world, cfg, mean, std, tokenizer):
        if step >= cfg.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        if cfg.objective == "supervised":
            loss = trained.loss(images, targets)
        else:
            loss = loss_fn(*model(images, targets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, cap)
        losses.append(loss.item())
        if progress is not None:
            progress(step + 1, cfg.steps, losses[-1])
        elif log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{cfg.steps} loss {np.mean(losses[-log_every:]):.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    wall = time.time() - t0
    model.eval()
    record = {
        "config": asdict(cfg),
        "wall_time_s": round(wall, 1),
        "first_loss": round(float(np.mean(losses[:20])), 4),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
        "loss_curve": [round(float(np.mean(losses[i:i + 50])), 4) for i in range(0, len(losses), 50)],
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "train_data": {"source": "shapes", "split": "train", "seed": cfg.seed, "spurious": cfg.spurious,
                       "targets": "concept vectors" if cfg.objective == "supervised" else "captions",
                       "samples_seen": cfg.steps * cfg.batch_size},
    }
    if out_dir is not None:
        save_model_folder(Path(out_dir), model, cfg.arch,
                          sparse=model.cfg if isinstance(model, SparseCLIP) else None)
        from interpbench.ioutils import atomic_write_text

        atomic_write_text(Path(out_dir) / "training.json", json.dumps(record, indent=2) + "\n")
    return {"model": model, "losses": losses, **record}
