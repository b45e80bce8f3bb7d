"""Validity numbers of the multimodality metrics on the shipped models (docs/metrics.md).

    python benchmarks/check_multimodality.py [--n-images 2000] [--seed 0] [--cache-dir DIR]

For shapes:dense, shapes:sparse and shapes:sae, on the Shapes eval images and their first
captions (the activations `interpbench evaluate` caches; a cold cache extracts them):
- the paired score, its built-in shuffled-caption control, and the score after shuffling
  the captions outright (a seeded permutation), with the share of the score it removes;
- the largest change of any modality number (multimodal fraction, median modality score,
  paired score and its control, per-feature modality score, density, bridge) when one
  tower's activations are multiplied by 0.5 or 2;
- two random representations of the model's width and per-input L0 (top-k per row):
  `independent`: seeded random ReLU codes drawn per input, unrelated across the towers;
  `projection`: a seeded random ReLU projection of the model's own features (the same
  random directions for both towers), which keeps whatever image-caption alignment the
  model has, so it need not score 0.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

SPECS = ("shapes:dense", "shapes:sparse", "shapes:sae")


def _numbers(img: torch.Tensor, txt: torch.Tensor, seed: int) -> tuple[dict, dict]:
    from interpbench.metrics.inputs import to_entries
    from interpbench.metrics.multimodality import caption_unit_sum, pairing_derangement
    from interpbench.metrics.suite import MetricSuite, SuiteConfig

    n, f = img.shape
    pi = pairing_derangement(n, seed)
    suite = MetricSuite(f, 1, SuiteConfig(polysemanticity_max_features=1, seed=seed))
    suite.update_pairs(img, txt, shuffled=txt[pi], ids=np.arange(n), caption_sum=caption_unit_sum(to_entries(txt, "t", f)))
    suite.update_images(img, torch.ones(n, 1), np.arange(n))
    m, per = suite.finalize()
    keys = ("multimodal_fraction", "modality_score_median", "paired_multimodality")
    scalars = {k: m.get(k) for k in keys}
    scalars["paired_control"] = suite.extras()["controls"]["shuffled_pairs"].get("paired_multimodality")
    scalars["paired_interval"] = suite.extras()["intervals"].get("paired_multimodality")
    arrays = {k: per[k].astype(np.float64) for k in ("modality_score", "density", "bridge", "paired_multimodality")
              if k in per}
    return scalars, arrays


def _max_change(a: tuple[dict, dict], b: tuple[dict, dict]) -> float:
    worst = 0.0
    for k, v in a[0].items():
        if isinstance(v, float) and isinstance(b[0][k], float):
            worst = max(worst, abs(v - b[0][k]))
    for k, v in a[1].items():
        ok = ~np.isnan(v)
        assert (ok == ~np.isnan(b[1][k])).all(), k
        worst = max(worst, float(np.abs(v[ok] - b[1][k][ok]).max(initial=0.0)))
    return worst


def _top_k_rows(x: torch.Tensor, l0: torch.Tensor) -> torch.Tensor:
    """Keep each row's l0[row] largest positive entries (ReLU first)."""
    x = torch.relu(x)
    order = torch.argsort(x, dim=1, descending=True)
    keep = torch.arange(x.shape[1])[None, :] < l0[:, None]
    return torch.zeros_like(x).scatter(1, order, torch.where(keep, x.gather(1, order), 0.0))


def _random_controls(img: torch.Tensor, txt: torch.Tensor, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    n, f = img.shape
    l0_img, l0_txt = (img > 0).sum(1), (txt > 0).sum(1)
    indep = (_top_k_rows(torch.randn(n, f, generator=g), l0_img), _top_k_rows(torch.randn(n, f, generator=g), l0_txt))
    w = torch.randn(f, f, generator=g) / f ** 0.5
    proj = (_top_k_rows(img @ w, l0_img), _top_k_rows(txt @ w, l0_txt))
    return {name: _numbers(*pair, seed)[0] for name, pair in (("independent", indep), ("projection", proj))}


def _activations(spec: str, n_images: int, seed: int, cache_dir: Path | None):
    from interpbench.adapters import load_representation
    from interpbench.data import load_source
    from interpbench.evaluation import steps
    from interpbench.evaluation.runner import EvalSettings, RunContext, default_cache
    from interpbench.extraction.extract import iter_image_chunks

    settings = EvalSettings(n_images=n_images, seed=seed)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=cache_dir or default_cache(), offline=True)
    rep = load_representation(spec, offline=True)
    source = load_source(settings.dataset, settings.n_images, settings.seed)
    cache = steps.extract(rep, source, settings, ctx)
    img = torch.zeros(len(source), rep.n_features)
    for feats, t in iter_image_chunks(cache, rep.n_features):
        img[t["index"]] = feats.to_dense() if feats.layout != torch.strided else feats
    txt = steps.caption_features(rep, source, settings, ctx)
    return img, (txt.to_dense() if txt.layout != torch.strided else txt).float()


def check(spec: str, n_images: int, seed: int, cache_dir: Path | None) -> dict:
    img, txt = _activations(spec, n_images, seed, cache_dir)
    base = _numbers(img, txt, seed)
    perm = torch.from_numpy(np.random.default_rng(seed + 1).permutation(len(txt)))
    shuffled = _numbers(img, txt[perm], seed)[0]["paired_multimodality"]
    paired = base[0]["paired_multimodality"]
    rescale = {f"{side}x{c}": _max_change(base, _numbers(img * (c if side == "image" else 1.0),
                                                         txt * (c if side == "text" else 1.0), seed))
               for side in ("image", "text") for c in (0.5, 2.0)}
    return {"spec": spec, "n_features": img.shape[1], **base[0], "paired_after_shuffling_captions": shuffled,
            "share_removed_by_shuffling": None if not paired else 1 - shuffled / paired,
            "max_change_when_rescaling_one_tower": rescale, "random": _random_controls(img, txt, seed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    out = [check(s, args.n_images, args.seed, args.cache_dir) for s in SPECS]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
