"""Removing a spurious cue by mean-ablating the heads whose TextSpan texts describe it.

The Waterbirds experiment of the TextSpan paper, on the Shapes spurious variant
(`ShapesConfig(spurious=True)`: in train, the first object's background follows its shape; in
the other splits they are independent; group = shape * 4 + background). Shape is classified
zero-shot on one-object images; we report average and worst-group accuracy before and after
mean-ablating the heads whose TextSpan texts are most about `cue` (default "background"),
against ablating the same number of random heads (best of `n_random` draws, as the authors).

Differences from the authors' script, on purpose: means come from a split other than the
scored one, and nothing else is ablated (their script also mean-ablates all MLPs and the early
layers). The procedure only means something for a model that picked up the cue, i.e. one
trained on the spurious train split.
"""

from __future__ import annotations

import numpy as np
import torch

from interpbench.decomposition.ablation import ComponentMeans, ablate, group_accuracy
from interpbench.decomposition.core import Decomposition
from interpbench.decomposition.roles import attribute_shares
from interpbench.decomposition.textspan import TextSpanResult

Head = tuple[int, int]


def cue_heads(textspan: dict[Head, TextSpanResult], cue: str = "background", n_heads: int | None = None,
              min_share: float = 0.5) -> list[Head]:
    """Heads ranked by the share of their TextSpan variance carried by `cue` texts.

    Returns the top `n_heads`, or (n_heads=None) every head whose cue share is at least min_share.
    """
    share = {h: attribute_shares(r).get(cue, 0.0) for h, r in textspan.items()}
    ranked = sorted((h for h in share if share[h] > 0), key=lambda h: -share[h])
    if n_heads is not None:
        return ranked[:n_heads]
    return [h for h in ranked if share[h] >= min_share]


def spurious_ablation(dec: Decomposition, means: ComponentMeans, classifier: torch.Tensor, labels, groups,
                      heads: list[Head], candidates: list[Head], n_random: int = 5, seed: int = 0) -> dict:
    """Accuracy (average, worst group) of base, cue-heads-ablated, and best-of-n random ablations.

    candidates: the heads random draws are taken from (the same layers TextSpan was run on).
    """
    base = group_accuracy(dec.total(), classifier, labels, groups)
    ours = group_accuracy(ablate(dec, means, heads=heads), classifier, labels, groups) if heads else base
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(n_random if heads else 0):
        pick = rng.choice(len(candidates), size=min(len(heads), len(candidates)), replace=False)
        chosen = [candidates[i] for i in pick]
        res = group_accuracy(ablate(dec, means, heads=chosen), classifier, labels, groups)
        trials.append({"heads": [list(h) for h in chosen], "average": res["average"],
                       "worst_group": res["worst_group"]})
    best = max(trials, key=lambda t: t["worst_group"]) if trials else None
    return {"ablated_heads": [list(h) for h in heads], "base": base, "ablated": ours,
            "random_best_of_n": best, "random_trials": trials, "n_random": n_random}

