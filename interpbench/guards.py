"""Numerical guards: catch NaN/inf and broken promises where values enter, naming the item."""

from __future__ import annotations

import torch

from interpbench.errors import NumericalError


def check_finite(t: torch.Tensor, what: str, first_index: int = 0) -> None:
    """Raise NumericalError naming the first row (item) with a NaN or inf."""
    if t.is_floating_point() and not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1).nonzero()[0, 0].item()
        raise NumericalError(f"{what}: non-finite value (NaN or inf) at item {first_index + bad}. "
                             "Check the input data and the model weights (a corrupt checkpoint often shows this).")


def check_nonnegative(t: torch.Tensor, what: str, first_index: int = 0, tol: float = 0.0) -> None:
    """Features promised non-negative must be; name the first offending item."""
    if (t < -tol).any():
        bad = (t < -tol).reshape(t.shape[0], -1).any(dim=1).nonzero()[0, 0].item()
        raise NumericalError(f"{what}: negative activation {t.reshape(t.shape[0], -1)[bad].min().item():.4g} at item "
                             f"{first_index + bad}, but this representation promises non-negative features. "
                             "The adapter or the checkpoint's activation function is wrong.")


def check_nonempty(n_items: int, what: str, fix: str) -> None:
    """An empty source would make every mean a 0/0; stop before any work with a clear error."""
    if n_items < 1:
        from interpbench.errors import EmptyDatasetError

        raise EmptyDatasetError(f"{what}: no items (length {n_items}); expected at least one. {fix}")
