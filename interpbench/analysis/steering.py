"""Do the labels cause what they claim? Feature steering and ablation (docs/analyses.md).

Label features of a class: the k features its prompts activate most through the text side
(the SAE applied to the text embedding, for SAEs), by default *relative to the other
classes of the same attribute* (activation minus the attribute's mean), so features every
prompt shares ("object", "a shape") do not count as the label of any one class.

Steering an image of true class y towards a target t != y (drawn uniformly, seeded):

    z' = z;  z'[L_k(y)] = 0;  z'[L_k(t)] = s * max_j z_j        (boost after suppress)

i.e. strength s sets each boosted feature to s times the image's own largest activation
before editing (s = 0: suppression only). z' is decoded to the embedding the zero-shot
classifier scores (codes.decoder_for) and classified. Only images the unedited model
classifies correctly enter the success rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interpbench.analysis.codes import Decoder, predict
from interpbench.analysis.intervals import grouped_interval
from interpbench.errors import BadSpecError, ShapeMismatchError
from interpbench.metrics.bootstrap import DEFAULT_B


def label_features(class_feats: torch.Tensor, k: int, contrast: bool = True) -> torch.Tensor:
    """[C, F] class prompt activations -> [C, k] indices of each class's label features."""
    if not 1 <= k <= class_feats.shape[1]:
        raise BadSpecError(f"top-k label features: k must be in [1, {class_feats.shape[1]}], got {k}")
    scores = class_feats - class_feats.mean(0, keepdim=True) if contrast else class_feats
    return scores.float().topk(k, dim=1).indices


def random_label_features(n_classes: int, n_features: int, k: int, seed: int) -> torch.Tensor:
    """The control: k distinct random features per class instead of its label features."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n_features, generator=g)[:k] for _ in range(n_classes)])


def random_targets(labels: torch.Tensor, n_classes: int, seed: int) -> torch.Tensor:
    """A uniformly drawn class other than the true one, per image."""
    g = torch.Generator().manual_seed(seed)
    return (labels + torch.randint(1, n_classes, labels.shape, generator=g)) % n_classes


def _mask(idx: torch.Tensor, n_features: int) -> torch.Tensor:
    return torch.zeros(idx.shape[0], n_features, dtype=torch.bool).scatter_(1, idx, True)


def edit_codes(z: torch.Tensor, suppress: torch.Tensor, boost: torch.Tensor | None = None,
               strength: float = 0.0, protect: torch.Tensor | None = None) -> torch.Tensor:
    """Zero features `suppress` [N, k] (except those in `protect` [N, k']), then set features
    `boost` [N, k] to strength * the row's max activation (taken before editing)."""
    top = z.max(dim=1).values
    drop = _mask(suppress, z.shape[1])
    if protect is not None:
        drop &= ~_mask(protect, z.shape[1])
    out = z.masked_fill(drop, 0.0)
    if boost is not None:
        out = out.scatter(1, boost, (strength * top)[:, None].expand(boost.shape).to(out.dtype))
    return out


def steering_curves(z: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor, decode: Decoder,
                    label_feats: torch.Tensor, strengths: Sequence[float], ks: Sequence[int],
                    seed: int = 0) -> dict:
    """Suppression / steering success per (k, s), and collateral damage per k.

    suppression[k][s]: share of correctly classified images no longer predicted as their class;
    steering[k][s]: share of them now predicted as the target;
    collateral[k]: accuracy (all images) before minus after zeroing the label features of a
    random other class, sparing the image's own class's label features.
    """
    labels, targets, correct = _setup(z, labels, classifier, decode, label_feats, max(ks), seed)
    yc, tc = labels[correct], targets[correct]
    n_classes = classifier.shape[1]
    out = {"n_images": int(z.shape[0]), "n_correct": int(correct.sum()), "n_classes": n_classes,
           "base_accuracy": float(correct.float().mean()), "chance": 1.0 / n_classes,
           "strengths": [float(s) for s in strengths], "suppression": {}, "steering": {}, "collateral": {}}
    for k in ks:
        lf = label_feats[:, :k]
        sup, steer = [], []
        for s in strengths:
            pred = _steered(z, correct, yc, tc, lf, s, decode, classifier)
            sup.append(float((pred != yc).float().mean()) if len(yc) else float("nan"))
            steer.append(float((pred == tc).float().mean()) if len(yc) else float("nan"))
        out["suppression"][str(k)], out["steering"][str(k)] = sup, steer
        after = predict(decode(edit_codes(z, lf[targets], protect=lf[labels])), classifier)
        out["collateral"][str(k)] = float(correct.float().mean() - (after == labels).float().mean())
    return out


def steering_hits(z: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor, decode: Decoder,
                  label_feats: torch.Tensor, k: int, strength: float, seed: int = 0) -> np.ndarray:
    """Per image: 1.0 if the edit at (k, strength) makes it predicted as its target, 0.0 if not,
    NaN if the unedited model misclassifies it. Its nanmean is steering_curves' steering[k][s]
    (same targets, same seed); the per-image form is what the bootstrap resamples."""
    labels, targets, correct = _setup(z, labels, classifier, decode, label_feats, k, seed)
    out = np.full(z.shape[0], np.nan)
    pred = _steered(z, correct, labels[correct], targets[correct], label_feats[:, :k], strength, decode, classifier)
    out[correct.numpy()] = (pred == targets[correct]).double().numpy()
    return out


def _setup(z, labels, classifier, decode, label_feats, k_max, seed):
    """(labels, seeded targets, correctly classified mask) after checking the inputs."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    if z.shape[0] != labels.shape[0]:
        raise ShapeMismatchError(f"{z.shape[0]} codes but {labels.shape[0]} labels")
    if k_max > label_feats.shape[1]:
        raise BadSpecError(f"k = {k_max} needs at least that many label features per class")
    targets = random_targets(labels, classifier.shape[1], seed)
    return labels, targets, predict(decode(z), classifier) == labels


def _steered(z, correct, yc, tc, lf, s, decode, classifier):
    """Predictions for the correctly classified images after suppress-then-boost at strength s."""
    if not len(yc):
        return yc
    rows = torch.nonzero(correct).flatten()
    return predict(decode(edit_codes(z[correct], lf[yc], lf[tc], float(s)), rows), classifier)


def ablation_faithfulness(z: torch.Tensor, decode: Decoder, word_text: torch.Tensor, labelled: torch.Tensor,
                          seed: int = 0, max_pairs: int = 20000, chunk: int = 2048, n_min: int = 3,
                          b: int = DEFAULT_B) -> dict:
    """Removing a feature vs removing a random other active feature, measured on its label word.

    For (image i, labelled feature f active on i): drop = cos(D(z_i), w_f) - cos(D(z_i - z_if e_f), w_f),
    with w_f the label word's text embedding in the zero-shot space; the random drop removes a
    random other feature active on i instead, still scored against w_f. Returns the pooled
    ratio mean(drop_label) / mean(drop_random) (None when the random drop is not positive:
    removing a random feature often *raises* the similarity, and a ratio to a non-positive
    number means nothing), the win rate (share of pairs whose label drop exceeds the random
    drop; 0.5 = no better than random) and the share of features (>= n_min pairs) whose own
    mean drop beats the random one. `win_rate_interval` and `ratio_interval`: 95% bootstrap
    over images (b resamples, seeded; a pair counts as often as its image is drawn).
    """
    pairs = _pairs(z, labelled, seed, max_pairs)
    if pairs is None:
        return {"n_pairs": 0, "ratio": None, "win_rate": None, "mean_drop_label": None, "mean_drop_random": None,
                "share_features_label_beats_random": None, "n_features": 0, "win_rate_interval": None,
                "ratio_interval": None}
    i, f, g = pairs
    own, rnd = [], []
    for a in range(0, len(i), chunk):
        bi, bf, bg = i[a:a + chunk], f[a:a + chunk], g[a:a + chunk]
        own_d, rnd_d = _drops(z, decode, word_text, bi, bf, bg)
        own.append(own_d)
        rnd.append(rnd_d)
    own, rnd = torch.cat(own).double(), torch.cat(rnd).double()
    per_f = _per_feature(f, own, rnd, n_min)
    mean_rnd = float(rnd.mean())
    win, o, r = (own > rnd).double().numpy(), own.numpy(), rnd.numpy()
    n_img = z.shape[0]
    return {"n_pairs": int(len(i)), "mean_drop_label": float(own.mean()), "mean_drop_random": mean_rnd,
            "ratio": float(own.mean()) / mean_rnd if mean_rnd > 0 else None,
            "win_rate": float(win.mean()),
            "share_features_label_beats_random": per_f[0], "n_features": per_f[1],
            "win_rate_interval": grouped_interval(i.numpy(), n_img, lambda w: (w @ win) / w.sum(), b, seed),
            "ratio_interval": grouped_interval(i.numpy(), n_img, lambda w: _ratio(w @ o, w @ r), b, seed)}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _pairs(z, labelled, seed, max_pairs):
    """(image, feature, random other active feature) triples, at most max_pairs, seeded."""
    active = z > 0
    ii, ff = torch.nonzero(active & labelled[None, :], as_tuple=True)
    if len(ii) == 0:
        return None
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(ii))[:max_pairs]
    keep.sort()
    ii, ff = ii[keep].numpy(), ff[keep].numpy()
    row_active = {int(r): np.flatnonzero(active[r].numpy()) for r in np.unique(ii)}
    out_i, out_f, out_g = [], [], []
    for r, f in zip(ii, ff, strict=True):
        others = row_active[int(r)]
        others = others[others != f]
        if len(others):  # a lone active feature has no random counterpart
            out_i.append(r), out_f.append(f), out_g.append(int(others[rng.integers(len(others))]))
    if not out_i:
        return None
    return torch.tensor(out_i), torch.tensor(out_f), torch.tensor(out_g)


def _drops(z, decode, word_text, bi, bf, bg):
    rows = z[bi]
    ar = torch.arange(len(bi))
    w = torch.nn.functional.normalize(word_text[bf].float(), dim=-1)

    def cos(codes):
        return (torch.nn.functional.normalize(decode(codes, bi).float(), dim=-1) * w).sum(-1)

    base = cos(rows)
    own, rnd = rows.clone(), rows.clone()
    own[ar, bf] = 0.0
    rnd[ar, bg] = 0.0
    return base - cos(own), base - cos(rnd)


def _per_feature(f, own, rnd, n_min):
    feats, inv, counts = torch.unique(f, return_inverse=True, return_counts=True)
    o = torch.zeros(len(feats), dtype=torch.float64).index_add_(0, inv, own) / counts
    r = torch.zeros(len(feats), dtype=torch.float64).index_add_(0, inv, rnd) / counts
    ok = counts >= n_min
    if not ok.any():
        return None, 0
    return float((o[ok] > r[ok]).double().mean()), int(ok.sum())


def steerability(per_attribute: dict, k_ref: int, s_ref: float) -> float | None:
    """Mean over attributes of steering success at (k_ref, s_ref) minus the random-feature control's."""
    vals = []
    for res in per_attribute.values():
        j = res["label"]["strengths"].index(float(s_ref))
        a, b = res["label"]["steering"][str(k_ref)][j], res["control"]["steering"][str(k_ref)][j]
        if a == a and b == b:  # skip NaN (no correctly classified image)
            vals.append(a - b)
    return float(np.mean(vals)) if vals else None
