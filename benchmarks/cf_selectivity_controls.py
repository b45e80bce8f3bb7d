"""Counterfactual selectivity of trained models beside a random control of the same shape.

    python benchmarks/cf_selectivity_controls.py --results results --cache-dir CACHE

Reads the results of `interpbench evaluate` (cf_selectivity, its interval, n_features, l0)
and, for each model, scores a random control of the same width and mean L0: seeded
Gaussian directions on the dense shapes:dense CLIP embedding, ReLU, then per input only the
top-k activations kept (k = the model's rounded L0), on images and vocabulary words alike.
The control is labelled and scored exactly as the evaluate step does (vocabulary top word;
best ground-truth AUROC on the evaluation images) on the same counterfactual pairs. Until
random controls are evaluable specs, this is the measured random baseline of docs/metrics.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from interpbench.adapters import load_representation
from interpbench.data import load_source
from interpbench.data.counterfactual import CounterfactualSource, concept_attributes
from interpbench.data.shapes import CONCEPTS
from interpbench.evaluation.counterfactual import ground_truth_concepts, vocabulary_concepts
from interpbench.extraction.extract import cache_rows, extract_images
from interpbench.metrics.ground_truth import ground_truth
from interpbench.metrics.labels import vocabulary_labels
from interpbench.metrics.selectivity import counterfactual_selectivity
from interpbench.results.store import read_results
from interpbench.vocab import load_vocab


def random_topk(x: torch.Tensor, w: torch.Tensor, k: int) -> torch.Tensor:
    """ReLU(x W^T) with all but each row's k largest entries set to zero."""
    a = torch.relu(x @ w.T)
    keep = torch.topk(a, min(k, a.shape[1]), dim=1).indices
    return torch.zeros_like(a).scatter_(1, keep, a.gather(1, keep))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    records, _ = read_results(args.results)
    base = load_representation("shapes:dense", offline=True)
    settings = records[0]["settings"]
    source = load_source("shapes", settings["n_images"], settings["seed"])
    cf = CounterfactualSource(settings["cf_scenes"], settings["seed"])
    emb = {name: cache_rows(extract_images(base, s, args.cache_dir), "embedding") for name, s in
           (("eval", source), ("cf", cf))}
    words = list(load_vocab(settings["vocab"]).words)
    with torch.inference_mode():
        word_emb = base.encode_text_embedding(words).float()
    concepts = np.stack([source.concepts(i) for i in range(len(source))])
    pairs_b, pairs_e, scene = cf.pairs()
    toggled, groups = cf.toggled(), concept_attributes()
    print("| model | F | L0 | cf_selectivity [95% CI] (n) | cf_selectivity_gt [95% CI] (n) |\n|---|---|---|---|---|")
    for r in sorted(records, key=lambda r: r["model"]["spec"]):
        m, iv = r["metrics"], r.get("intervals", {})
        f, k = int(m["n_features"]), max(1, round(m["l0"]))
        print(f"| {r['model']['spec']} | {f} | {m['l0']:.1f} | {_fmt(m, iv, 'cf_selectivity')} | "
              f"{_fmt(m, iv, 'cf_selectivity_gt')} |")
        w = torch.randn(f, emb["eval"].shape[1], generator=torch.Generator().manual_seed(args.seed))
        acts = {n: random_topk(e, w, k).numpy() for n, e in emb.items()}
        labels = {"words": words, "labels": vocabulary_labels(random_topk(word_emb, w, k), k=5)}
        g = ground_truth(acts["eval"], concepts, list(CONCEPTS))
        gt = ground_truth_concepts({"gt_best_concept": g.feature_best_concept, "gt_best_auroc": g.feature_best_auroc}, f)
        out = {}
        for key, fc in (("cf_selectivity", vocabulary_concepts(labels, f)), ("cf_selectivity_gt", gt)):
            res = counterfactual_selectivity(acts["cf"][pairs_b], acts["cf"][pairs_e], toggled, groups, fc,
                                             units=scene, seed=settings["seed"])
            out[key] = res.mean
            out[f"{key}_n"] = res.n_scored
            out.setdefault("_iv", {})[key] = {"lo": res.interval[0], "hi": res.interval[1]} if res.interval else {}
        print(f"| random top-{k} directions, same width | {f} | {k} | {_fmt(out, out['_iv'], 'cf_selectivity')} | "
              f"{_fmt(out, out['_iv'], 'cf_selectivity_gt')} |")


def _fmt(m: dict, iv: dict, key: str) -> str:
    if m.get(key) is None:
        return "–"
    ci = iv.get(key) or {}
    span = f" [{ci['lo']:.3f}, {ci['hi']:.3f}]" if ci else ""
    return f"{m[key]:.3f}{span} ({m.get(key + '_n')})"


if __name__ == "__main__":
    main()
