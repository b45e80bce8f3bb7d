"""End-to-end decomposition experiments on Shapes: TextSpan per head, head roles, segmentation,
mean-ablation and spurious-cue removal. Each `run_*` returns (results, extras): `results` is
JSON-ready, `extras` holds tensors for plots.

Splits: TextSpan and the ablation means are fitted on `fit_split` (default "eval") and
everything is scored on `score_split` (default "test"), so no score reuses its own images'
means (the authors' scripts take both from one set; their issue #4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.data.shapes import (
    ATTRIBUTES,
    OBJECT_ATTRIBUTES,
    ZEROSHOT_TEMPLATES,
    ShapesConfig,
    ShapesWorld,
)
from interpbench.decomposition import roles as roles_mod
from interpbench.decomposition.ablation import ComponentMeans, ablation_sweep, encode_texts
from interpbench.decomposition.core import Decomposition, decompose
from interpbench.decomposition.inputs import images_tensor, labels_of, samples_of, shapes_classifier
from interpbench.decomposition.pools import resolve_pool
from interpbench.decomposition.segmentation import attention_maps, decomposition_maps, score_maps
from interpbench.decomposition.spurious import cue_heads, spurious_ablation
from interpbench.decomposition.textspan import (
    duplicate_texts,
    reconstruction_accuracy,
    text_span_heads,
)
from interpbench.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    n_images: int = 400  # Shapes images drawn per split (fit and score)
    seed: int = 0  # Shapes data seed, probe and random-head seed
    n_texts: int = 10  # TextSpan texts per head
    n_layers: int | None = None  # TextSpan on the last n attention layers (None: min(4, all))
    pool: str = "shapes"  # text pool: shapes, general, shapes+general, or a file
    rank: int | None = None  # TextSpan projection rank (None: the head dimension)
    batch_size: int = 64
    fit_split: str = "eval"
    score_split: str = "test"

    def __post_init__(self):
        if self.n_images < 20:
            raise ConfigError(f"n_images must be at least 20 (probes and groups need data), got {self.n_images}")
        if self.n_texts < 1:
            raise ConfigError(f"n_texts must be at least 1, got {self.n_texts}")
        if self.fit_split == self.score_split:
            raise ConfigError(f"fit_split and score_split are both {self.fit_split!r}; means and TextSpan "
                              "must be fitted on other images than those scored")


def _decompose(model, samples, s: Settings, keep_tokens=False) -> Decomposition:
    return decompose(model, images_tensor(model, samples), batch_size=s.batch_size, normalize=True,
                     keep_tokens=keep_tokens)


def _layers(dec: Decomposition, s: Settings) -> list[int]:
    n = min(4, dec.n_layers) if s.n_layers is None else min(s.n_layers, dec.n_layers)
    return list(range(dec.n_layers - n, dec.n_layers))


def _rank(model, s: Settings) -> int:
    if s.rank is not None:
        return s.rank
    attn = getattr(model, "clip", model).visual.transformer.resblocks[0].attn
    return attn.head_dim


def fit_textspan(model, tokenizer, s: Settings, config: ShapesConfig | None = None):
    """Decompose the fit split and run TextSpan on the chosen layers. Returns (dec, results, texts)."""
    dec = _decompose(model, _fit_samples(s, config), s)
    texts = resolve_pool(s.pool)
    emb = encode_texts(model, tokenizer, texts)
    results = text_span_heads(dec, emb, texts, s.n_texts, _layers(dec, s), _rank(model, s))
    return dec, results, texts


def _population_means(dec_fit: Decomposition, fit_samples, attribute: str) -> ComponentMeans:
    """Mean-ablation means over the fit-split images of the population that is scored: an
    object attribute (shape, colour, size, position) is scored on one-object images only, so
    its means come from the one-object fit images; count and background use every image.
    Means from another population would shift the ablated embedding by the difference of the
    two means, on top of removing the component's variation."""
    keep = [i for i, x in enumerate(fit_samples) if x.attributes[attribute] is not None]
    return ComponentMeans.of(dec_fit.subset(torch.tensor(keep)))


def _fit_samples(s: Settings, config: ShapesConfig | None = None) -> list:
    return samples_of(ShapesWorld(s.fit_split, s.n_images, s.seed, config))


def _head_key(head) -> str:
    return f"L{head[0]}.H{head[1]}"


def run_heads(model, tokenizer, s: Settings, fit=None) -> tuple[dict, dict]:
    """TextSpan per head, duplicate texts, and zero-shot accuracy with heads replaced by their texts.

    fit: a `fit_textspan` result to reuse (the `all` command fits once for heads and roles).
    """
    dec_fit, results, texts = fit or fit_textspan(model, tokenizer, s)
    fit_samples, recon = _fit_samples(s), {}
    samples = samples_of(ShapesWorld(s.score_split, s.n_images, s.seed))
    dec = _decompose(model, samples, s)
    for attribute in ZEROSHOT_TEMPLATES:
        keep = [i for i, x in enumerate(samples) if x.attributes[attribute] is not None]
        clf = shapes_classifier(model, tokenizer, attribute)
        means = _population_means(dec_fit, fit_samples, attribute)
        recon[attribute] = reconstruction_accuracy(dec.subset(torch.tensor(keep)), results, means, clf,
                                                   labels_of([samples[i] for i in keep], attribute))
    dups = duplicate_texts(results)
    out = {
        "pool": {"spec": s.pool, "n_texts": len(texts)}, "rank": _rank(model, s),
        "layers": sorted({h[0] for h in results}),
        "heads": {_head_key(h): r.to_dict() for h, r in results.items()},
        "n_distinct_texts": len({t for r in results.values() for t in r.texts}),
        "duplicates": {t: [_head_key(h) for h in hs] for t, hs in dups.items()},
        "reconstruction_accuracy": recon,
    }
    return out, {"textspan": results}


def run_roles(model, tokenizer, s: Settings, fit=None) -> tuple[dict, dict]:
    """Per-head probes on the score split vs the attribute its TextSpan texts (fit split) name."""
    _, results, _ = fit or fit_textspan(model, tokenizer, s)
    samples = samples_of(ShapesWorld(s.score_split, s.n_images, s.seed))
    dec = _decompose(model, samples, s)
    skill = roles_mod.probe_heads(dec.heads, samples, s.seed)
    rows = roles_mod.role_table(skill, results)
    for row in rows:  # property-based retrieval with this head: which attribute do neighbours share?
        prec = roles_mod.retrieval_precision(dec.heads[:, row["layer"], row["head"]], samples, k=5)
        row["retrieval_precision_at_5"] = {a: v["precision_at_k"] for a, v in prec.items()}
        row["retrieval_chance"] = {a: v["chance"] for a, v in prec.items()}
    out = {
        "attributes": list(roles_mod.ROLE_ATTRIBUTES), "rows": rows,
        "agreement": roles_mod.agreement(rows), "agreement_skill_over_0.2": roles_mod.agreement(rows, 0.2),
        "probe": {"model": "StandardScaler + LogisticRegression", "test_fraction": 0.3,
                  "score": "chance-corrected accuracy (acc - majority) / (1 - majority)",
                  "object_attributes_on": "one-object images", "object_attributes": list(OBJECT_ATTRIBUTES)},
    }
    return out, {"skill": skill, "rows": rows}


def run_segment(model, tokenizer, s: Settings, n_examples: int = 4) -> tuple[dict, dict]:
    """Segmentation of all objects (mask > 0) from decomposition maps vs raw last-layer attention."""
    samples = samples_of(ShapesWorld(s.score_split, s.n_images, s.seed))
    dec = _decompose(model, samples, s)
    clf = shapes_classifier(model, tokenizer, "shape")
    masks = np.stack([x.mask > 0 for x in samples])
    maps = {"decomposition": decomposition_maps(dec, clf), "raw_attention": attention_maps(dec)}
    out = {"classifier": "shape", "n_images": len(samples), "foreground": "all objects (mask > 0)",
           "scores": {k: score_maps(v, masks) for k, v in maps.items()},
           "grid": list(dec.grid)}
    extras = {"images": [x.image for x in samples[:n_examples]], "masks": masks[:n_examples],
              "maps": {k: v[:n_examples] for k, v in maps.items()}}
    return out, extras


def run_ablate(model, tokenizer, s: Settings) -> tuple[dict, dict]:
    """The authors' mean-ablation table per Shapes attribute, means from the fit split's images
    of the scored population (_population_means)."""
    fit_samples = _fit_samples(s)
    dec_fit = _decompose(model, fit_samples, s)
    samples = samples_of(ShapesWorld(s.score_split, s.n_images, s.seed))
    dec = _decompose(model, samples, s)
    out, n_means = {}, {}
    for attribute in ZEROSHOT_TEMPLATES:
        keep = [i for i, x in enumerate(samples) if x.attributes[attribute] is not None]
        means = _population_means(dec_fit, fit_samples, attribute)
        n_means[attribute] = means.n_images
        out[attribute] = ablation_sweep(dec.subset(torch.tensor(keep)), means,
                                        shapes_classifier(model, tokenizer, attribute),
                                        labels_of([samples[i] for i in keep], attribute))
    return {"accuracy": out, "means_split": s.fit_split, "score_split": s.score_split,
            "means_images": n_means, "means_population": "fit-split images where the attribute is defined "
                                                          "(one-object images for object attributes)"}, {}


def run_spurious(model, tokenizer, s: Settings, n_heads: int | None = None, cue: str = "background",
                 n_random: int = 5) -> tuple[dict, dict]:
    """Mean-ablate heads whose texts describe the cue; shape accuracy per (shape, background) group."""
    config = ShapesConfig(spurious=True)
    dec_fit, results, _ = fit_textspan(model, tokenizer, s, config)
    heads = cue_heads(results, cue, n_heads)
    samples = samples_of(ShapesWorld(s.score_split, s.n_images, s.seed, config), single_object=True)
    dec = _decompose(model, samples, s)
    clf = shapes_classifier(model, tokenizer, "shape")
    means = _population_means(dec_fit, _fit_samples(s, config), "shape")  # shape: one-object images
    res = spurious_ablation(dec, means, clf, labels_of(samples, "shape"),
                            [x.group for x in samples], heads, sorted(results), n_random, s.seed)
    res.update({"cue": cue, "textspan": {_head_key(h): results[h].to_dict() for h in heads},
                "n_images_scored": len(samples), "n_groups": len(ATTRIBUTES["shape"]) * len(ATTRIBUTES["background"]),
                "note": "meaningful only for a model trained on ShapesConfig(spurious=True) train data"})
    return res, {}
