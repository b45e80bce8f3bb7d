"""Train a TopK SAE on CLIP embeddings (the SAE-for-CLIP report's recipe).

Recipe: AdamW (lr 1e-3, weight decay 1e-4), cosine schedule, batch 128, latent width 8x
the input, TopK activation. Inputs are mean-centred and scaled so that E||x|| = sqrt(d)
(MSAE's stated aim); the statistics are saved with the SAE so any loader reproduces them.
The decoder rows are kept at unit norm after every step (standard for TopK SAEs; stops
the encoder and decoder trading scale).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass

import torch

from interpbench.adapters.sae_canonical import CanonicalSAE, HookSite, SAESettings, random_unit_rows, save_own
from interpbench.ioutils import atomic_write_text


@dataclass(frozen=True)
class SAETrainCfg:
    expansion: int = 8
    k: int = 16
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.expansion < 1 or self.k < 1 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("SAETrainCfg needs positive expansion, k, epochs, batch_size and lr")


def init_sae(x: torch.Tensor, cfg: SAETrainCfg, hook: HookSite, base_model: str) -> CanonicalSAE:
    d = x.shape[1]
    f = d * cfg.expansion
    if cfg.k > f:
        raise ValueError(f"k = {cfg.k} exceeds the number of latents {f}")
    mean = x.mean(0)
    scale = math.sqrt(d) / float((x - mean).norm(dim=1).mean())
    W_dec = random_unit_rows(f, d, cfg.seed)
    settings = SAESettings(activation="topk", k=cfg.k, pre_bias=True, hook=hook, base_model=base_model)
    # Encoder starts as the decoder's transpose, a common TopK-SAE initialisation (Gao et al.).
    return CanonicalSAE(W_dec.t().clone(), torch.zeros(f), W_dec, torch.zeros(d), settings,
                        input_mean=mean, input_scale=scale)


def train_sae(x: torch.Tensor, cfg: SAETrainCfg, hook: HookSite = HookSite(), base_model: str = "",
              out_dir=None, progress=None, recipe: str | None = None) -> dict:
    """Train on inputs x [N, d]; loss = mean squared error in the normalised space.

    `recipe` names a recipe shared by SAEs that differ only in cfg.seed (reseed runs): it is
    saved with the SAE, and results of the SAE carry it with the seed (leaderboard reseed view)."""
    torch.manual_seed(cfg.seed)
    x = x.float()
    sae = init_sae(x, cfg, hook, base_model)
    opt = torch.optim.AdamW(sae.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    g = torch.Generator().manual_seed(cfg.seed)
    xn = sae.normalise(x).detach()
    losses, t0, step = [], time.time(), 0
    for _epoch in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), cfg.batch_size):
            xb = xn[perm[i:i + cfg.batch_size]]
            z = sae.activate((xb - sae.b_dec) @ sae.W_enc + sae.b_enc)
            loss = ((z @ sae.W_dec + sae.b_dec - xb) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))
            losses.append(loss.item())
            step += 1
            if progress is not None:
                progress(step, total, losses[-1])
    with torch.no_grad():
        z, x_hat = sae(x)
        fvu = float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
        dead = float((z.amax(0) <= 0).float().mean())
    record = {"config": asdict(cfg), "n_train": len(x), "steps": total, "wall_time_s": round(time.time() - t0, 1),
              "first_loss": round(sum(losses[:20]) / min(20, len(losses)), 5),
              "final_loss": round(sum(losses[-50:]) / min(50, len(losses)), 5),
              "train_fvu": round(fvu, 5), "train_dead_fraction": round(dead, 5)}
    if recipe:
        record["recipe"] = recipe
    if out_dir is not None:
        save_own(sae.eval(), out_dir, extra={"training": record})
        atomic_write_text(out_dir / "training.json", json.dumps(record, indent=2) + "\n")
    return {"sae": sae.eval(), **record}
