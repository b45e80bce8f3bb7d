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


def _lexsort_desc(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Per row, the order by value descending, then id ascending (stable sorts, last key first)."""
    order = torch.sort(ids, dim=-1, stable=True).indices
    by_val = torch.sort(values.gather(-1, order), dim=-1, descending=True, stable=True).indices
    return order.gather(-1, by_val)


class TopNAccumulator:
    """Per feature, the n highest activations above tau, their image ids and judge embeddings."""

    def __init__(self, n_features: int, n: int, dim: int, tau: float = 0.001):
        self.n_features, self.n, self.dim, self.tau = n_features, n, dim, tau
        self.values = torch.full((n_features, n), float("-inf"), dtype=torch.float32)
        self.ids = torch.full((n_features, n), -1, dtype=torch.int64)
        self.slots = torch.full((n_features, n), -1, dtype=torch.int64)
        self.store = torch.zeros(0, dim, dtype=torch.float32)

    # ---- streaming -------------------------------------------------------------------
    def update(self, entries: Entries, ids: torch.Tensor, emb_unit: torch.Tensor) -> None:
        """entries: the batch's non-zero activations; ids: [B] global image ids; emb_unit: [B, d]."""
        e = entries.select(entries.above(self.tau))
        # A feature whose top-n is full only takes values >= its current n-th value: after
        # the first batches almost every entry is dropped here, before any sorting.
        kth = torch.where(self.ids[:, -1] >= 0, self.values[:, -1], float("-inf"))
        e = e.select(e.vals >= kth[e.cols])
        if e.vals.numel() == 0:
            return
        img = ids[e.rows]
        # Cut each feature's batch entries to its own top-n before merging, so the merge
        # stays O(touched features * n) regardless of batch size.
        order = _lexsort_desc(e.vals, img)
        order = order[torch.sort(e.cols[order], stable=True).indices]
        cols, vals, img, rows = e.cols[order], e.vals[order], img[order], e.rows[order]
        starts = torch.searchsorted(cols, cols, side="left")
        rank = torch.arange(cols.numel()) - starts
        keep = rank < self.n
        feats, local = torch.unique(cols[keep], return_inverse=True)
        cand_v = torch.full((feats.numel(), self.n), float("-inf"), dtype=torch.float32)
        cand_i = torch.full((feats.numel(), self.n), -1, dtype=torch.int64)
        cand_s = torch.full((feats.numel(), self.n), -1, dtype=torch.int64)
        cand_v[local, rank[keep]] = vals[keep]
        cand_i[local, rank[keep]] = img[keep]
        cand_s[local, rank[keep]] = rows[keep]
        self._merge_candidates(cand_v, cand_i, cand_s, emb_unit.to(torch.float32), feats)

    def merge(self, other: TopNAccumulator) -> None:
        if (other.n_features, other.n, other.dim) != (self.n_features, self.n, self.dim):
            raise ShapeMismatchError("TopNAccumulator.merge: accumulators differ in features, n or dim.")
        self._merge_candidates(other.values.clone(), other.ids.clone(), other.slots.clone(), other.store,
                               torch.arange(self.n_features))

    def _merge_candidates(self, cand_v, cand_i, cand_src, table: torch.Tensor, feats: torch.Tensor) -> None:
        """Merge [k, n] candidates of features `feats` (embeddings table[cand_src]) into the top-n."""
        # Existing entries carry their slot (-1 = empty); candidates carry -(src + 1), told
        # apart by `is_new` (an empty candidate is just -1, like an empty slot).
        old_s = self.slots[feats]
        tag_new = torch.where(cand_src >= 0, -(cand_src + 1), torch.full_like(cand_src, -1))
        all_v = torch.cat([self.values[feats], cand_v], dim=1)
        all_i = torch.cat([self.ids[feats], cand_i], dim=1)
        all_t = torch.cat([old_s, tag_new], dim=1)
        is_new = torch.cat([torch.zeros_like(old_s, dtype=torch.bool), cand_src >= 0], dim=1)
        pick = _lexsort_desc(all_v, all_i)[:, : self.n]
        self.values[feats], self.ids[feats] = all_v.gather(1, pick), all_i.gather(1, pick)
        slots, new = all_t.gather(1, pick), is_new.gather(1, pick)
        self.slots[feats] = torch.where(new, torch.full_like(slots, -1), slots)  # frees dropped rows
        self.slots[feats] = self._store_new(slots, new, table)

    def _store_new(self, slots: torch.Tensor, new: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Copy newly selected embeddings into free store rows; return the rows' slot matrix."""
        src = -slots[new] - 1
        uniq, inverse = torch.unique(src, return_inverse=True)
        used = torch.zeros(self.store.shape[0], dtype=torch.bool)
        used[self.slots[self.slots >= 0]] = True
        free = torch.nonzero(~used).flatten()
        if free.numel() < uniq.numel():
            grow = max(uniq.numel() - free.numel(), self.store.shape[0])  # amortised doubling
            start = self.store.shape[0]
            self.store = torch.cat([self.store, torch.zeros(grow, self.dim, dtype=torch.float32)])
            free = torch.cat([free, torch.arange(start, start + grow)])
        target = free[: uniq.numel()]
        if uniq.numel():
            self.store[target] = table[uniq].to(torch.float32)
        out = slots.clone()
        out[new] = target[inverse]
        return out

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
