"""Vocabulary concept labels for features.

- `vocabulary_labels` (Sparse CLIP, Sec. 4.1): the runner passes each vocabulary word
  through the representation's text tower, giving word_features [V, F]; a feature's
  labels are its top-K words by activation. Only words with a positive activation count,
  so a feature that no word activates gets no label (id -1, score NaN).
- `decoder_labels` (Discover-then-Name / MSAE `sae_naming.py`): for SAEs, each decoder
  atom W_dec[i] is named by the words whose text embedding (already in the SAE input
  space) has the highest cosine with it. Every non-zero atom gets K words.

Both work over V in chunks, so memory is O(F * (K + chunk)) even for V = 100k, F = 55k.
Ties between equal scores in different chunks keep the lower vocabulary index; within a
chunk torch.topk decides (deterministic for the same input). Zero scores never label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import ShapeMismatchError

from ._inputs import to_matrix


@dataclass
class FeatureLabels:
    word_ids: np.ndarray  # int64 [F, K], -1 = no word
    scores: np.ndarray  # float32 [F, K], NaN where no word
    source: str  # "text_tower" or "decoder"

    @property
    def top(self) -> np.ndarray:
        """[F] the best word id per feature, -1 for unlabelled features."""
        return self.word_ids[:, 0]

    @property
    def labelled(self) -> np.ndarray:
        return self.top >= 0

    def words(self, vocab: list[str]) -> list[list[str]]:
        return [[vocab[w] for w in row if w >= 0] for row in self.word_ids]

    def top_words(self, vocab: list[str]) -> list[str | None]:
        return [vocab[w] if w >= 0 else None for w in self.top]


class _RunningTopK:
    """Per-row running top-k over column chunks that arrive in index order."""

    def __init__(self, n_rows: int, k: int):
        self.k = k
        self.vals = torch.full((n_rows, k), float("-inf"), dtype=torch.float32)
        self.ids = torch.full((n_rows, k), -1, dtype=torch.int64)

    def add(self, scores: torch.Tensor, offset: int) -> None:
        """scores: [n_rows, v] for columns offset .. offset+v-1."""
        k = min(self.k, scores.shape[1])
        top = torch.topk(scores, k, dim=1, sorted=True)
        vals = torch.cat([self.vals, top.values], dim=1)
        ids = torch.cat([self.ids, top.indices + offset], dim=1)
        # Stable descending sort: on ties, earlier (lower-index) words stay first.
        order = torch.sort(vals, dim=1, descending=True, stable=True).indices[:, : self.k]
        self.vals, self.ids = vals.gather(1, order), ids.gather(1, order)


def _chunks(x, chunk: int) -> Iterable[torch.Tensor]:
    if isinstance(x, (torch.Tensor, np.ndarray)):  # np.memmap included: rows read lazily
        for start in range(0, x.shape[0], chunk):
            yield x[start:start + chunk]
    else:
        yield from x


def vocabulary_labels(word_features, k: int = 5, chunk: int = 4096,
                      n_features: int | None = None) -> FeatureLabels:
    """Top-k words per feature from word_features [V, F] (tensor, array, memmap or an
    iterable of [v, F] chunks in vocabulary order)."""
    run, seen = None, 0
    for block in _chunks(word_features, chunk):
        block = to_matrix(block, "word_features", n_features, torch.float32)
        if run is None:
            n_features = block.shape[1]
            run = _RunningTopK(n_features, k)
        run.add(block.T.contiguous(), seen)
        seen += block.shape[0]
    if run is None:
        raise ShapeMismatchError("word_features: empty; expected [V, F] activations of vocabulary words.")
    return _finish(run, keep=run.vals > 0, source="text_tower")


def decoder_labels(word_embeddings, w_dec, k: int = 5, chunk: int = 4096) -> FeatureLabels:
    """Top-k words per decoder atom by cosine. word_embeddings [V, d] must already be in the
    SAE input space (through its input normalisation); w_dec is [F, d]."""
    atoms = to_matrix(w_dec, "W_dec", None, torch.float32)
    norms = atoms.norm(dim=1, keepdim=True)
    atoms = atoms / norms.clamp(min=torch.finfo(torch.float32).tiny)
    run, seen = _RunningTopK(atoms.shape[0], k), 0
    for block in _chunks(word_embeddings, chunk):
        words = to_matrix(block, "word_embeddings", atoms.shape[1], torch.float32)
        wn = words.norm(dim=1)
        cos = atoms @ (words / wn.clamp(min=torch.finfo(torch.float32).tiny)[:, None]).T
        cos[:, wn == 0] = float("-inf")  # a zero word embedding has no direction
        run.add(cos, seen)
        seen += words.shape[0]
    keep = torch.isfinite(run.vals) & (norms > 0)
    return _finish(run, keep=keep, source="decoder")


def _finish(run: _RunningTopK, keep: torch.Tensor, source: str) -> FeatureLabels:
    ids = torch.where(keep, run.ids, torch.full_like(run.ids, -1))
    scores = torch.where(keep, run.vals, torch.full_like(run.vals, float("nan")))
    return FeatureLabels(ids.numpy(), scores.numpy(), source)
