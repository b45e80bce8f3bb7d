"""Input checks shared by every metric, and the sparse form the accumulators work on.

Activations arrive as dense torch tensors, numpy arrays, scipy sparse matrices or torch
sparse (COO/CSR) tensors. Every accumulator reads them as `Entries`: the non-zero
entries in coordinate form. Work is then proportional to the number of active entries,
which for sparse CLIP (~0.5% active) is far below B x F.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from interpbench.errors import NumericalError, ShapeMismatchError

SIGNED_HINT = ("if this representation has signed features (e.g. dense CLIP), "
               "pass nonnegative=False (SuiteConfig(nonnegative=False))")


def csr_tensor(crow: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """torch.sparse_csr_tensor without torch's "Sparse CSR tensor support is in beta state" notice.

    The notice (a UserWarning on the first CSR tensor of a process) is nothing a user can act
    on; the products we use (addmm_, sparse.mm) are tested against dense ones."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
        return torch.sparse_csr_tensor(crow, cols, vals, size, check_invariants=False)


@dataclass(frozen=True)
class Entries:
    """Non-zero entries of a [n_rows, n_cols] activation batch."""

    rows: torch.Tensor  # int64 [nnz]
    cols: torch.Tensor  # int64 [nnz]
    vals: torch.Tensor  # float32 [nnz]
    n_rows: int
    n_cols: int
    exact: torch.Tensor | None = None  # float64 [nnz] input values, kept only where float32 rounded them

    def select(self, mask: torch.Tensor) -> Entries:
        exact = None if self.exact is None else self.exact[mask]
        return Entries(self.rows[mask], self.cols[mask], self.vals[mask], self.n_rows, self.n_cols, exact)

    def above(self, tau: float) -> torch.Tensor:
        """Mask of entries whose input value exceeds tau, compared exactly (not after rounding
        to float32: 0.0010000001 > 0.001 even though both round to the same float32)."""
        if self.exact is not None:
            return self.exact > tau
        return self.vals > float32_floor(tau)

    def to_dense(self) -> torch.Tensor:
        out = torch.zeros(self.n_rows, self.n_cols, dtype=torch.float32)
        out[self.rows, self.cols] = self.vals
        return out


def float32_floor(x: float) -> float:
    """The largest float32 <= x. For a float32 v, v > x exactly iff v > float32_floor(x), so a
    float32 comparison against it is exact (comparing against float32(x) is not: it may round up)."""
    t = np.float32(x)
    if float(t) > x:
        t = np.nextafter(t, np.float32(-np.inf))
    return float(t)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _row_label(row: int, ids: torch.Tensor | None) -> str:
    return f"row {row}" + (f" (image id {int(ids[row])})" if ids is not None else "")


def _check_finite_rows(bad_rows: torch.Tensor, name: str, what: str, ids=None) -> None:
    if bad_rows.numel():
        row = int(bad_rows.min())
        raise NumericalError(
            f"{name}: {_row_label(row, ids)} contains {what}; expected finite values. "
            "Check the model output for overflow (e.g. fp16) or a corrupt cache entry.")


def to_entries(x, name: str, n_features: int, nonnegative: bool = True,
               ids: torch.Tensor | None = None) -> Entries:
    """Validate an activation batch [B, F] and return its non-zero entries.

    Raises NumericalError on NaN/inf (naming the first offending row) and, when
    `nonnegative`, on negative values; ShapeMismatchError on a wrong shape.
    """
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr:
        # CSR rows are already grouped; a coalesce (a sort of all entries) would cost more
        # than every accumulator's update together. Duplicate (row, col) entries are an error.
        _check_shape(tuple(x.shape), name, n_features)
        crow, cols, vals = x.crow_indices().long(), x.col_indices().long(), x.values()
        counts = crow[1:] - crow[:-1]
        rows = torch.repeat_interleave(torch.arange(x.shape[0]), counts)
        _check_csr_unique(rows, cols, name)
        n_rows = x.shape[0]
    elif isinstance(x, torch.Tensor) and x.layout != torch.strided:
        coo = x.to_sparse_coo().coalesce() if x.layout != torch.sparse_coo else x.coalesce()
        _check_shape(tuple(coo.shape), name, n_features)
        idx, vals = coo.indices(), coo.values()
        rows, cols = idx[0].long(), idx[1].long()
        n_rows = coo.shape[0]
    elif hasattr(x, "tocoo") and not isinstance(x, np.ndarray):  # scipy.sparse
        coo = x.tocoo()
        _check_shape(coo.shape, name, n_features)
        rows = torch.from_numpy(np.asarray(coo.row, dtype=np.int64))
        cols = torch.from_numpy(np.asarray(coo.col, dtype=np.int64))
        vals = torch.from_numpy(np.asarray(coo.data, dtype=np.float64) if coo.data.dtype != np.float32
                                else coo.data)
        n_rows = coo.shape[0]
    else:
        dense = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        _check_shape(tuple(dense.shape), name, n_features)
        dense = dense.detach()
        if not dense.is_floating_point():
            dense = dense.double()
        # finiteness is checked in the input's own precision: a float32 cast would turn a
        # finite 1e39 into inf and misreport it as "NaN or inf"
        _check_finite_rows(torch.nonzero(~torch.isfinite(dense).all(dim=1)).flatten(), name,
                           "NaN or inf", ids)
        rows, cols = torch.nonzero(dense, as_tuple=True)
        vals = dense[rows, cols]
        n_rows = dense.shape[0]
    bad = ~torch.isfinite(vals)
    if bad.any():
        _check_finite_rows(rows[bad], name, "NaN or inf", ids)
    vals, exact = _as_float32(vals, rows, name, ids)
    keep = vals != 0
    if not bool(keep.all()):
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        exact = None if exact is None else exact[keep]
    if nonnegative and bool((vals < 0).any()):
        row = int(rows[vals < 0].min())
        raise NumericalError(f"{name}: {_row_label(row, ids)} has negative activations; expected "
                             f"non-negative features (ReLU output). {SIGNED_HINT}.")
    return Entries(rows, cols, vals.contiguous(), int(n_rows), n_features, exact)


def _as_float32(vals: torch.Tensor, rows: torch.Tensor, name: str, ids) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(float32 values, float64 input values or None when float32 holds them exactly).

    The accumulators work in float32; thresholds compare the exact values (`Entries.above`).
    A finite value beyond float32's range cannot be summed there, so it is an error that says so."""
    if vals.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return vals.float(), None  # exact in float32
    v64 = vals.double()
    big = v64.abs() > _FLOAT32_MAX
    if bool(big.any()):
        row = int(rows[big].min())
        raise NumericalError(f"{name}: {_row_label(row, ids)} has a finite activation {float(v64[big][0]):.3g} "
                             f"beyond float32's range (±{_FLOAT32_MAX:.3g}), which the metrics accumulate in; "
                             "rescale the features.")
    v32 = v64.float()
    return v32, (v64 if bool((v32.double() != v64).any()) else None)


def _check_csr_unique(rows: torch.Tensor, cols: torch.Tensor, name: str) -> None:
    """Column indices strictly increase within each CSR row (sorted, no duplicates)."""
    if cols.numel() < 2:
        return
    same_row = rows[1:] == rows[:-1]
    bad = same_row & (cols[1:] <= cols[:-1])
    if bool(bad.any()):
        row = int(rows[1:][bad][0])
        raise ShapeMismatchError(f"{name}: CSR row {row} has unsorted or repeated column indices; expected "
                                 "a canonical CSR tensor (call .to_sparse_coo().coalesce().to_sparse_csr()).")


def _check_shape(shape, name: str, n_features: int) -> None:
    if len(shape) != 2 or shape[1] != n_features:
        raise ShapeMismatchError(f"{name}: shape {tuple(shape)}; expected [batch, {n_features}]. "
                                 "Pass one row of feature activations per input.")


def to_matrix(x, name: str, dim: int | None = None, dtype=torch.float64,
              ids: torch.Tensor | None = None) -> torch.Tensor:
    """A dense 2-D float tensor [B, dim], checked for shape and finiteness."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.dim() != 2 or (dim is not None and t.shape[1] != dim):
        want = f"[batch, {dim}]" if dim is not None else "a 2-D matrix"
        raise ShapeMismatchError(f"{name}: shape {tuple(t.shape)}; expected {want}.")
    t = t.detach()
    if not t.is_floating_point():
        t = t.double()
    _check_finite_rows(torch.nonzero(~torch.isfinite(t).all(dim=1)).flatten(), name, "NaN or inf", ids)
    out = t.to(dtype)
    overflow = torch.nonzero(~torch.isfinite(out).all(dim=1)).flatten()  # finite input, too big for dtype
    _check_finite_rows(overflow, name, f"a finite value beyond {dtype}'s range (rescale it)", ids)
    return out


def unit_rows(x: torch.Tensor, name: str, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Rows scaled to unit L2 norm; a zero row has no direction, so it is an error."""
    norms = x.norm(dim=1, keepdim=True)
    zero = torch.nonzero(norms.flatten() == 0).flatten()
    if zero.numel():
        row = int(zero.min())
        raise NumericalError(f"{name}: {_row_label(row, ids)} is all zeros; expected a non-zero "
                             "embedding (cosine similarity needs a direction).")
    return x / norms


def unit_rows_float32(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit norm, as one new float32 tensor (a zero row stays zero): for
    finalize-time [F, d] matrices, where a float64 copy would dominate peak memory."""
    out = x.to(torch.float32, copy=True)
    return out.div_(out.norm(dim=1, keepdim=True).clamp_min_(1e-12))


def check_rows(a, b, name_a: str, name_b: str) -> None:
    """Both inputs describe the same batch: equal leading dimension."""
    if int(a.shape[0]) != int(b.shape[0]):
        raise ShapeMismatchError(f"{name_a} has {int(a.shape[0])} rows but {name_b} has {int(b.shape[0])}; "
                                 "expected one row per input in both.")


def to_ids(ids, name: str, n: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(ids) if not isinstance(ids, torch.Tensor) else ids).flatten().long()
    if t.numel() != n:
        raise ShapeMismatchError(f"{name}: {t.numel()} ids for {n} rows; expected one id per row.")
    if bool((t < 0).any()):
        raise ShapeMismatchError(f"{name}: ids must be >= 0 (global image indices).")
    return t


class RowSums:
    """A float64 [n, d] total of out[c] += w * emb[r] over batch entries (r, c, w).

    Each batch is one CSR sparse-dense product added in place into a float32 buffer (no
    [n, d] temporary; CSR because COO products sort all entries first, ~8x slower here),
    folded into the float64 total every `fold_every` batches: float32 speed per batch,
    float64 totals for the statistics that cancel badly (Clarity's ||S||^2 - n)."""

    def __init__(self, n: int, dim: int, fold_every: int = 16):
        self.n, self.dim, self.fold_every = n, dim, fold_every
        self._total = torch.zeros(n, dim, dtype=torch.float64)
        self._buf: torch.Tensor | None = None
        self._pending = 0

    def add(self, cols: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor, emb: torch.Tensor) -> None:
        if cols.numel() == 0:
            return
        order = torch.argsort(cols, stable=True)
        crow = torch.zeros(self.n + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.bincount(cols, minlength=self.n), 0)
        m = csr_tensor(crow, rows[order], weights[order].to(torch.float32), (self.n, emb.shape[0]))
        if self._buf is None:
            self._buf = torch.zeros(self.n, self.dim, dtype=torch.float32)
        self._buf.addmm_(m, emb.to(torch.float32))
        self._pending += 1
        if self._pending >= self.fold_every:
            self.fold()

    def fold(self) -> None:
        """Add the buffer into the total and free it (the next batch allocates a zeroed one,
        so finalize, merge and state_dict run without the extra [n, d] float32)."""
        if self._pending:
            self._total.add_(self._buf)
        self._buf, self._pending = None, 0

    @property
    def total(self) -> torch.Tensor:
        """The float64 sums (folds the pending buffer first)."""
        self.fold()
        return self._total

    @total.setter
    def total(self, value: torch.Tensor) -> None:
        self._total, self._buf, self._pending = value.to(torch.float64), None, 0


class RowSumsAttribute:
    """An accumulator attribute backed by a RowSums in `_<name>`: reading gives the float64
    total (folding the buffer), assigning replaces it, so merge, state_dict and
    load_state_dict treat it like any other tensor attribute."""

    def __set_name__(self, owner, name: str) -> None:
        self.private = "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.private).total

    def __set__(self, obj, value: torch.Tensor) -> None:
        getattr(obj, self.private).total = value


def as_float_or_none(x) -> float | None:
    """Python float, or None for NaN/None (the leaderboard shows None as 'not applicable')."""
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else x
