"""Build the shipped reference models and their model cards.

    shapes:dense   tiny open_clip ViT CLIP (shapes-vit-tiny)
    shapes:sparse  natively sparse CLIP: ReLU after a 16x widened projection, logit-scale cap 50
    shapes:sae        TopK SAE (8x, k=16) on shapes:dense image embeddings
    shapes:sae-resid  the same recipe on shapes:dense's residual stream (last block, class token)

Each card records the exact command, seed, data, steps, wall time, final loss and the
zero-shot accuracy per attribute on the Shapes eval split (measured on the weights as
shipped, i.e. after the float16 round trip).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch

from interpbench.data.shapes import ShapesWorld
from interpbench.ioutils import atomic_write_text
from interpbench.specs import REFERENCE_DIR
from interpbench.training.clip import ClipTrainCfg, train_clip
from interpbench.training.sae import SAETrainCfg, train_sae

# The dense model is a two-phase curriculum (see training/clip.py): the image tower first
# learns the ground-truth concepts with a linear head (1,400 steps), then the text tower and
# logit scale learn to match it contrastively with the image tower locked (LiT, 300 steps).
# Contrastive training from scratch left shape and position at chance (three recipes).
# One-object images dominate (80%): there shape and position are unambiguous.
# The sparse model (training/sparse_reference.py) keeps shapes:dense's towers fixed and trains a
# widened ReLU head on their cached outputs.
# shapes:spurious (TextSpan's Waterbirds analogue, not shipped) reuses the dense image tower
# and trains a fresh text tower on spurious captions, where background follows shape.
_PRETRAIN = ClipTrainCfg(objective="supervised", steps=1400, batch_size=128, p_single=0.8, lr=1e-3,
                         weight_decay=0.05, warmup=50)
_LIT = {"steps": 300, "batch_size": 256, "p_single": 0.8, "lr": 1e-3, "weight_decay": 0.1, "warmup": 50}
PRESETS = {
    "dense": (_PRETRAIN, ClipTrainCfg(lock_image="all", **_LIT)),
    "spurious": (ClipTrainCfg(lock_image="all", init_towers="shapes:dense", init_scope="image", spurious=True,
                              **_LIT),),
}
CLIP_PRESETS = ("dense", "sparse", "spurious")
SAE_PRESET = SAETrainCfg()
EVAL_IMAGES = 2000
SAE_TRAIN_IMAGES = 20_000


@dataclass(frozen=True)
class SAEPreset:
    """A shipped SAE: where it reads shapes:dense, and its training config.

    `site` resid_post / mlp_out read the base model's last block (the analogue of the public
    CLIP SAEs on late layers); the block index is resolved from the base model, so a base with
    a different depth gets its own last block."""

    site: str = "image_embed"
    tokens: str = "cls"
    cfg: SAETrainCfg = SAE_PRESET

    def hook(self, model):
        from interpbench.adapters.hooks import n_blocks
        from interpbench.adapters.sae_canonical import LAYER_SITES, HookSite

        if self.site not in LAYER_SITES:
            return HookSite(self.site)
        return HookSite(self.site, n_blocks(model) - 1, self.tokens)


# name (shapes:NAME and its folder) -> preset; `interpbench train sae --preset NAME`
SAE_PRESETS = {
    "sae": SAEPreset(),
    "sae-resid": SAEPreset(site="resid_post", tokens="cls"),
}


def _shapes_eval(seed: int = 0) -> ShapesWorld:
    return ShapesWorld("eval", length=EVAL_IMAGES, seed=seed)


def clip_zeroshot(folder: Path, threads: int = 2) -> dict:
    """Zero-shot accuracy per attribute of a CLIP model folder (clip-benchmark)."""
    from interpbench.adapters.openclip_dense import image_transform, tokenizer_for
    from interpbench.clipmodels import load_model_folder
    from interpbench.evaluation.zeroshot_shapes import shapes_zeroshot

    torch.set_num_threads(threads)
    model, cfg = load_model_folder(folder)
    return shapes_zeroshot(model, tokenizer_for(model, cfg["architecture"]), image_transform(model), _shapes_eval())


def reconstructed_image_encoder(model, sae):
    """images -> the image embedding with the SAE's reconstruction in place of its input: the
    decoded embedding (image_embed SAEs) or the residual spliced back into the ViT."""
    from interpbench.adapters import hooks

    hook = sae.settings.hook
    if hook.site == "image_embed":
        return lambda im: sae(model.encode_image(im))[1]
    return lambda im: hooks.encode_image_with_replacement(model, im, hook, lambda x: sae(x)[1])


def sae_zeroshot(sae_folder: Path, base_folder: Path) -> dict:
    """Zero-shot accuracy when the SAE's input is replaced by its reconstruction."""
    from interpbench.adapters.openclip_dense import image_transform, tokenizer_for
    from interpbench.adapters.sae_canonical import load_own
    from interpbench.clipmodels import load_model_folder
    from interpbench.evaluation.zeroshot_shapes import shapes_zeroshot
    from interpbench.metrics.zeroshot import EncoderView

    model, cfg = load_model_folder(base_folder)
    view = EncoderView(reconstructed_image_encoder(model, load_own(sae_folder)), model.encode_text)
    return shapes_zeroshot(view, tokenizer_for(model, cfg["architecture"]), image_transform(model), _shapes_eval())


@torch.inference_mode()
def sae_eval_reconstruction(sae_folder: Path, base_folder: Path, n: int | None = None, chunk: int = 250) -> dict:
    """Reconstruction and sparsity on the Shapes eval split, with the metric code `interpbench
    evaluate` uses (metrics/reconstruction.py: per-row ratios, then the mean; one row per image,
    or per token for patch hooks), streamed over chunks of images."""
    from dataclasses import asdict

    from interpbench.adapters.sae_canonical import load_own
    from interpbench.clipmodels import load_model_folder
    from interpbench.metrics.inputs import to_entries, to_matrix
    from interpbench.metrics.reconstruction import ReconstructionAccumulator

    n = n or EVAL_IMAGES
    model, _ = load_model_folder(base_folder)
    sae = load_own(sae_folder)
    world = _shapes_eval()
    acc = ReconstructionAccumulator(sae.n_latents, sae.d_in)
    for i0 in range(0, n, chunk):
        x = hook_inputs(model, sae.settings.hook, lambda j, i0=i0: world[i0 + j], min(chunk, n - i0))
        z, x_hat = sae(x)
        acc.update(to_matrix(x, "x"), to_matrix(x_hat, "x_hat"), to_entries(z, "z", sae.n_latents, nonnegative=False))
    res = asdict(acc.result())
    return {"split": "eval", "images": n, "seed": 0, **{k: (round(v, 5) if isinstance(v, float) else v)
                                                         for k, v in res.items()}}


@torch.inference_mode()
def hook_inputs(model, hook, sample, n: int, batch: int = 500) -> torch.Tensor:
    """Rows [N, d] the SAE at `hook` reads for images sample(0..n-1): one per image, or one per
    token for patch/all hooks (as `interpbench evaluate` scores reconstruction)."""
    from interpbench.adapters import hooks
    from interpbench.data.torch_datasets import normalise_uint8

    out = []
    for i in range(0, n, batch):
        imgs = normalise_uint8(
            np.stack([sample(j).image for j in range(i, min(n, i + batch))]),
            open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
        x = model.encode_image(imgs).float() if hook.site == "image_embed" else hooks.activations_at(model, imgs, hook)
        out.append(x.reshape(-1, x.shape[-1]))
    return torch.cat(out)


def embed_images(model, n: int, seed: int, batch: int = 500) -> torch.Tensor:
    """shapes:sae's training inputs: image embeddings of n Shapes train images."""
    from interpbench.adapters.sae_canonical import HookSite

    return hook_inputs(model, HookSite("image_embed"), _train_world(n, seed).__getitem__, n, batch)


def _train_world(n: int, seed: int) -> ShapesWorld:
    return ShapesWorld("train", length=n, seed=seed + 1)  # a different stream from the CLIP's training draws


def build_clip(name: str, out_dir: Path | None = None, steps: int | None = None, progress=None,
               start_phase: int = 0) -> Path:
    """Train a reference CLIP through its phases; each phase continues from the folder the last wrote.

    `steps` scales every phase to that many steps (quick runs); `start_phase` resumes a curriculum."""
    out = Path(out_dir or REFERENCE_DIR / name)
    if name == "sparse":
        return build_sparse_clip(out, steps, progress, command=train_command(name, steps, out_dir))
    phases = []
    if start_phase:
        done = json.loads((out / "training.json").read_text())
        phases = done.get("phases", [done])[:start_phase]
    for i, cfg in enumerate(PRESETS[name]):
        if i < start_phase:
            continue
        if cfg.init_towers == "shapes:dense":  # the dense model built beside this one, else the shipped one
            sibling = out.parent / "dense"
            cfg = ClipTrainCfg(**{**cfg.__dict__, "init_towers": str(sibling if sibling.is_dir() else
                                                                      REFERENCE_DIR / "dense")})
        if steps is not None:
            cfg = ClipTrainCfg(**{**cfg.__dict__, "steps": steps, "warmup": min(cfg.warmup, max(1, steps // 10))})
        rec = train_clip(cfg, out_dir=out, progress=progress, log_every=0 if progress else 50,
                         init_from=out if i else None)
        rec.pop("model")
        rec.pop("losses")
        phases.append(rec)
    atomic_write_text(out / "training.json", json.dumps(_combine(phases), indent=2) + "\n")
    write_clip_card(name, out, command=train_command(name, steps, out_dir))
    return out


def train_command(name: str, steps: int | None, out_dir: Path | None) -> str:
    return f"interpbench train clip {name}" + (f" --steps {steps}" if steps else "") + (f" --out {out_dir}" if out_dir else "")


def build_sparse_clip(out: Path, steps: int | None = None, progress=None, checkpoints: Path | None = None,
                      command: str | None = None) -> Path:
    """shapes:sparse: the Sparse CLIP head on shapes:dense's fixed towers (see training/sparse_reference.py)."""
    from dataclasses import replace

    from interpbench.training.sparse_reference import SPARSE_PRESET, build_sparse

    dense = out.parent / "dense"
    base = dense if (dense / "open_clip_model.safetensors").is_file() else REFERENCE_DIR / "dense"
    cfg = SPARSE_PRESET if steps is None else replace(SPARSE_PRESET, steps=steps, warmup=min(SPARSE_PRESET.warmup,
                                                                                             max(1, steps // 10)))
    build_sparse(base, out, cfg, checkpoints_dir=checkpoints, progress=progress)
    write_clip_card("sparse", out, command=command or train_command("sparse", steps, None))
    return out


def _combine(phases: list[dict]) -> dict:
    """One training record for a curriculum: totals, the last phase's loss, every phase kept."""
    # first/final loss of the last phase: phases may use different losses (BCE, then contrastive)
    return {"config": phases[-1]["config"], "wall_time_s": round(sum(p["wall_time_s"] for p in phases), 1),
            "steps": sum(p["config"]["steps"] for p in phases), "first_loss": phases[-1]["first_loss"],
            "final_loss": phases[-1]["final_loss"], "machine": phases[-1]["machine"],
            "train_data": {"source": "shapes", "split": "train", "samples_seen":
                           sum(p["train_data"]["samples_seen"] for p in phases),
                           "phases": [p["train_data"] | {"p_single": p["config"].get("p_single", 0.5)}
                                      for p in phases]},
            "phases": phases}


def write_clip_card(name: str, folder: Path, command: str | None = None) -> None:
    """(Re)write a CLIP's model card from its training.json and fresh measurements."""
    record = json.loads((Path(folder) / "training.json").read_text())
    command = command or f"interpbench train clip {name}"
    extra = clip_sparsity(folder) if name == "sparse" else None
    write_card(Path(folder), name, record, clip_zeroshot(folder), command=command, sparsity=extra)


@torch.inference_mode()
def clip_sparsity(folder: Path, n: int = EVAL_IMAGES) -> dict:
    """Activation sparsity of a natively sparse CLIP on the Shapes eval split (images and captions)."""
    from interpbench.adapters.openclip_dense import tokenizer_for
    from interpbench.clipmodels import load_model_folder
    from interpbench.data.torch_datasets import normalise_uint8

    model, cfg = load_model_folder(folder)
    tok = tokenizer_for(model, cfg["architecture"]) if "architecture" in cfg else open_clip.get_tokenizer("shapes-vit-tiny")
    world = _shapes_eval()
    img, txt = [], []
    for i in range(0, n, 500):
        samples = [world[j] for j in range(i, min(n, i + 500))]
        ims = normalise_uint8(np.stack([s.image for s in samples]), open_clip.OPENAI_DATASET_MEAN,
                              open_clip.OPENAI_DATASET_STD)
        img.append(model.encode_image(ims) > 0)
        txt.append(model.encode_text(tok([s.captions[0] for s in samples])) > 0)
    img, txt = torch.cat(img).float(), torch.cat(txt).float()
    width = img.shape[1]
    return {"width": width, "images": n,
            "image_l0": round(float(img.sum(1).mean()), 2), "text_l0": round(float(txt.sum(1).mean()), 2),
            "image_active_pct": round(100 * float(img.mean()), 3), "text_active_pct": round(100 * float(txt.mean()), 3),
            "features_ever_active_pct": round(100 * float(((img.sum(0) + txt.sum(0)) > 0).float().mean()), 2)}


def _sae_inputs(base_folder: Path | None, preset: SAEPreset = SAE_PRESETS["sae"]):
    """(base folder, hook, the SAE training inputs, seconds it took) for a shipped SAE preset."""
    from interpbench.clipmodels import load_model_folder

    base_folder = Path(base_folder or REFERENCE_DIR / "dense")
    model, _ = load_model_folder(base_folder)
    hook = preset.hook(model)
    t0 = time.time()
    x = hook_inputs(model, hook, _train_world(SAE_TRAIN_IMAGES, preset.cfg.seed).__getitem__, SAE_TRAIN_IMAGES)
    return base_folder, hook, x, time.time() - t0


def _inputs_text(hook) -> str:
    if hook.site == "image_embed":
        return "shapes:dense image embeddings (unnormalised)"
    return f"shapes:dense {hook.site} of block {hook.layer}, {hook.tokens} token(s)"


def _train_sae_folder(x, base_folder: Path, out: Path, cfg: SAETrainCfg, embed_time: float, command: str,
                      progress=None, recipe: str | None = None, name: str = "sae", hook=None) -> dict:
    from interpbench.adapters.sae_canonical import HookSite

    hook = hook or HookSite("image_embed")
    record = train_sae(x, cfg, hook=hook, base_model="shapes:dense", out_dir=out, progress=progress, recipe=recipe)
    record.pop("sae")
    record["embedding_time_s"] = round(embed_time, 1)
    # The data seed stays the preset's: reseeding changes the SAE's initialisation and batch order only.
    record["train_data"] = {"source": "shapes", "split": "train", "seed": SAE_PRESET.seed + 1,
                            "images": SAE_TRAIN_IMAGES, "rows": len(x), "inputs": _inputs_text(hook)}
    if name != "sae":  # shapes:sae's card predates these numbers; its reseed runs keep its layout
        record["eval_reconstruction"] = sae_eval_reconstruction(out, base_folder)
    write_card(out, name, record, sae_zeroshot(out, base_folder), command=command)
    return record


def build_sae(base_folder: Path | None = None, out_dir: Path | None = None, progress=None,
              preset: str = "sae") -> Path:
    """Train the shipped SAE `preset` (a key of SAE_PRESETS) into OUT_DIR (default: its shipped folder)."""
    if preset not in SAE_PRESETS:
        raise ValueError(f"unknown SAE preset {preset!r}; expected one of {list(SAE_PRESETS)}")
    spec = SAE_PRESETS[preset]
    base_folder, hook, x, embed_time = _sae_inputs(base_folder, spec)
    out = Path(out_dir or REFERENCE_DIR / preset)
    command = "interpbench train sae" + (f" --preset {preset}" if preset != "sae" else "") \
        + (f" --out {out_dir}" if out_dir else "")
    _train_sae_folder(x, base_folder, out, spec.cfg, embed_time, progress=progress, command=command, name=preset,
                      hook=hook)
    return out


RESEED_RECIPE = "shapes:sae"  # the recipe name reseeded SAEs share (results: model.recipe)
RESEED_ROOT = Path("runs")  # git-ignored; never the shipped reference folder


def build_sae_seeds(seeds: list[int], base_folder: Path | None = None, out_root: Path | None = None,
                    progress=None) -> list[tuple[Path, dict]]:
    """shapes:sae's recipe once per seed (same data, embedded once) into OUT_ROOT/sae-seed{N}."""
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    base_folder, _hook, x, embed_time = _sae_inputs(base_folder)
    root = Path(out_root or RESEED_ROOT)
    out = []
    for seed in seeds:
        folder = root / f"sae-seed{seed}"
        cfg = SAETrainCfg(**{**SAE_PRESET.__dict__, "seed": seed})
        command = f"interpbench train sae --seeds {','.join(map(str, seeds))}" + (f" --out {out_root}" if out_root else "")
        out.append((folder, _train_sae_folder(x, base_folder, folder, cfg, embed_time, command, progress,
                                              recipe=RESEED_RECIPE)))
    return out


def write_card(folder: Path, name: str, record: dict, zeroshot: dict, command: str,
               sparsity: dict | None = None) -> None:
    card = {"name": f"shapes:{name}", "command": command, "training": record,
            "zeroshot_eval": {"split": "eval", "images": EVAL_IMAGES, "seed": 0, "accuracy": zeroshot}}
    if sparsity:
        card["activation_sparsity"] = sparsity
    atomic_write_text(folder / "card.json", json.dumps(card, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v * 100:.1f}% |" for k, v in zeroshot.items())
    cfg = record.get("config", {})
    text = f"""# shapes:{name}

{_DESCRIPTIONS[name]}

- Command: `{command}`
- Seed: {cfg.get('seed', 0)}
- Training data: {json.dumps(record.get('train_data', {}))}
- Config: {_configs(record, cfg)}
- Steps: {record.get('steps', cfg.get('steps'))}
- Wall time: {record['wall_time_s']:.0f} s ({record.get('machine', 'CPU')})
- Loss (last phase): first {record['first_loss']}, final {record['final_loss']}

## Zero-shot accuracy (Shapes eval split, {EVAL_IMAGES} images, clip-benchmark)

Object attributes are scored on one-object images; count and background on all.{_zeroshot_note(name)}

| attribute | top-1 |
|---|---|
{rows}
"""
    if record.get("eval_reconstruction"):
        rec = record["eval_reconstruction"]
        text += (f"\n## Reconstruction (Shapes eval split, {rec['images']} images, metrics/reconstruction.py)\n\n"
                 + "\n".join(f"- {k}: {v}" for k, v in rec.items() if k not in ("split", "images", "seed")) + "\n")
    if sparsity:
        text += ("\n## Activation sparsity (Shapes eval split, first caption per image)\n\n"
                 + "\n".join(f"- {k}: {v}" for k, v in sparsity.items()) + "\n")
    atomic_write_text(folder / "MODEL_CARD.md", text)


def _zeroshot_note(name: str) -> str:
    if not name.startswith("sae"):
        return ""
    return ("\nThe image side is shapes:dense with the SAE's reconstruction in place of its input "
            "(for a residual-stream SAE, spliced back into the ViT); the text side is shapes:dense's.")


def _configs(record: dict, cfg: dict) -> str:
    phases = record.get("phases")
    if not phases:
        return f"`{json.dumps(cfg)}`"
    return "".join(f"\n  - phase {i + 1} ({p['config'].get('objective', 'contrastive')}, {p['wall_time_s']:.0f} s, "
                   f"loss {p['first_loss']} -> {p['final_loss']}): `{json.dumps(p['config'])}`"
                   for i, p in enumerate(phases))


_DESCRIPTIONS = {
    "dense": "A tiny open_clip ViT CLIP (64 px, patch 8, width 128, 4 layers each tower, embedding 64). "
             "Phase 1 trains the image tower with a linear head on the ground-truth concept vectors; phase 2 "
             "trains the text tower and logit scale contrastively on Shapes captions with the image tower "
             "locked (LiT). It is therefore not a CLIP contrastively trained end to end: plain contrastive "
             "training from scratch left shape and position at chance within the CPU budget (colour, size and "
             "background lower the loss first), so the image tower is taught the concepts directly.",
    "sparse": "A natively sparse CLIP head in the Sparse CLIP recipe's spirit, on shapes:dense's towers: a ReLU after "
              "each final projection, the projections widened 32x (64 -> 2,048 features), the logit scale capped at 50, "
              "and an explicit L1/L2 sparsity penalty (weight 0.1 on the L1 norm of the unit embeddings; a "
              "'Sparse+'-style addition the paper does not use). Only the two projections and the logit scale "
              "train, on cached outputs of the fixed towers. The towers are not contrastively trained end to end: "
              "the image tower learned the ground-truth concepts with a linear head, then the text tower was fitted "
              "to it contrastively (LiT), because plain contrastive training never learned shape and position "
              "within a CPU budget. See leaderboards/sparse-ablation/ for the recipe's ablation.",
    "spurious": "shapes:dense's image tower (locked) with a text tower trained on the Shapes spurious variant, "
                "where each shape's home background comes with it in 95% of training images: the Waterbirds "
                "analogue for TextSpan's spurious-cue removal.",
    "sae": "A TopK SAE (8x expansion: 512 latents, k = 16) trained on shapes:dense image embeddings with the "
           "SAE-for-CLIP report's recipe (AdamW lr 1e-3, weight decay 1e-4, cosine schedule, batch 128).",
    "sae-resid": "A TopK SAE (8x expansion: 1,024 latents, k = 16) on shapes:dense's residual stream: the output "
                 "of the vision transformer's last block at the class token (hook resid_post:3:cls), before "
                 "ln_post and the projection; the analogue of the public CLIP SAEs on late-layer residual streams "
                 "(Prisma's CLS-only SAEs). shapes:sae's recipe otherwise (AdamW lr 1e-3, weight decay 1e-4, "
                 "cosine schedule, batch 128, inputs mean-centred and scaled to E||x|| = sqrt(d)). It has no text "
                 "side: the text tower never reaches this hook.",
}
