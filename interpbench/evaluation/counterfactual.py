"""Counterfactual selectivity on Shapes: the interventional step of `interpbench evaluate`.

Renders `settings.cf_scenes` one-object scenes and each scene with one attribute changed
(`data.counterfactual`), runs the representation over them through the activation cache,
labels features with a Shapes concept and scores `metrics.selectivity`, two ways:

- `cf_selectivity`: a feature's label is the concept its top vocabulary word names
  (`data.shapes.word_concepts`: the word or a synonym); features whose top word names no
  concept are not scored. This tests the label the benchmark hands out. Needs a text tower.
- `cf_selectivity_gt`: a feature's label is its best ground-truth concept by AUROC on the
  evaluation images (`gt_best_concept` of the suite), if that AUROC is >= GT_MIN_AUROC;
  any representation, text or not.
  The labels are chosen on the `eval` images and tested on held-out `test` scenes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from interpbench.data.counterfactual import CounterfactualSource, concept_attributes
from interpbench.data.shapes import CONCEPTS, word_concepts
from interpbench.extraction.extract import extract_images, iter_image_chunks
from interpbench.metrics.bootstrap import interval_record
from interpbench.metrics.selectivity import INTERVAL_METHOD, MIN_CHANGES, counterfactual_selectivity

# A ground-truth label needs the feature to detect its concept at least halfway from chance
# (AUROC 0.5) to perfect: below that the "label" is mostly noise, and a feature would be
# scored against a concept it does not carry.
GT_MIN_AUROC = 0.75


def counterfactual_selectivity_step(rep, source, labels, per_feature, settings, ctx,
                                    routes: dict | None = None) -> tuple[dict, dict, dict]:
    """(metrics, intervals, per-feature arrays); all empty off Shapes or with cf_scenes = 0.
    routes: route -> labels (evaluation.label_routes); each route's score is keyed
    "cf_selectivity@route" (one extraction of the pairs serves every labelling)."""
    if settings.cf_scenes <= 0 or not hasattr(source, "world"):
        return {}, {}, {}
    cf = CounterfactualSource(settings.cf_scenes, settings.seed)
    labellings = {"cf_selectivity": vocabulary_concepts(labels, rep.n_features),
                  "cf_selectivity_gt": ground_truth_concepts(per_feature, rep.n_features),
                  **{f"cf_selectivity@{r}": vocabulary_concepts(lab, rep.n_features) for r, lab in (routes or {}).items()}}
    labellings = {k: v for k, v in labellings.items() if v is not None}
    cols = np.flatnonzero(np.any([fc >= 0 for fc in labellings.values()], axis=0)) if labellings else []
    acts = _features(rep, cf, settings, ctx, cols)  # [items, labelled features]
    base, edited, scene = cf.pairs()
    toggled, groups = cf.toggled(), concept_attributes()
    metrics, intervals, per = {"cf_pairs": len(base), "cf_min_changes": MIN_CHANGES}, {}, {}
    for key, fc in labellings.items():
        r = counterfactual_selectivity(acts[base], acts[edited], toggled, groups, fc[cols], units=scene,
                                       seed=settings.seed)
        name, _, route = key.partition("@")
        metrics.update({key: r.mean, f"{name}_n" + (f"@{route}" if route else ""): r.n_scored})
        per[key] = np.full(rep.n_features, np.nan, dtype=np.float32)
        per[key][cols] = r.per_feature
        if r.interval is not None:
            intervals[key] = interval_record(r.interval, INTERVAL_METHOD, seed=settings.seed, kind="centred")
    return metrics, intervals, per


def vocabulary_concepts(labels, n_features: int) -> np.ndarray | None:
    """[F] concept index named by each feature's top vocabulary word (-1 none); None without labels."""
    if labels is None:
        return None
    names = word_concepts()
    index = {c: i for i, c in enumerate(CONCEPTS)}
    out = np.full(n_features, -1, dtype=np.int64)
    for f, w in enumerate(labels["labels"].top):
        concept = names.get(" ".join(labels["words"][w].lower().split())) if w >= 0 else None
        out[f] = index[concept] if concept else -1
    return out


def ground_truth_concepts(per_feature: dict, n_features: int, min_auroc: float = GT_MIN_AUROC) -> np.ndarray | None:
    """[F] best-AUROC concept per feature (-1 below min_auroc) from the suite's per-feature
    arrays; None if they are absent."""
    best, auroc = per_feature.get("gt_best_concept"), per_feature.get("gt_best_auroc")
    if best is None or auroc is None or len(best) != n_features:
        return None
    concept = np.rint(np.asarray(best, dtype=np.float64)).astype(np.int64)
    with np.errstate(invalid="ignore"):
        concept[~(np.asarray(auroc, dtype=np.float64) >= min_auroc)] = -1  # NaN AUROC: no label either
    return concept


def _features(rep, cf, settings, ctx, cols) -> sp.csr_matrix:
    """[len(cf), len(cols)] activations of the chosen features (scipy CSR: at 55,296 features a
    dense copy of 1,000 scenes is 0.2 GB per copy), via the activation cache.

    Every process extracts all items (no shard): the set is small, and each rank then
    scores the same pairs.
    """
    from interpbench.evaluation.steps import ctx_task

    advance = ctx_task(ctx, f"counterfactual pairs {rep.meta.name}", len(cf))
    cache = extract_images(rep, cf, ctx.cache_dir, batch_size=settings.batch_size,
                           chunk_size=settings.chunk_size, device=ctx.device, progress=advance)
    cols = np.asarray(cols, dtype=np.int64)
    blocks = [sp.csr_matrix((f.values().numpy(), f.col_indices().numpy(), f.crow_indices().numpy()), shape=tuple(f.shape))
              for f, _ in iter_image_chunks(cache, rep.n_features, sparse=True)]
    return sp.vstack(blocks, format="csr")[:, cols]
