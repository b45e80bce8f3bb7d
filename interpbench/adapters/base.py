"""The one protocol every representation implements.

A representation turns images and texts into non-negative feature activations [B, F].
Where they exist it also exposes the dense CLIP embedding and, for SAEs, the
reconstruction, so the performance side (zero-shot, FVU) can be measured. The rest of the
package sees only this interface.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import torch


@dataclass
class RepresentationMeta:
    name: str  # short display name, e.g. "shapes:sparse"
    spec: str  # the spec string it was loaded from
    kind: str  # "dense" | "sparse-clip" | "sae"
    source: str  # where the weights came from (path, hub repo, "random")
    base_model: str  # the CLIP it reads from (spec), or itself
    sparsity: str  # how non-negative sparse features arise, in words
    n_features: int
    embed_dim: int | None = None  # width of the dense CLIP embedding, when there is one
    nonnegative: bool = True  # promise checked by the numerical guards
    has_text: bool = True  # whether text inputs map to features
    fingerprint: str = ""  # hash of the weights: part of every cache key
    extra: dict = field(default_factory=dict)
    # Optional, written to results only when set (older results files lack them):
    control: dict | None = None  # a control: {"of": spec it controls, "kind": ..., "seed": s}
    recipe: str | None = None  # a training recipe shared by reseeded models (leaderboard reseed view)
    train_seed: int | None = None  # the training seed of a reseeded model

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None or k not in OPTIONAL_FIELDS}


OPTIONAL_FIELDS = ("control", "recipe", "train_seed")


@runtime_checkable
class Representation(Protocol):
    meta: RepresentationMeta
    transform: object  # PIL image -> tensor [3, H, W] for this model's image tower

    @property
    def n_features(self) -> int: ...

    def to(self, device: str | torch.device) -> Representation: ...

    def encode_image_features(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] transformed images -> non-negative activations [B, F]."""

    def encode_text_features(self, texts: list[str]) -> torch.Tensor:
        """Raw strings -> non-negative activations [B, F]. Raises NotImplementedError if has_text is False."""

    def encode_image_embedding(self, images: torch.Tensor) -> torch.Tensor | None:
        """The dense CLIP image embedding [B, d] used for zero-shot, or None."""

    def encode_text_embedding(self, texts: list[str]) -> torch.Tensor | None:
        """The dense CLIP text embedding [B, d], or None."""

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor | None:
        """SAE decoder: features [B, F] -> embedding-space reconstruction [B, d], or None."""
