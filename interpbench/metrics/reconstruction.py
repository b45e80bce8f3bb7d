"""SAE reconstruction and sparsity metrics (MSAE `metrics.py` conventions: per sample, then mean).

With x the SAE input, x_hat its reconstruction and z the latent code, per sample:
- fvu      (variant B, OpenAI/MSAE `normalized_mean_squared_error`): mean_d (x_hat - x)^2 / mean_d x^2
- fvu_msae (variant A, MSAE `explained_variance_full`, used by its eval script):
           Var_d(x - x_hat) / Var_d(x), variance over the d dimensions of the one sample
- nmae: mean_d |x_hat - x| / mean_d |x|;  recon_cosine: cos(x, x_hat) (0 if x_hat = 0)
- sae_l0: count of non-zero latents;  sae_frac_zero: share of zero latents (MSAE's "L0")
and over the whole evaluation set: dead_latents_pct = 100 * share of latents never non-zero.
A sample whose denominator is 0 (x = 0, or constant x for variant A) is skipped for that
metric; a metric with no usable sample is None.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interpbench.errors import ShapeMismatchError

from .inputs import Entries, check_rows, to_entries, to_matrix


@dataclass
class ReconstructionResult:
    fvu: float | None
    fvu_msae: float | None
    nmae: float | None
    recon_cosine: float | None
    sae_l0: float | None
    sae_frac_zero: float | None
    dead_latents_pct: float | None
    n_samples: int


class ReconstructionAccumulator:
    _RATIOS = ("fvu", "fvu_msae", "nmae", "cosine")

    def __init__(self, n_features: int, dim: int):
        self.n_features, self.dim = n_features, dim
        # [sum of per-sample values, number of usable samples] per ratio metric
        self.sums = torch.zeros(len(self._RATIOS), 2, dtype=torch.float64)
        self.fired = torch.zeros(n_features, dtype=torch.int64)  # non-zero count per latent
        self.n_nonzero = torch.zeros((), dtype=torch.int64)
        self.n_samples = torch.zeros((), dtype=torch.int64)

    def update(self, x: torch.Tensor, x_hat: torch.Tensor, z: Entries) -> None:
        """x, x_hat: [B, d] float64; z: the latent code's non-zero entries."""
        if x.shape != x_hat.shape or z.n_rows != x.shape[0]:
            raise ShapeMismatchError(f"reconstruction: x {tuple(x.shape)}, x_hat {tuple(x_hat.shape)}, "
                                     f"z with {z.n_rows} rows; expected equal [B, d] and B rows of z.")
        for i, (value, ok) in enumerate(per_sample_ratios(x, x_hat)):
            self.sums[i, 0] += value[ok].sum()
            self.sums[i, 1] += int(ok.sum())
        self.fired += torch.bincount(z.cols, minlength=self.n_features)
        self.n_nonzero += z.vals.numel()
        self.n_samples += x.shape[0]

    def merge(self, other: ReconstructionAccumulator) -> None:
        if (other.n_features, other.dim) != (self.n_features, self.dim):
            raise ShapeMismatchError("ReconstructionAccumulator.merge: other has different latents or dim.")
        for k in ("sums", "fired", "n_nonzero", "n_samples"):
            getattr(self, k).add_(getattr(other, k))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).clone() for k in ("sums", "fired", "n_nonzero", "n_samples")}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if sd["fired"].shape != (self.n_features,):
            raise ShapeMismatchError(f"ReconstructionAccumulator.load_state_dict: {tuple(sd['fired'].shape)} "
                                     f"latents; expected ({self.n_features},).")
        for k, v in sd.items():
            setattr(self, k, v.clone())

    def result(self) -> ReconstructionResult:
        n = int(self.n_samples)
        means = [float(s / c) if c > 0 else None for s, c in self.sums.tolist()]
        l0 = int(self.n_nonzero) / n if n else None
        return ReconstructionResult(
            fvu=means[0], fvu_msae=means[1], nmae=means[2], recon_cosine=means[3],
            sae_l0=l0, sae_frac_zero=1.0 - l0 / self.n_features if n else None,
            dead_latents_pct=100.0 * float((self.fired == 0).sum()) / self.n_features if n else None,
            n_samples=n,
        )


def per_sample_ratios(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """(value [B], usable [B]) per sample for fvu, fvu_msae, nmae and cosine, in that order;
    unusable values may be inf/NaN and are masked out by the caller (also by the intervals)."""
    err = x_hat - x
    # Population variance: the ratio Var(err)/Var(x) is the same for either correction, and the
    # unbiased one is 0/0 (with a torch warning) for a one-dimensional input.
    ms, var_x, ma = (x * x).mean(1), x.var(dim=1, correction=0), x.abs().mean(1)
    xn, hn = x.norm(dim=1), x_hat.norm(dim=1)
    cos = torch.where(hn > 0, (x * x_hat).sum(1) / (xn * hn), torch.zeros_like(xn))
    return (((err * err).mean(1) / ms, ms > 0), (err.var(dim=1, correction=0) / var_x, var_x > 0),
            (err.abs().mean(1) / ma, ma > 0), (cos, xn > 0))


def reconstruction_metrics(x, x_hat, z) -> ReconstructionResult:
    """One call: x, x_hat [N, d]; z [N, F] latent codes (dense or sparse)."""
    xt, xh = to_matrix(x, "x"), to_matrix(x_hat, "x_hat")
    check_rows(xt, z, "x", "z")
    acc = ReconstructionAccumulator(int(z.shape[1]), xt.shape[1])
    acc.update(xt, xh, to_entries(z, "z", acc.n_features, nonnegative=False))
    return acc.result()
