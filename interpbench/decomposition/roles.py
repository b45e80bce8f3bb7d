"""Head roles on Shapes: what a head's direct contribution encodes vs what its TextSpan texts say.

Ground truth: for every head and Shapes attribute, a linear probe (scikit-learn logistic
regression, fixed seed) on the head's direct contribution. Object attributes (shape, colour,
size, position) are probed on one-object images only, where they have a single value; count
and background on all images. Attributes differ in class count (size has 2, colour 8), so the
probe score is chance-corrected: skill = (acc - majority) / (1 - majority), 0 = no better than
always guessing the most frequent class, 1 = perfect.

Text side: each TextSpan text is mapped to the Shapes attributes whose words (any synonym,
whole words) it contains; a head's text attribute is the one with the largest share of the
variance its texts explain. Agreement = share of heads whose text attribute equals the
attribute its probes decode best, next to the agreement expected by chance from the two
marginal distributions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from interpbench.data.shapes import ATTRIBUTES, SYNONYMS
from interpbench.decomposition.textspan import TextSpanResult

Head = tuple[int, int]
ROLE_ATTRIBUTES = tuple(ATTRIBUTES)
_WORD_PATTERNS = {
    attribute: re.compile(r"\b(" + "|".join(re.escape(w) for v in values for w in SYNONYMS[v]) + r")\b",
                          re.IGNORECASE)
    for attribute, values in ATTRIBUTES.items()
}


def text_attributes(text: str) -> list[str]:
    """Shapes attributes whose words occur in `text` ("a red circle" -> ["shape", "color"])."""
    return [a for a, pattern in _WORD_PATTERNS.items() if pattern.search(text)]


def attribute_shares(result: TextSpanResult) -> dict[str, float]:
    """Share of the head's explained variance carried by texts of each attribute.

    A text naming k attributes splits its share evenly; texts naming none count as "other".
    """
    shares: Counter = Counter()
    for text, expl in zip(result.texts, result.explained, strict=True):
        attrs = text_attributes(text) or ["other"]
        for a in attrs:
            shares[a] += expl / len(attrs)
    total = sum(shares.values())
    return {a: v / total for a, v in shares.items()} if total > 0 else {}


def text_attribute(result: TextSpanResult) -> str | None:
    """The Shapes attribute the head's texts describe most (None when no text names one)."""
    shares = {a: s for a, s in attribute_shares(result).items() if a != "other"}
    return max(shares, key=shares.get) if shares else None


def attribute_labels(samples: Sequence, attribute: str) -> np.ndarray:
    """Integer value index per sample, -1 where the attribute has no single value."""
    values = ATTRIBUTES[attribute]
    return np.array([values.index(s.attributes[attribute]) if s.attributes[attribute] is not None else -1
                     for s in samples])


def probe_skill(features: np.ndarray, labels: np.ndarray, seed: int, test_fraction: float = 0.3,
                max_iter: int = 500) -> float:
    """Chance-corrected held-out accuracy of a logistic-regression probe (NaN if too few samples)."""
    keep = labels >= 0
    x, y = features[keep], labels[keep]
    n_test = int(round(len(y) * test_fraction))
    if len(y) < 10 or n_test < 2:
        return float("nan")
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:n_test], order[n_test:]
    majority = np.bincount(y[test]).max() / len(test)
    if len(np.unique(y[train])) < 2:
        acc = float(np.mean(y[test] == y[train][0]))
    else:
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
        probe.fit(x[train], y[train])
        acc = float(probe.score(x[test], y[test]))
    return float((acc - majority) / (1 - majority)) if majority < 1 else 0.0


def probe_heads(heads: torch.Tensor, samples: Sequence, seed: int,
                attributes: Sequence[str] = ROLE_ATTRIBUTES) -> np.ndarray:
    """Probe skill [L, H, A] of every head's direct contribution (heads: [B, L, H, d])."""
    x = heads.double().numpy()
    labels = [attribute_labels(samples, a) for a in attributes]
    B, L, H, _ = x.shape
    out = np.full((L, H, len(attributes)), np.nan)
    for layer in range(L):
        for head in range(H):
            for k, y in enumerate(labels):
                out[layer, head, k] = probe_skill(x[:, layer, head], y, seed)
    return out


def role_table(skill: np.ndarray, textspan: dict[Head, TextSpanResult],
               attributes: Sequence[str] = ROLE_ATTRIBUTES) -> list[dict]:
    """One row per head: probe skill per attribute, best attribute, TextSpan attribute, match."""
    rows = []
    L, H, _ = skill.shape
    for layer in range(L):
        for head in range(H):
            s = skill[layer, head]
            best = attributes[int(np.nanargmax(s))] if np.isfinite(s).any() else None
            res = textspan.get((layer, head))
            said = text_attribute(res) if res is not None else None
            rows.append({
                "layer": layer, "head": head,
                "probe_skill": {a: _r(v) for a, v in zip(attributes, s, strict=True)},
                "probe_best": best, "probe_best_skill": _r(np.nanmax(s)) if best else None,
                "textspan_attribute": said,
                "textspan_shares": {a: _r(v) for a, v in attribute_shares(res).items()} if res else None,
                "textspan_top_texts": res.texts[:5] if res else None,
                "agree": (said == best) if (said is not None and best is not None) else None,
            })
    return rows


def agreement(rows: list[dict], min_skill: float = 0.0) -> dict:
    """Agreement between probe-best and TextSpan attribute over heads that have both.

    min_skill: only heads whose best probe skill exceeds it (heads that decode nothing have no
    meaningful "best" attribute). `chance` is sum_a p_probe(a) * p_text(a) over those heads.
    """
    rel = [r for r in rows if r["agree"] is not None and (r["probe_best_skill"] or 0) > min_skill]
    if not rel:
        return {"n_heads": 0, "agreement": None, "chance": None, "min_skill": min_skill}
    p = Counter(r["probe_best"] for r in rel)
    t = Counter(r["textspan_attribute"] for r in rel)
    n = len(rel)
    chance = sum(p[a] * t[a] for a in p) / (n * n)
    return {"n_heads": n, "agreement": sum(r["agree"] for r in rel) / n, "chance": chance,
            "min_skill": min_skill}


def _r(v) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 4)


def nearest_images(vectors: torch.Tensor, query: int, k: int) -> tuple[list[int], list[float]]:
    """Property-based retrieval: the k images whose contribution from one head (vectors [B, d],
    e.g. dec.heads[:, layer, head]) has the largest dot product with the query image's."""
    scores = vectors @ vectors[query]
    scores[query] = -float("inf")
    top = scores.topk(min(k, len(scores) - 1))
    return top.indices.tolist(), top.values.tolist()


def retrieval_precision(vectors: torch.Tensor, samples: Sequence, k: int = 5,
                        attributes: Sequence[str] = ROLE_ATTRIBUTES) -> dict[str, dict]:
    """For each attribute: share of the k nearest images (by one head) that share the query's value,
    over queries where it is defined, against the same share for random images (`chance`)."""
    out = {}
    for a in attributes:
        y = attribute_labels(samples, a)
        valid = np.flatnonzero(y >= 0)
        if len(valid) <= k:
            continue
        sub = vectors[torch.as_tensor(valid)].double()
        scores = sub @ sub.T
        scores.fill_diagonal_(-float("inf"))  # a query is not its own neighbour
        idx = scores.topk(k, dim=1).indices.numpy()
        yv = y[valid]
        hits = (yv[idx] == yv[:, None]).mean(1)
        freq = np.bincount(y[valid]) / len(valid)
        out[a] = {"precision_at_k": round(float(np.mean(hits)), 4), "chance": round(float((freq ** 2).sum()), 4)}
    return out
