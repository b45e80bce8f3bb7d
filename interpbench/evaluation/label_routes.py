"""Vocabulary labels by every route a representation allows, and the label metrics of each.

Three routes name a feature with vocabulary words (docs/metrics.md#label-routes):

- `text`: the words through the representation's own text tower; a feature's top words by
  activation (Sparse CLIP Sec. 4.1). Only representations with a text side.
- `decoder`: an SAE's decoder atom mapped into CLIP's joint space along the direct path
  (`adapters.direct_path`), then the nearest words by cosine with the base CLIP's text
  embeddings (Discover-then-Name). Any SAE, on any hook.
- `images`: the words whose judge text embedding is nearest to the mean judge embedding of the
  feature's top-n images (SemanticLens). Any representation; computed from the metric pass's
  own top-n state.

The primary labels (the record's top-level label metrics, `.labels.json`, explore) are the first
route that exists in PRIORITY: a text side is the representation's own way to name things; the
decoder route uses the model's weights and no judge; the image route reads the judge, so its
label correlation against that judge is partly circular and it comes last. Every route gets the
same label metrics (labelled share, label correlation with an interval, GT label accuracy, CF
selectivity), stored in `record["label_routes"]` beside the primary ones.
"""

from __future__ import annotations

import numpy as np

PRIORITY = ("text", "decoder", "images")
ROUTE_OF_SOURCE = {"text_tower": "text", "decoder": "decoder", "images": "images"}
# the label metrics every route gets; the primary route's are also the record's top-level ones
LABEL_KEYS = ("labelled_pct", "label_corr_mean", "label_corr_median", "label_corr_share", "label_corr_n",
              "label_corr_matched", "label_corr_matched_n", "gt_label_accuracy", "cf_selectivity", "cf_selectivity_n")
INTERVAL_KEYS = ("label_corr_mean", "label_corr_matched", "gt_label_accuracy", "cf_selectivity")
# what MetricSuite.label_metrics gives one set of labels (MetricSuite.finalize gives the same keys)
ROUTE_METRICS = ("labelled_pct", "label_corr_mean", "label_corr_median", "label_corr_share", "label_corr_n",
                 "label_corr_matched", "label_corr_matched_n", "gt_label_accuracy")


def has_decoder(rep) -> bool:
    return getattr(rep, "sae", None) is not None and getattr(rep, "hook", None) is not None


def before_suite(rep, words: list[str], settings, ctx) -> dict[str, dict]:
    """route -> {"words", "labels"} for the routes known before the metric pass (text, decoder)."""
    from interpbench.evaluation import steps

    out = {}
    if rep.meta.has_text:
        out["text"] = steps.vocabulary_labels(rep, words, settings, ctx)
    if has_decoder(rep):
        out["decoder"] = decoder_route(rep, words, settings, ctx)
    return out


def decoder_route(rep, words: list[str], settings, ctx) -> dict:
    """Decoder-route labels: atoms along the direct path vs the base CLIP's word embeddings."""
    from interpbench.adapters.direct_path import decoder_directions
    from interpbench.evaluation.steps import ctx_task
    from interpbench.metrics.labels import decoder_labels
    from interpbench.vocab import encode_vocab

    base = rep.base
    advance = ctx_task(ctx, f"encode vocabulary for the decoder route ({len(words)} words)", len(words))
    emb = encode_vocab(base.encode_text_embedding, words, ctx.cache_dir,
                       {"model": base.meta.fingerprint, "spec": base.meta.spec, "what": "embedding"},
                       template=settings.template, sparse=False, progress=advance)
    return {"words": words, "labels": decoder_labels(emb, decoder_directions(rep), k=settings.top_k_words)}


SHUFFLED = "-shuffled"  # route name suffix of the shuffled-labels control of a route


def shuffled_labels(labels, seed: int):
    """The shuffled-labels control of a route: the same label lists handed to other features
    (a seeded permutation among the labelled features). It keeps every word's share and each
    feature's activations, and breaks only which feature carries which words, so labels that
    describe their features must score above it on every label metric."""
    from interpbench.metrics.labels import FeatureLabels

    lab = np.flatnonzero(labels.labelled)
    perm = np.random.default_rng(seed).permutation(lab)
    ids, scores = labels.word_ids.copy(), labels.scores.copy()
    ids[lab], scores[lab] = labels.word_ids[perm], labels.scores[perm]
    return FeatureLabels(ids, scores, labels.source)


def is_shuffled(route: str) -> bool:
    return route.endswith(SHUFFLED)


def primary_route(routes: dict) -> str:
    return next(r for r in PRIORITY if r in routes or r == "images")


def after_suite(suite, routes: dict[str, dict], words: list[str], vjudge,
                scored: tuple[dict | None, dict, dict] | None = None) -> tuple[dict, dict]:
    """Add the image route to `routes` (in place); (route -> label metrics, route -> per-feature
    arrays) for every route, from the suite's streamed state (after its finalize). scored:
    (labels, metrics, per_feature) of the finalize that already scored those labels: their
    numbers are taken from it, not computed again (label correlation is a [F, d] pass)."""
    if vjudge is not None:
        routes["images"] = {"words": words, "labels": suite.image_labels(vjudge)}
    for route in [r for r in PRIORITY if r in routes]:
        routes[route + SHUFFLED] = {"words": words, "labels": shuffled_labels(routes[route]["labels"], suite.cfg.seed)}
    metrics, per = {}, {}
    for route, lab in routes.items():
        if scored is not None and lab is scored[0]:
            metrics[route] = {k: scored[1][k] for k in ROUTE_METRICS if k in scored[1]}
            per[route] = {k: scored[2][k] for k in ("label_corr",) if k in scored[2]}
        else:
            metrics[route], per[route] = suite.label_metrics(lab["labels"], words, vjudge)
    return metrics, per


def merge_routes(primary, route_metrics: dict, route_intervals: dict, cf: tuple[dict, dict], metrics: dict,
                 intervals: dict) -> None:
    """Add the counterfactual step's per-route numbers (cf = (route -> metrics, route -> intervals))
    and give the primary route the record's own numbers (computed once, not per route); in place."""
    for part, into in zip(cf, (route_metrics, route_intervals), strict=True):
        for r, values in part.items():
            into.setdefault(r, {}).update(values)
    if primary is not None:
        route_metrics[primary].update({k: metrics[k] for k in ("cf_selectivity", "cf_selectivity_n") if k in metrics})
        route_intervals[primary] = {k: intervals[k] for k in INTERVAL_KEYS if k in intervals}


def agreement(routes: dict[str, dict], concept_of_word=None) -> dict[str, dict]:
    """"a~b" -> {"share", "n"} for every pair of routes: among features both routes label (with a
    word that names a concept, when `concept_of_word` is given), the share whose top words name
    the same concept (same word without it)."""
    names = [r for r in PRIORITY if r in routes]
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ka, kb = (_top_keys(routes[r], concept_of_word) for r in (a, b))
            both = [(x, y) for x, y in zip(ka, kb, strict=True) if x is not None and y is not None]
            out[f"{a}~{b}"] = {"share": float(np.mean([x == y for x, y in both])) if both else None,
                               "n": len(both)}
    return out


def _top_keys(route: dict, concept_of_word) -> list:
    words = route["words"]
    out = []
    for w in route["labels"].top.tolist():
        word = " ".join(words[w].lower().split()) if w >= 0 else None
        out.append(word if concept_of_word is None or word is None else concept_of_word.get(word))
    return out


def record(primary: str, route_metrics: dict, route_intervals: dict, agree: dict, unavailable: dict) -> dict:
    """record["label_routes"] (docs/results-schema.md)."""
    def entry(r: str) -> dict:
        return {"metrics": {k: route_metrics[r].get(k) for k in LABEL_KEYS if k in route_metrics[r]},
                "intervals": route_intervals.get(r, {})}

    return {"primary": primary,
            "routes": {r: entry(r) for r in PRIORITY if r in route_metrics},
            # route -> the same metrics with the route's labels shuffled among its features
            "shuffled": {r: entry(r + SHUFFLED) for r in PRIORITY if r + SHUFFLED in route_metrics},
            "agreement": agree, "unavailable": unavailable}


def unavailable_routes(rep, words_judge_ok: bool) -> dict[str, str]:
    """route -> why it has no labels for this representation."""
    out = {}
    if not rep.meta.has_text:
        out["text"] = "image-only: no text tower"
    if not has_decoder(rep):
        out["decoder"] = "no decoder: not an SAE"
    if not words_judge_ok:
        out["images"] = "the judge cannot embed words"
    return out


def split_route_keys(values: dict) -> tuple[dict, dict[str, dict]]:
    """{"key@route": v, "key": w} -> ({"key": w}, {route: {"key": v}})."""
    plain, by_route = {}, {}
    for k, v in values.items():
        if "@" in k:
            key, route = k.split("@", 1)
            by_route.setdefault(route, {})[key] = v
        else:
            plain[k] = v
    return plain, by_route
