"""Why a random wide TopK SAE wins Clarity, in numbers; and what frequency-matched Clarity says.

    python benchmarks/clarity_chance.py [--n 2000] [--latents 55296] [--k 365] [--seed 0] [--out DIR]

Builds a random TopK SAE (unit-norm random decoder, encoder = decoder transposed, no
biases) on `shapes:dense`'s image embedding in the project's own format (cfg.json +
sae.safetensors under --out), extracts it and the trained `shapes:sparse` through the
project's extraction on the same Shapes images, and scores both with the ground-truth judge
(the default evaluation's judge):

1. Clarity (Sparse CLIP Eq. 2) and frequency-matched Clarity (each feature on its top-n
   images, features with fewer than n left out; `clarity_matched`).
2. Clarity by feature frequency (images above tau): few-image features against many-image ones.
3. A null with no embedding geometry: each feature's images replaced by as many images drawn
   at random. Its expected value is the data-set baseline at every size, so any excess of the
   real features over it comes from where the images lie, not from how few there are.
4. Random caps: a random direction's n most aligned images (n = 20), i.e. what a random
   feature selects in a clustered embedding space.

The spec of the SAE it writes is printed, so `interpbench evaluate -m SPEC` scores the same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from interpbench.adapters import load_representation
from interpbench.adapters.sae_canonical import CanonicalSAE, HookSite, SAESettings, save_own
from interpbench.data import load_source
from interpbench.extraction.cache import default_cache_dir
from interpbench.extraction.extract import cache_rows, extract_images, iter_image_chunks
from interpbench.metrics.clarity import ClarityAccumulator, topn_clarity
from interpbench.metrics.inputs import to_entries, unit_rows
from interpbench.metrics.topn import TopNAccumulator

BINS = ((2, 5), (6, 20), (21, 100), (101, 10**9))


def random_sae(d_in: int, latents: int, k: int, seed: int) -> CanonicalSAE:
    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(latents, d_in, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    settings = SAESettings(activation="topk", k=k, pre_bias=False, hook=HookSite(), base_model="shapes:dense",
                           input_norm="none")
    return CanonicalSAE(w_dec.T.contiguous(), torch.zeros(latents), w_dec, torch.zeros(d_in), settings)


def per_feature(spec: str, source, judge_unit, top_n: int, tau: float = 0.001):
    """(per-feature Clarity [F], image counts [F], per-feature top-n Clarity [F], top-n counts [F])."""
    rep = load_representation(spec, offline=True)
    cache = extract_images(rep, source, default_cache_dir(), batch_size=256)
    clar = ClarityAccumulator(rep.n_features, judge_unit.shape[1], tau)
    top = TopNAccumulator(rep.n_features, top_n, judge_unit.shape[1], tau)
    for feats, t in iter_image_chunks(cache, rep.n_features):
        e = to_entries(feats, "features", rep.n_features)
        clar.update(e, judge_unit[t["index"]])
        top.update(e, t["index"], judge_unit[t["index"]])
    r = clar.result()
    return r.per_feature, r.counts, topn_clarity(top)[1], top.counts().numpy(), cache


def null_clarity(counts: np.ndarray, judge_unit: np.ndarray, rng, max_features: int = 3000) -> np.ndarray:
    """Per feature: Clarity of as many images drawn at random (no geometry), a seeded subset."""
    ok = np.flatnonzero(counts >= 2)
    ok = rng.choice(ok, size=min(max_features, ok.size), replace=False)
    out = np.full(counts.size, np.nan)
    for f in ok:
        m = judge_unit[rng.choice(len(judge_unit), size=int(counts[f]), replace=False)]
        s = m.sum(0)
        out[f] = (s @ s - len(m)) / (len(m) * (len(m) - 1))
    return out


def random_caps(emb: np.ndarray, judge_unit: np.ndarray, n: int, m: int, rng) -> float:
    """Mean Clarity of the n images most aligned with each of m random directions."""
    x = emb - emb.mean(0)
    d = rng.normal(size=(m, x.shape[1]))
    top = np.argsort(-(x @ d.T), axis=0)[:n].T  # [m, n]
    vals = []
    for idx in top:
        s = judge_unit[idx].sum(0)
        vals.append((s @ s - n) / (n * (n - 1)))
    return float(np.mean(vals))


def summary(name, clar, counts, topc, topcount, null, top_n) -> dict:
    ok = np.isfinite(clar)
    full = topcount >= top_n
    row = {"model": name, "features scored": int(ok.sum()), "Clarity": np.nanmean(clar),
           "null (random image sets, same sizes)": np.nanmean(null),
           f"matched (top-{top_n}, features with >= {top_n} images)": np.mean(topc[full]) if full.any() else np.nan,
           "features in matched": int(full.sum())}
    for lo, hi in BINS:
        b = ok & (counts >= lo) & (counts <= hi)
        row[f"Clarity, {lo}-{hi if hi < 10**9 else 'inf'} images (share)"] = (
            f"{np.mean(clar[b]):.3f} ({b.sum() / max(ok.sum(), 1):.2f})" if b.any() else "-")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--latents", type=int, default=55296)
    ap.add_argument("--k", type=int, default=365)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top-n", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("runs/random-topk-sae"))
    a = ap.parse_args()
    source = load_source("shapes", a.n, 0)
    judge = unit_rows(torch.stack([torch.from_numpy(source.concepts(i)) for i in range(len(source))]).double(), "judge")
    dense = load_representation("shapes:dense", offline=True)
    save_own(random_sae(_embed_dim(dense, source), a.latents, a.k, a.seed), a.out)
    spec = f"sae:interpbench:{a.out}@shapes:dense"
    print(f"random SAE written: {spec}")
    rng = np.random.default_rng(a.seed)
    rows, emb = [], None
    for name, s in (("shapes:sparse (trained)", "shapes:sparse"), (f"random TopK SAE {a.latents}/k={a.k}", spec)):
        clar, counts, topc, topcount, cache = per_feature(s, source, judge, a.top_n)
        null = null_clarity(counts, judge.numpy(), rng)
        rows.append(summary(name, clar, counts, topc, topcount, null, a.top_n))
        if s == spec:
            emb = cache_rows(cache, "sae_input").numpy()
    base = judge.sum(0)
    n = len(judge)
    print(f"data-set baseline (all pairs): {(base @ base - n) / (n * (n - 1)):.4f}")
    print(f"random caps: top-{a.top_n} images of 2000 random directions in the SAE's input space: "
          f"Clarity {random_caps(emb, judge.numpy(), a.top_n, 2000, rng):.4f}")
    for r in rows:
        print()
        for k, v in r.items():
            print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")


def _embed_dim(rep, source) -> int:
    with torch.inference_mode():
        return int(rep.encode_image_embedding(rep.transform(source.image(0))[None]).shape[1])


if __name__ == "__main__":
    main()
