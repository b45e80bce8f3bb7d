"""Build the shipped reference models and their model cards.

    shapes:dense   tiny open_clip ViT CLIP (shapes-vit-tiny)
    shapes:sparse  natively sparse CLIP: ReLU after a 16x widened projection, logit-scale cap 50
    shapes:sae     TopK SAE (8x, k=16) on shapes:dense image embeddings

Each card records the exact command, seed, data, steps, wall time, final loss and the
zero-shot accuracy per attribute on the Shapes eval split (measured on the weights as
shipped, i.e. after the float16 round trip).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import open_clip
import torch

from interpbench.data.shapes import ShapesWorld
from interpbench.ioutils import atomic_write_text
from interpbench.training.clip import ClipTrainCfg, train_clip
from interpbench.training.sae import SAETrainCfg, train_sae

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_models"
PRESETS = {
    "dense": ClipTrainCfg(arch="shapes-vit-tiny"),
    "sparse": ClipTrainCfg(arch="shapes-vit-tiny-sparse", sparse=True, logit_scale_cap=50.0),
}
SAE_PRESET = SAETrainCfg()
EVAL_IMAGES = 2000
SAE_TRAIN_IMAGES = 20_000


def _shapes_eval(seed: int = 0) -> ShapesWorld:
    return ShapesWorld("eval", length=EVAL_IMAGES, seed=seed)


def clip_zeroshot(folder: Path, threads: int = 2) -> dict:
    """Zero-shot accuracy per attribute of a CLIP model folder (clip-benchmark)."""
    from interpbench.adapters.openclip_dense import _tokenizer_for, _transform
    from interpbench.clipmodels import load_model_folder
    from interpbench.metrics.zeroshot import shapes_zeroshot

    torch.set_num_threads(threads)
    model, cfg = load_model_folder(folder)
    return shapes_zeroshot(model, _tokenizer_for(model, cfg["architecture"]), _transform(model), _shapes_eval())


def sae_zeroshot(sae_folder: Path, base_folder: Path) -> dict:
    """Zero-shot accuracy when the image embedding is replaced by its SAE reconstruction."""
    from interpbench.adapters.openclip_dense import _tokenizer_for, _transform
    from interpbench.adapters.sae_canonical import load_own
    from interpbench.clipmodels import load_model_folder
    from interpbench.metrics.zeroshot import EncoderView, shapes_zeroshot

    model, cfg = load_model_folder(base_folder)
    sae = load_own(sae_folder)
    view = EncoderView(lambda im: sae(model.encode_image(im))[1], model.encode_text)
    return shapes_zeroshot(view, _tokenizer_for(model, cfg["architecture"]), _transform(model), _shapes_eval())


@torch.inference_mode()
def embed_images(model, n: int, seed: int, batch: int = 500) -> torch.Tensor:
    from interpbench.data.torch_datasets import normalise_uint8

    world = ShapesWorld("train", length=n, seed=seed + 1)  # a different stream from the CLIP's training draws
    out = []
    for i in range(0, n, batch):
        imgs = normalise_uint8(
            __import__("numpy").stack([world[j].image for j in range(i, min(n, i + batch))]),
            open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
        out.append(model.encode_image(imgs).float())
    return torch.cat(out)


def build_clip(name: str, out_dir: Path | None = None, steps: int | None = None, progress=None) -> Path:
    cfg = PRESETS[name]
    if steps is not None:
        cfg = ClipTrainCfg(**{**cfg.__dict__, "steps": steps, "warmup": min(cfg.warmup, max(1, steps // 10))})
    out = Path(out_dir or REFERENCE_DIR / name)
    record = train_clip(cfg, out_dir=out, progress=progress, log_every=0 if progress else 50)
    record.pop("model")
    record.pop("losses")
    write_card(out, name, record, clip_zeroshot(out), command=f"interpbench train clip {name}"
               + (f" --steps {steps}" if steps else "") + (f" --out {out_dir}" if out_dir else ""))
    return out


def build_sae(base_folder: Path | None = None, out_dir: Path | None = None, progress=None) -> Path:
    from interpbench.adapters.sae_canonical import HookSite
    from interpbench.clipmodels import load_model_folder

    base_folder = Path(base_folder or REFERENCE_DIR / "dense")
    out = Path(out_dir or REFERENCE_DIR / "sae")
    model, _ = load_model_folder(base_folder)
    t0 = time.time()
    x = embed_images(model, SAE_TRAIN_IMAGES, SAE_PRESET.seed)
    embed_time = time.time() - t0
    record = train_sae(x, SAE_PRESET, hook=HookSite("image_embed"), base_model="shapes:dense", out_dir=out,
                       progress=progress)
    record.pop("sae")
    record["embedding_time_s"] = round(embed_time, 1)
    record["train_data"] = {"source": "shapes", "split": "train", "seed": SAE_PRESET.seed + 1,
                            "images": SAE_TRAIN_IMAGES, "inputs": "shapes:dense image embeddings (unnormalised)"}
    write_card(out, "sae", record, sae_zeroshot(out, base_folder), command="interpbench train sae"
               + (f" --out {out_dir}" if out_dir else ""))
    return out


def write_card(folder: Path, name: str, record: dict, zeroshot: dict, command: str) -> None:
    card = {"name": f"shapes:{name}", "command": command, "training": record,
            "zeroshot_eval": {"split": "eval", "images": EVAL_IMAGES, "seed": 0, "accuracy": zeroshot}}
    atomic_write_text(folder / "card.json", json.dumps(card, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v * 100:.1f}% |" for k, v in zeroshot.items())
    cfg = record.get("config", {})
    text = f"""# shapes:{name}

{_DESCRIPTIONS[name]}

- Command: `{command}`
- Seed: {cfg.get('seed', 0)}
- Training data: {json.dumps(record.get('train_data', {}))}
- Config: `{json.dumps(cfg)}`
- Steps: {record.get('steps', cfg.get('steps'))}
- Wall time: {record['wall_time_s']:.0f} s ({record.get('machine', 'CPU')})
- Loss: first {record['first_loss']}, final {record['final_loss']}

## Zero-shot accuracy (Shapes eval split, {EVAL_IMAGES} images, clip-benchmark)

Object attributes are scored on one-object images; count and background on all.

| attribute | top-1 |
|---|---|
{rows}
"""
    atomic_write_text(folder / "MODEL_CARD.md", text)


_DESCRIPTIONS = {
    "dense": "A tiny open_clip ViT CLIP (64 px, patch 8, width 128, 4 layers each tower, embedding 64) "
             "trained contrastively on Shapes captions.",
    "sparse": "A natively sparse CLIP (Sparse CLIP recipe): the same towers, a ReLU after each final projection, "
              "the projection widened 16x (64 -> 1024), logit scale capped at 50.",
    "sae": "A TopK SAE (8x expansion: 512 latents, k = 16) trained on shapes:dense image embeddings with the "
           "SAE-for-CLIP report's recipe (AdamW lr 1e-3, weight decay 1e-4, cosine schedule, batch 128).",
}
