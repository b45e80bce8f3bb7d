"""What feature cards and word search need, produced in the evaluation flow.

A card shows a feature's top images, its mean activation and how many images it is active
on; search scores images by the summed activation of the features labelled with a word and
lists each image's strongest labelled features. All of it reads every image's activations,
so `evaluated_record` stores them once with the results, as the `.cards.safetensors`
sidecar (CSR rows in the order the cache holds them). interpbench.leaderboard.explore then
renders from the results folder alone: no model, no activation cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from interpbench.extraction.extract import iter_image_chunks


def card_activations(cache, n_features: int) -> dict[str, np.ndarray]:
    """Every image's non-zero activations as CSR arrays: indptr [N+1], indices, values, and
    image_index [N] (the data-set index of each row)."""
    counts, cols, vals, index = [], [], [], []
    for feats, t in iter_image_chunks(cache, n_features):
        nz = feats != 0
        counts.append(nz.sum(1))
        cols.append(torch.nonzero(nz, as_tuple=True)[1])  # row-major: grouped by image, as CSR needs
        vals.append(feats[nz].float())
        index.append(t["index"].long())
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(_cat(counts, torch.int64), 0)])
    return {"indptr": indptr.numpy(), "indices": _cat(cols, torch.int64).numpy(),
            "values": _cat(vals, torch.float32).numpy(), "image_index": _cat(index, torch.int64).numpy(),
            "n_features": np.array([n_features], dtype=np.int64)}


def _cat(parts: list[torch.Tensor], dtype) -> torch.Tensor:
    return torch.cat(parts).to(dtype) if parts else torch.zeros(0, dtype=dtype)


def evaluated_record(spec: str, settings, ctx, results_dir: Path) -> dict:
    """The model's results record for these settings, with its card sidecar.

    Evaluates first (writing results) if the folder has no record; adds the sidecar from the
    activation cache that evaluation filled if the record has none."""
    from interpbench.adapters import load_representation
    from interpbench.data import load_source
    from interpbench.evaluation import steps
    from interpbench.evaluation.runner import evaluate_model
    from interpbench.results.store import find_record, write_cards, write_result

    record = find_record(results_dir, {spec}, settings.record())
    if record is not None and record.get("cards_file"):
        return record  # everything is stored: no model to load
    rep = load_representation(spec, offline=ctx.offline)
    specs = {spec, rep.meta.spec}
    record = find_record(results_dir, specs, settings.record())
    if record is None:
        rec, per_feature, labels = evaluate_model(spec, settings, ctx)
        write_result(results_dir, rec, per_feature, labels)
        record = find_record(results_dir, specs, settings.record())
    if not record.get("cards_file"):
        source = load_source(settings.dataset, settings.n_images, settings.seed, settings.skip_unreadable)
        cache = steps.extract(rep, source, settings, ctx)  # a cache hit: evaluation filled it
        record = write_cards(record, card_activations(cache, rep.n_features))
    return record
