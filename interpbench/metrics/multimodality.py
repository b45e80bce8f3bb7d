"""Modality score, activation density, multimodal fraction, bridge diagonal and paired score.

On paired image-caption data (row b of the image batch is paired with row b of the text
batch), per feature i with non-negative activations a_i.

Marginal (per modality; re-pairing the rows changes none of these):
- energy_image_i = mean over images of a_i; energy_text_i likewise (Papadimitriou et al.).
- share_image_i = energy_image_i / sum_j energy_image_j: the feature's share of the image
  tower's activation mass (the mean L1 norm of the activation vector, since a >= 0);
  share_text_i likewise. Dividing by the tower's own mass makes every number below
  invariant to rescaling either tower by a positive constant.
- modality_score_i = share_image_i / (share_image_i + share_text_i): 1 image-only, 0
  text-only, 0.5 the same share of both towers' mass; NaN if the feature never fires.
  (Papadimitriou et al.'s E_img / (E_img + E_txt) on per-tower normalised activations;
  the two agree when both towers have the same total mass.)
- density_i (our definition of Sparse CLIP's "magnitude-weighted frequency"): the mean over
  the two towers of  sum_x a_i(x) / (N * max_x a_i(x))  in [0, 1] (0 for a tower where the
  feature never fires); equals the firing frequency over all 2N inputs when the feature fires
  at one magnitude per tower.
- multimodal_fraction = share of scored features whose modality score lies in the closed
  band [lo, hi] (default [0.1, 0.9]); a feature is scored when its score is defined and it
  is non-zero on at least n_min inputs (images and texts together). Non-zero, not > tau:
  tau is in activation units, and a count above it would change when a tower is rescaled.
- bridge_i = E_pairs[a_i(image) * a_i(text)] / (m_image * m_text), m the tower's mean L1
  norm: Papadimitriou et al.'s bridge matrix with D = I (sparse CLIP has no decoder),
  diagonal only, on per-tower normalised activations.

Paired (depends on which caption belongs to which image):
- paired_multimodality = mean over pairs b of
      cos(a(image_b), a(caption_b)) - mean_{c != b} cos(a(image_b), a(caption_c))
  The second term is the image's mean cosine with every other caption, which removes what
  any caption would share with the image (features that fire on everything), so chance is 0,
  without the randomness of one shuffled pairing. With u(x) = x / |x| and S = sum_c u(caption_c)
  over the M captions that have an active feature,
      mean_{c != b} cos(image_b, caption_c) = u(image_b) . (S - u(caption_b)) / (M - [caption_b active]),
  so one pass suffices once S and M are known: they are a sum over the captions, computed
  before the pass (`caption_unit_sum`) and handed to every update. A pair whose image or
  caption has no active feature is left out.
  The score splits over features: per_feature_i = mean_b u(image_b)_i [u(caption_b)_i -
  (S_i - u(caption_b)_i) / (M - 1)], summing to the score.
- Its shuffled-caption control replays the score with the captions re-paired by pi, a fixed
  seeded derangement (one cycle through all pairs, `pairing_derangement`):
      mean_b cos(a(image_b), a(caption_pi(b))) - mean_{c not in {b, pi(b)}} cos(a(image_b), a(caption_c))
  Leaving the true caption out of the reference mean makes its expectation over pi exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import ShapeMismatchError

from .inputs import Entries, to_entries


@dataclass
class MultimodalityResult:
    multimodal_fraction: float | None
    modality_score: np.ndarray  # [F], NaN where undefined
    density: np.ndarray  # [F]
    energy_image: np.ndarray  # [F] raw mean activation (not scale-free; for reference)
    energy_text: np.ndarray  # [F]
    bridge: np.ndarray  # [F] on per-tower normalised activations
    n_pairs: int
    n_scored: int  # features counted in the fraction
    scored: np.ndarray  # [F] bool, the features counted in the fraction


class MultimodalityAccumulator:
    _SUMS = ("sum_image", "sum_text", "nonzero_image", "nonzero_text", "bridge_sum", "n_pairs")
    _MAXES = ("max_image", "max_text")  # merge by max, not sum

    def __init__(self, n_features: int, n_min: int = 2):
        self.n_features, self.n_min = n_features, n_min
        for k in ("sum_image", "sum_text", "bridge_sum", *self._MAXES):
            setattr(self, k, torch.zeros(n_features, dtype=torch.float64))
        self.nonzero_image = torch.zeros(n_features, dtype=torch.int64)
        self.nonzero_text = torch.zeros(n_features, dtype=torch.int64)
        self.n_pairs = torch.zeros((), dtype=torch.int64)

    def update(self, image: Entries, text: Entries) -> None:
        _check_paired(image, text)
        for e, side in ((image, "image"), (text, "text")):
            vals = e.vals.double()
            getattr(self, f"sum_{side}").index_add_(0, e.cols, vals)
            getattr(self, f"nonzero_{side}").add_(torch.bincount(e.cols, minlength=self.n_features))
            getattr(self, f"max_{side}").scatter_reduce_(0, e.cols, vals, reduce="amax")
        a, b = _matches(image, text)
        prod = image.vals[a].double() * text.vals[b].double()
        self.bridge_sum.index_add_(0, image.cols[a], prod)
        self.n_pairs += image.n_rows

    def merge(self, other: MultimodalityAccumulator) -> None:
        if other.n_features != self.n_features:
            raise ShapeMismatchError(f"MultimodalityAccumulator.merge: {other.n_features} features; "
                                     f"expected {self.n_features}.")
        for k in self._SUMS:
            getattr(self, k).add_(getattr(other, k))
        for k in self._MAXES:
            torch.maximum(getattr(self, k), getattr(other, k), out=getattr(self, k))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).clone() for k in (*self._SUMS, *self._MAXES)}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if sd["sum_image"].shape != (self.n_features,):
            raise ShapeMismatchError(f"MultimodalityAccumulator.load_state_dict: {tuple(sd['sum_image'].shape)}"
                                     f" features; expected ({self.n_features},).")
        for k, v in sd.items():
            setattr(self, k, v.clone())

    def result(self, band: tuple[float, float] = (0.1, 0.9)) -> MultimodalityResult:
        n = int(self.n_pairs)
        nan = np.full(self.n_features, np.nan)
        if n == 0:
            return MultimodalityResult(None, nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), 0, 0,
                                       np.zeros(self.n_features, dtype=bool))
        s_img, s_txt = self.sum_image.numpy(), self.sum_text.numpy()
        share_img, share_txt = _share(s_img), _share(s_txt)
        total = share_img + share_txt
        score = np.where(total > 0, share_img / np.where(total > 0, total, 1.0), np.nan)
        density = 0.5 * (_ratio(s_img, n * self.max_image.numpy()) + _ratio(s_txt, n * self.max_text.numpy()))
        mass = s_img.sum() * s_txt.sum() / (n * n)  # product of the towers' mean L1 norms
        bridge = self.bridge_sum.numpy() / n / mass if mass > 0 else np.zeros(self.n_features)
        scored = ~np.isnan(score) & ((self.nonzero_image + self.nonzero_text).numpy() >= self.n_min)
        lo, hi = band
        inside = scored & (score >= lo) & (score <= hi)
        frac = float(inside.sum() / scored.sum()) if scored.any() else None
        return MultimodalityResult(frac, score, density, s_img / n, s_txt / n, bridge, n, int(scored.sum()), scored)


def _share(sums: np.ndarray) -> np.ndarray:
    """Each feature's share of one tower's activation mass (zeros if the tower never fires)."""
    mass = sums.sum()
    return sums / mass if mass > 0 else np.zeros_like(sums)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _check_paired(*batches: Entries) -> None:
    if len({e.n_rows for e in batches}) > 1:
        raise ShapeMismatchError(f"paired batches have {[e.n_rows for e in batches]} rows; expected paired rows "
                                 "(row b image <-> row b caption) with the same count in each.")


def _matches(a: Entries, b: Entries) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into a, into b) of the entries both batches have at the same (row, col)."""
    empty = torch.zeros(0, dtype=torch.int64)
    if a.vals.numel() == 0 or b.vals.numel() == 0:
        return empty, empty
    key_b, order = torch.sort(b.rows * b.n_cols + b.cols)
    key_a = a.rows * a.n_cols + a.cols
    pos = torch.searchsorted(key_b, key_a).clamp(max=key_b.numel() - 1)
    hit = key_b[pos] == key_a
    return torch.nonzero(hit).flatten(), order[pos[hit]]


def _row_norms(e: Entries) -> torch.Tensor:
    v = e.vals.double()
    return torch.zeros(e.n_rows, dtype=torch.float64).index_add_(0, e.rows, v * v).sqrt_()


def _cosines(image: Entries, text: Entries, n_img: torch.Tensor, n_txt: torch.Tensor):
    """Per row cos(image, text) (NaN where either is all zero) and the per-entry terms per feature."""
    a, b = _matches(image, text)
    rows = image.rows[a]
    term = image.vals[a].double() * text.vals[b].double() / (n_img[rows] * n_txt[rows])
    cos = torch.zeros(image.n_rows, dtype=torch.float64).index_add_(0, rows, term)
    cos[(n_img == 0) | (n_txt == 0)] = float("nan")
    return cos, rows, image.cols[a], term


@dataclass
class PairedResult:
    paired: float | None  # mean over valid pairs of cos(own caption) - mean cos(other captions); chance 0
    control: float | None  # the same with the captions re-paired by the derangement
    per_pair: np.ndarray  # [n] per-pair differences in pair-id order, NaN where undefined
    per_pair_control: np.ndarray  # [n]
    per_feature: np.ndarray  # [F] each feature's part of `paired` (sums to it)
    n_valid: int


def caption_unit_sum(text: Entries) -> tuple[torch.Tensor, int]:
    """(S, M): the sum of the unit caption vectors [F] (float64) and the number of captions
    with an active feature. Sums over batches add up, so a caller can build them chunk by chunk."""
    norms = _row_norms(text)
    s = torch.zeros(text.n_cols, dtype=torch.float64).index_add_(0, text.cols, text.vals.double() / norms[text.rows])
    return s, int((norms > 0).sum())


def _mean_other(image: Entries, n_img, s: torch.Tensor, m, leave_out: list[tuple[Entries, torch.Tensor]]):
    """Per row: u(image_b) . (S - sum of u(left-out captions)) / (M - their count), NaN where
    nothing is left to average; and the per-entry terms (rows, cols, term) of that mean."""
    inv = torch.where(n_img > 0, 1.0 / n_img.clamp_min(1e-300), torch.zeros_like(n_img))
    den = torch.full((image.n_rows,), float(m), dtype=torch.float64)
    for _cap, n_cap in leave_out:
        den -= (n_cap > 0).double()
    ok = den > 0
    scale = torch.where(ok, 1.0 / den.clamp_min(1.0), torch.zeros_like(den))
    rows, cols = [image.rows], [image.cols]
    terms = [image.vals.double() * inv[image.rows] * s[image.cols] * scale[image.rows]]
    for cap, n_cap in leave_out:
        a, b = _matches(image, cap)
        r = image.rows[a]
        rows.append(r)
        cols.append(image.cols[a])
        terms.append(-image.vals[a].double() * inv[r] * cap.vals[b].double() / n_cap[r] * scale[r])
    rows, cols, term = torch.cat(rows), torch.cat(cols), torch.cat(terms)
    mean = torch.zeros(image.n_rows, dtype=torch.float64).index_add_(0, rows, term)
    mean[~ok] = float("nan")
    return mean, rows, cols, term


class PairedAccumulator:
    """The paired multimodality score and its shuffled-caption control (module docstring).

    Keeps two floats per pair (for the bootstrap over pairs), so its state grows with N
    at 24 bytes a pair (id, value, control)."""

    def __init__(self, n_features: int):
        self.n_features = n_features
        self.part = torch.zeros(n_features, dtype=torch.float64)  # per-feature sums over valid pairs
        self._ids: list[torch.Tensor] = []
        self._diff: list[torch.Tensor] = []
        self._ctrl: list[torch.Tensor] = []
        self._next_id = 0

    def update(self, image: Entries, text: Entries, shuffled: Entries, caption_sum: tuple[torch.Tensor, int],
               ids: torch.Tensor | None = None) -> None:
        """text: each image's own caption; shuffled: the caption of pi(b); caption_sum: (S, M) of
        ALL captions of the data set (`caption_unit_sum`), the same for every batch; ids: [B]
        global pair ids (fix the bootstrap's order across shards; default: arrival order)."""
        _check_paired(image, text, shuffled)
        s, m = caption_sum
        if s.shape != (self.n_features,):
            raise ShapeMismatchError(f"PairedAccumulator.update: caption_sum has shape {tuple(s.shape)}; "
                                     f"expected ({self.n_features},).")
        ids = (torch.arange(self._next_id, self._next_id + image.n_rows) if ids is None
               else torch.as_tensor(np.asarray(ids)).long().flatten())
        if ids.numel():
            self._next_id = max(self._next_id, int(ids.max()) + 1)
        n_img, n_txt, n_shuf = (_row_norms(e) for e in (image, text, shuffled))
        s = s.double()
        cos_true, r1, c1, t1 = _cosines(image, text, n_img, n_txt)
        other, r2, c2, t2 = _mean_other(image, n_img, s, m, [(text, n_txt)])
        diff = cos_true - other
        valid = ~torch.isnan(diff)
        self.part.index_add_(0, c1[valid[r1]], t1[valid[r1]])
        self.part.index_add_(0, c2[valid[r2]], -t2[valid[r2]])
        cos_shuf = _cosines(image, shuffled, n_img, n_shuf)[0]
        other_shuf = _mean_other(image, n_img, s, m, [(text, n_txt), (shuffled, n_shuf)])[0]
        self._ids.append(ids.clone())
        self._diff.append(diff)
        self._ctrl.append(cos_shuf - other_shuf)

    def merge(self, other: PairedAccumulator) -> None:
        if other.n_features != self.n_features:
            raise ShapeMismatchError(f"PairedAccumulator.merge: {other.n_features} features; "
                                     f"expected {self.n_features}.")
        self.part.add_(other.part)
        self._ids += other._ids
        self._diff += other._diff
        self._ctrl += other._ctrl
        self._next_id = max(self._next_id, other._next_id)

    def state_dict(self) -> dict[str, torch.Tensor]:
        cat = lambda xs, dtype: torch.cat(xs) if xs else torch.zeros(0, dtype=dtype)  # noqa: E731
        return {"part": self.part.clone(), "ids": cat(self._ids, torch.int64), "diff": cat(self._diff, torch.float64),
                "ctrl": cat(self._ctrl, torch.float64), "next_id": torch.tensor(self._next_id)}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if sd["part"].shape != (self.n_features,):
            raise ShapeMismatchError(f"PairedAccumulator.load_state_dict: {tuple(sd['part'].shape)} features; "
                                     f"expected ({self.n_features},).")
        self.part = sd["part"].clone()
        self._ids, self._diff, self._ctrl = [sd["ids"].clone()], [sd["diff"].clone()], [sd["ctrl"].clone()]
        self._next_id = int(sd["next_id"])

    def result(self) -> PairedResult:
        if not self._ids:
            empty = np.zeros(0)
            return PairedResult(None, None, empty, empty, np.full(self.n_features, np.nan), 0)
        order = torch.argsort(torch.cat(self._ids), stable=True)  # pair-id order, whatever the shards
        diff, ctrl = torch.cat(self._diff)[order].numpy(), torch.cat(self._ctrl)[order].numpy()
        n_valid = int(np.isfinite(diff).sum())
        per_feature = self.part.numpy() / n_valid if n_valid else np.full(self.n_features, np.nan)
        return PairedResult(_nanmean(diff), _nanmean(ctrl), diff, ctrl, per_feature, n_valid)


def _nanmean(x: np.ndarray) -> float | None:
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else None


def pairing_derangement(n: int, seed: int = 0) -> np.ndarray | None:
    """pi: a seeded derangement of range(n) that is one cycle through all n pairs (so pi(b) != b);
    None below 3 pairs (the control's reference mean leaves out two captions)."""
    if n < 3:
        return None
    order = np.random.default_rng(seed).permutation(n)
    pi = np.empty(n, dtype=np.int64)
    pi[order] = np.roll(order, -1)
    return pi


def modality_scores(image_features, text_features, n_min: int = 2,
                    band: tuple[float, float] = (0.1, 0.9)) -> MultimodalityResult:
    """One call over paired [N, F] image and text activations (non-negative)."""
    n_features = int(image_features.shape[1])
    acc = MultimodalityAccumulator(n_features, n_min)
    acc.update(to_entries(image_features, "image_features", n_features),
               to_entries(text_features, "text_features", n_features))
    return acc.result(band)


def paired_multimodality(image_features, text_features, seed: int = 0) -> PairedResult:
    """One call: the paired score of [N, F] image and caption activations, row b paired with row b."""
    n, n_features = int(image_features.shape[0]), int(image_features.shape[1])
    pi = pairing_derangement(n, seed)
    if pi is None:
        return PairedAccumulator(n_features).result()
    txt = np.asarray(text_features) if not isinstance(text_features, torch.Tensor) else text_features
    image, text, shuffled = (to_entries(x, name, n_features) for x, name in (
        (image_features, "image_features"), (txt, "text_features"), (txt[pi], "shuffled_text")))
    acc = PairedAccumulator(n_features)
    acc.update(image, text, shuffled, caption_unit_sum(text))
    return acc.result()
