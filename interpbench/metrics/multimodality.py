"""Modality score, activation density, multimodal fraction and the decoder-free bridge diagonal.

On paired image-caption data (row b of the image batch is paired with row b of the text
batch), per feature i with non-negative activations a_i:
- energy_image_i = mean over images of a_i; energy_text_i likewise (Papadimitriou et al.).
- modality_score_i = E_img / (E_img + E_txt): 1 image-only, 0 text-only; NaN if both are 0.
- density_i (our definition of Sparse CLIP's "magnitude-weighted frequency"):
      sum over all 2N inputs of a_i / (2N * max a_i)      in [0, 1], 0 if never active.
  It equals the plain firing frequency when the feature always fires at one magnitude,
  and is scale-free (unlike energy), so features of different scale compare.
- multimodal_fraction = share of scored features whose modality score lies in the closed
  band [lo, hi] (default [0.1, 0.9]); a feature is scored when its score is defined and
  it exceeds tau on at least n_min inputs (images and texts together).
- bridge_i = E_pairs[a_i(image) * a_i(text)]: Papadimitriou et al.'s bridge matrix with
  D = I (sparse CLIP has no decoder), diagonal only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import ShapeMismatchError

from ._inputs import Entries, to_entries


@dataclass
class MultimodalityResult:
    multimodal_fraction: float | None
    modality_score: np.ndarray  # [F], NaN where undefined
    density: np.ndarray  # [F]
    energy_image: np.ndarray  # [F]
    energy_text: np.ndarray  # [F]
    bridge: np.ndarray  # [F]
    n_pairs: int
    n_scored: int  # features counted in the fraction


class MultimodalityAccumulator:
    _KEYS = ("sum_image", "sum_text", "count_image", "count_text", "bridge_sum", "n_pairs")

    def __init__(self, n_features: int, tau: float = 0.001, n_min: int = 2):
        self.n_features, self.tau, self.n_min = n_features, tau, n_min
        self.sum_image = torch.zeros(n_features, dtype=torch.float64)
        self.sum_text = torch.zeros(n_features, dtype=torch.float64)
        self.count_image = torch.zeros(n_features, dtype=torch.int64)
        self.count_text = torch.zeros(n_features, dtype=torch.int64)
        self.max_act = torch.zeros(n_features, dtype=torch.float64)  # merges by max, not sum
        self.bridge_sum = torch.zeros(n_features, dtype=torch.float64)
        self.n_pairs = torch.zeros((), dtype=torch.int64)

    def update(self, image: Entries, text: Entries) -> None:
        if image.n_rows != text.n_rows:
            raise ShapeMismatchError(f"image_features has {image.n_rows} rows but text_features has "
                                     f"{text.n_rows}; expected paired rows (row b image <-> row b caption).")
        for e, s, c in ((image, self.sum_image, self.count_image), (text, self.sum_text, self.count_text)):
            s.index_add_(0, e.cols, e.vals.double())
            c += torch.bincount(e.cols[e.vals > self.tau], minlength=self.n_features)
            self.max_act.scatter_reduce_(0, e.cols, e.vals.double(), reduce="amax")
        self.bridge_sum += _paired_products(image, text, self.n_features)
        self.n_pairs += image.n_rows

    def merge(self, other: MultimodalityAccumulator) -> None:
        if other.n_features != self.n_features:
            raise ShapeMismatchError(f"MultimodalityAccumulator.merge: {other.n_features} features; "
                                     f"expected {self.n_features}.")
        for k in self._KEYS:
            getattr(self, k).add_(getattr(other, k))
        torch.maximum(self.max_act, other.max_act, out=self.max_act)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).clone() for k in (*self._KEYS, "max_act")}

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
            return MultimodalityResult(None, nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), 0, 0)
        e_img, e_txt = (self.sum_image / n).numpy(), (self.sum_text / n).numpy()
        total = e_img + e_txt
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(total > 0, e_img / np.where(total > 0, total, 1.0), np.nan)
            mx = self.max_act.numpy()
            density = np.where(mx > 0, (self.sum_image + self.sum_text).numpy() / (2 * n * np.where(mx > 0, mx, 1)), 0.0)
        scored = ~np.isnan(score) & ((self.count_image + self.count_text).numpy() >= self.n_min)
        lo, hi = band
        inside = scored & (score >= lo) & (score <= hi)
        frac = float(inside.sum() / scored.sum()) if scored.any() else None
        return MultimodalityResult(frac, score, density, e_img, e_txt, (self.bridge_sum / n).numpy(),
                                   n, int(scored.sum()))


def _paired_products(image: Entries, text: Entries, n_features: int) -> torch.Tensor:
    """Per feature, sum over rows of a(image row) * a(text row), from matching (row, col) entries."""
    key_i = image.rows * n_features + image.cols
    key_t, order = torch.sort(text.rows * n_features + text.cols)
    out = torch.zeros(n_features, dtype=torch.float64)
    if key_t.numel() == 0 or key_i.numel() == 0:
        return out
    pos = torch.searchsorted(key_t, key_i).clamp(max=key_t.numel() - 1)
    hit = key_t[pos] == key_i
    prod = image.vals[hit].double() * text.vals[order[pos[hit]]].double()
    return out.index_add_(0, image.cols[hit], prod)


def modality_scores(image_features, text_features, tau: float = 0.001, n_min: int = 2,
                    band: tuple[float, float] = (0.1, 0.9)) -> MultimodalityResult:
    """One call over paired [N, F] image and text activations (non-negative)."""
    n_features = int(image_features.shape[1])
    acc = MultimodalityAccumulator(n_features, tau, n_min)
    acc.update(to_entries(image_features, "image_features", n_features),
               to_entries(text_features, "text_features", n_features))
    return acc.result(band)
