"""Duplicate features: groups of features that fire on nearly the same images.

Feature f's activating set is A_f = {images i : z_if > tau}. Two features are linked when
the Jaccard index |A_f ∩ A_g| / |A_f ∪ A_g| exceeds `threshold`; groups are the connected
components (scipy) of that graph with two or more members. Only features active on at
least `n_min` images take part (a feature firing once is trivially "identical" to any
other lone feature). Where a decoder exists (SAEs) each group also gets the mean pairwise
cosine of its decoder atoms; where labels exist, whether all members share the top label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from interpbench.metrics.bootstrap import DEFAULT_B, mean_interval


def jaccard_pairs(z: torch.Tensor, threshold: float, tau: float = 0.0, n_min: int = 5,
                  chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alive feature ids, pair rows, pair cols) with Jaccard > threshold; pairs index `alive`."""
    a = (z > tau).float()
    counts = a.sum(0)
    alive = torch.nonzero(counts >= n_min).flatten()
    a, counts = a[:, alive], counts[alive]
    rows, cols = [], []
    for s in range(0, len(alive), chunk):  # [chunk, A] blocks keep memory at O(chunk * A)
        inter = a[:, s:s + chunk].T @ a
        union = counts[s:s + chunk, None] + counts[None, :] - inter
        jac = inter / union.clamp_min(1)
        r, c = torch.nonzero(jac > threshold, as_tuple=True)
        r = r + s
        keep = r < c
        rows.append(r[keep].numpy()), cols.append(c[keep].numpy())
    return alive.numpy(), np.concatenate(rows or [np.zeros(0, int)]), np.concatenate(cols or [np.zeros(0, int)])


def duplicate_groups(z: torch.Tensor, threshold: float = 0.9, tau: float = 0.0, n_min: int = 5,
                     w_dec: torch.Tensor | None = None, top_labels: Sequence[str | None] | None = None,
                     b: int = DEFAULT_B, seed: int = 0) -> dict:
    """Groups (largest first) and summary shares; see the module docstring.

    `share_interval`: 95% bootstrap of share_in_groups over the active features (each one
    in a group or not; groups held fixed). Features, not images, are resampled: the share is
    a mean over features, and regrouping on every image resample would cost b Jaccard passes.
    """
    alive, r, c = jaccard_pairs(z, threshold, tau, n_min)
    n = len(alive)
    groups = []
    if n and len(r):
        graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        for g in np.unique(comp):
            members = alive[comp == g]
            if len(members) > 1:
                groups.append(_describe(members, w_dec, top_labels))
    groups.sort(key=lambda g: (-len(g["features"]), g["features"][0]))
    in_groups = sum(len(g["features"]) for g in groups)
    labelled = [g for g in groups if g["same_label"] is not None]
    member = np.isin(alive, [f for g in groups for f in g["features"]]).astype(np.float64)
    return {"threshold": threshold, "tau": tau, "n_min": n_min, "n_alive": int(n), "n_groups": len(groups),
            "n_in_groups": int(in_groups), "share_in_groups": in_groups / n if n else None,
            "share_interval": mean_interval(member, b, seed) if n and b else None,
            "share_groups_same_label": (sum(g["same_label"] for g in labelled) / len(labelled)) if labelled else None,
            "groups": groups}


def _describe(members: np.ndarray, w_dec, top_labels) -> dict:
    out = {"features": [int(m) for m in members], "decoder_cosine": None, "labels": None, "same_label": None}
    if w_dec is not None:
        atoms = torch.nn.functional.normalize(w_dec[torch.as_tensor(members)].double(), dim=1)
        cos = atoms @ atoms.T
        m = len(members)
        out["decoder_cosine"] = float((cos.sum() - cos.diagonal().sum()) / (m * (m - 1)))
    if top_labels is not None:
        labels = [top_labels[m] for m in members]
        out["labels"] = labels
        if all(lab is not None for lab in labels):
            out["same_label"] = len(set(labels)) == 1
    return out


def duplicate_lines(dup: dict, n: int = 10) -> list[str]:
    """One line of text per group (largest first): size, members, label counts, decoder cosine."""
    lines = []
    for g in dup["groups"][:n]:
        cos = f"; decoder cos {g['decoder_cosine']:.2f}" if g["decoder_cosine"] is not None else ""
        more = f" +{len(g['features']) - 6}" if len(g["features"]) > 6 else ""
        lines.append(f"{len(g['features'])} features {g['features'][:6]}{more}: {_label_counts(g['labels'])}{cos}")
    return lines


def _label_counts(labels: list | None, n: int = 4) -> str:
    """'red x3, blue x1' for the members' top labels (the n most common)."""
    if not labels:
        return "no labels"
    common = Counter("(none)" if w is None else str(w) for w in labels).most_common()
    text = ", ".join(f"{w} x{c}" for w, c in common[:n])
    return text + (f", +{len(common) - n} more" if len(common) > n else "")
