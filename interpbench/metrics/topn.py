"""Streaming per-feature top-n images, with the judge embeddings of those images.

SemanticLens-style metrics (top-n clarity, polysemanticity, redundancy) and the
image-side label need, per feature, the judge embeddings of its n most activating
images. We keep the embeddings themselves (not just image ids plus a second pass) in
a shared store: one row per image that is currently in *some* feature's top-n, freed as
soon as no feature refers to it. Memory is at most min(N, F*n) * d floats, never more
than a per-feature [F, n, d] copy, and usually far less because top sets overlap.

Order: images are ranked by activation (descending), ties by smaller image id. That is a
total order, so the result does not depend on batch order or on how shards are merged.
Only entries above the activation threshold tau are candidates; a feature with fewer
than n such images keeps what it has (empty slots hold -inf and id -1). The buffer
starts at -inf in float32, so signed (dense) features keep their positive entries too.
"""

from __future__ import annotations

import torch

from interpbench.errors import ShapeMismatchError

from .inputs import Entries, csr_tensor

_LOW32 = (1 << 32) - 1


def _desc_key(values: torch.Tensor) -> torch.Tensor:
    """int64 in [-2^31, 2^31) whose ascending order is float32 `values` descending.

    The float's bits, read as int32, order non-negative floats correctly and negative ones
    reversed; flipping the magnitude bits of the negatives fixes that. Adding 0.0 first turns
    -0.0 into 0.0: equal as floats, so they must tie (and fall to the image id)."""
    bits = (values.to(torch.float32) + 0.0).view(torch.int32)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (~ordered).to(torch.int64)


def _rank_order(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Per row, the order by value descending, then id ascending.

    One sort of (value, id) packed into an int64 when all ids fit in 32 bits (empty slots,
    id -1, hold -inf and sort last whatever their id); else two stable sorts, last key first.
    Stable, so an image offered twice keeps its earlier copy first, as before."""
    if ids.numel() == 0 or int(ids.max()) <= _LOW32:
        key = (_desc_key(values) << 32) | (ids & _LOW32)
        return torch.sort(key, dim=-1, stable=True).indices
    order = torch.sort(ids, dim=-1, stable=True).indices
    by_val = torch.sort(values.gather(-1, order), dim=-1, descending=True, stable=True).indices
    return order.gather(-1, by_val)


def _batch_order(cols: torch.Tensor, vals: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Order of a batch's entries by feature, then value descending, then image id.

    (feature, value) packs into one int64; the image id is the tie-break, which a stable sort
    keeps for free when the entries already come in id order (the usual case: entries row by
    row and ids increasing). Otherwise a first stable sort by id puts them in that order."""
    pre = None
    if img.numel() > 1 and not bool((img[1:] >= img[:-1]).all()):
        pre = torch.sort(img, stable=True).indices
        cols, vals = cols[pre], vals[pre]
    key = (cols << 32) | (_desc_key(vals) + (1 << 31))
    order = torch.sort(key, stable=True).indices
    return order if pre is None else pre[order]


class TopNAccumulator:
    """Per feature, the n highest activations above tau, their image ids and judge embeddings."""

    def __init__(self, n_features: int, n: int, dim: int, tau: float = 0.001):
        self.n_features, self.n, self.dim, self.tau = n_features, n, dim, tau
        self.values = torch.full((n_features, n), float("-inf"), dtype=torch.float32)
        self.ids = torch.full((n_features, n), -1, dtype=torch.int64)
        self.slots = torch.full((n_features, n), -1, dtype=torch.int64)
        self.store = torch.zeros(0, dim, dtype=torch.float32)
        self.refs = torch.zeros(0, dtype=torch.int32)  # per store row: how many slots refer to it

    # ---- streaming -------------------------------------------------------------------
    def update(self, entries: Entries, ids: torch.Tensor, emb_unit: torch.Tensor) -> None:
        """entries: the batch's non-zero activations; ids: [B] global image ids; emb_unit: [B, d]."""
        # A feature's n-th value (-inf while it has fewer than n) is the least a new entry
        # needs: after the first batches almost every entry is dropped here, before any sort.
        kth = self.values[:, -1]
        keep = torch.nonzero(entries.above(self.tau) & (entries.vals >= kth[entries.cols])).flatten()
        if keep.numel() == 0:
            return
        cols, vals, rows = entries.cols[keep], entries.vals[keep], entries.rows[keep]
        order = _batch_order(cols, vals, ids[rows])
        cols, vals, rows = cols[order], vals[order], rows[order]
        # Cut each feature's batch entries to its own top-n before merging, so the merge
        # stays O(touched features * n) regardless of batch size.
        rank = torch.arange(cols.numel()) - torch.searchsorted(cols, cols, side="left")
        top = rank < self.n
        cols, rank, rows = cols[top], rank[top], rows[top]
        feats, local = torch.unique_consecutive(cols, return_inverse=True)
        # Only as many candidate columns as the busiest feature needs (late in the stream a
        # feature gains one or two images per batch, not n).
        shape = (feats.numel(), int(rank.max()) + 1)
        cand_v = torch.full(shape, float("-inf"), dtype=torch.float32)
        cand_i = torch.full(shape, -1, dtype=torch.int64)
        cand_s = torch.full(shape, -1, dtype=torch.int64)
        cand_v[local, rank], cand_i[local, rank], cand_s[local, rank] = vals[top], ids[rows], rows
        self._merge_candidates(cand_v, cand_i, cand_s, emb_unit, feats)

    def merge(self, other: TopNAccumulator) -> None:
        if (other.n_features, other.n, other.dim) != (self.n_features, self.n, self.dim):
            raise ShapeMismatchError("TopNAccumulator.merge: accumulators differ in features, n or dim.")
        self._merge_candidates(other.values, other.ids, other.slots, other.store, torch.arange(self.n_features))

    def _merge_candidates(self, cand_v, cand_i, cand_src, table: torch.Tensor, feats: torch.Tensor) -> None:
        """Merge [k, m] candidates (m <= n) of features `feats` (embeddings table[cand_src]) into the top-n."""
        # Existing entries carry their slot (>= 0, -1 = empty); candidates carry -(src + 2),
        # so -1 stays "empty" on both sides and the new ones are the tags <= -2.
        old_s = self.slots[feats]
        tag_new = torch.where(cand_src >= 0, -(cand_src + 2), torch.full_like(cand_src, -1))
        all_v = torch.cat([self.values[feats], cand_v], dim=1)
        all_i = torch.cat([self.ids[feats], cand_i], dim=1)
        pick = _rank_order(all_v, all_i)[:, : self.n]
        tags = torch.cat([old_s, tag_new], dim=1).gather(1, pick)
        self.values[feats], self.ids[feats] = all_v.gather(1, pick), all_i.gather(1, pick)
        # Reference counts: the old slots of these features let go, the ones still picked hold
        # again; a row at zero is free for this batch's new embeddings.
        self._count(old_s, -1)
        self._count(tags, 1)
        self.slots[feats] = self._store_new(tags, table)

    def _count(self, slots: torch.Tensor, step: int) -> None:
        held = slots[slots >= 0]
        self.refs.index_add_(0, held, torch.full_like(held, step, dtype=torch.int32))

    def _store_new(self, tags: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Copy newly picked embeddings (tags <= -2) into free store rows; return the slots."""
        new = tags <= -2
        uniq, inverse = torch.unique(-tags[new] - 2, return_inverse=True)
        if uniq.numel() == 0:
            return tags
        free = torch.nonzero(self.refs == 0).flatten()
        if free.numel() < uniq.numel():
            free = torch.cat([free, self._grow(uniq.numel() - free.numel())])
        target = free[: uniq.numel()]
        self.store[target] = table[uniq].to(torch.float32)
        self.refs.index_add_(0, target[inverse], torch.ones_like(inverse, dtype=torch.int32))
        out = tags.clone()
        out[new] = target[inverse]
        return out

    def _grow(self, need: int) -> torch.Tensor:
        """Add at least `need` store rows (amortised doubling, never past F * n rows, which the
        slots can never all use); return the new rows' indices."""
        start = self.store.shape[0]
        add = max(need, min(start, self.n_features * self.n - start))
        store = torch.empty(start + add, self.dim, dtype=torch.float32)  # one copy, no zero-filled part
        store[:start] = self.store
        self.store = store
        self.refs = torch.cat([self.refs, torch.zeros(add, dtype=torch.int32)])
        return torch.arange(start, start + add)

    # ---- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only; the store is compacted to the rows still referenced."""
        valid = self.slots >= 0
        uniq, inverse = torch.unique(self.slots[valid], return_inverse=True)
        slots = torch.full_like(self.slots, -1)
        slots[valid] = inverse
        return {"values": self.values.clone(), "ids": self.ids.clone(), "slots": slots,
                "store": self.store[uniq].clone()}

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        if tuple(sd["values"].shape) != (self.n_features, self.n) or sd["store"].shape[1:] != (self.dim,):
            raise ShapeMismatchError("TopNAccumulator.load_state_dict: state has other shape "
                                     f"{tuple(sd['values'].shape)}; expected ({self.n_features}, {self.n}).")
        self.values, self.ids = sd["values"].float().clone(), sd["ids"].long().clone()
        self.slots, self.store = sd["slots"].long().clone(), sd["store"].float().clone()
        held = self.slots[self.slots >= 0]
        self.refs = torch.bincount(held, minlength=self.store.shape[0]).to(torch.int32)

    # ---- results -----------------------------------------------------------------------
    def counts(self) -> torch.Tensor:
        """[F] number of top images held per feature (<= n)."""
        return (self.slots >= 0).sum(dim=1)

    def embeddings(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Judge embeddings [k, n, d] (zeros in empty slots) and validity mask [k, n]."""
        slots = self.slots[features]
        mask = slots >= 0
        if self.store.shape[0] == 0:  # no feature ever fired (all-zero representation): nothing to index
            return torch.zeros(*slots.shape, self.dim, dtype=torch.float64), mask
        emb = self.store[slots.clamp(min=0)].double()
        emb[~mask] = 0.0
        return emb, mask

    def sums(self) -> torch.Tensor:
        """[F, d] float32 sum of each feature's top-n unit embeddings: one CSR product
        (feature x store-row incidence times the store); n <= top_n terms, so float32 is
        exact to ~1e-6 and halves the memory of a float64 [F, d]."""
        valid = self.slots >= 0
        if self.store.shape[0] == 0 or not bool(valid.any()):
            return torch.zeros(self.n_features, self.dim, dtype=torch.float32)
        crow = torch.zeros(self.n_features + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(valid.sum(dim=1), 0)
        slots = self.slots[valid]  # row-major: grouped by feature, as CSR needs
        incidence = csr_tensor(crow, slots, torch.ones(slots.numel()), (self.n_features, self.store.shape[0]))
        return torch.sparse.mm(incidence, self.store)
