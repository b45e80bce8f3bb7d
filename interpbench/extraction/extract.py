"""Extraction: run a representation over a source once, cache it, stream it back.

Images are processed chunk by chunk (default 1,024 items); each chunk is one cache file,
so an interrupted run resumes at the first missing chunk. One DataLoader batches the
transformed images of all missing chunks (worker processes and pinned memory on GPU);
inference runs under torch.inference_mode, with fp16 autocast on CUDA only (on the CPU it
would change the numbers). Features leave the device as their non-zeros only and are
stored as CSR (row_ptr, col, val), never as a dense N x F array.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from interpbench.data.base import ImageSource, TransformedImages
from interpbench.distributed import Shard, gather_rows
from interpbench.errors import DiskFullError
from interpbench.extraction.cache import ChunkedCache, SparseRows, cat_csr, to_csr
from interpbench.guards import check_finite, check_nonempty, check_nonnegative

Progress = Callable[[int], None]  # called with the number of items just finished


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def default_workers(device: torch.device) -> int:
    """Decode in worker processes on GPU (the GPU would wait for PIL); inline on CPU,
    where workers would only compete with the forward pass for the same cores."""
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def _batches(cache: ChunkedCache, chunks: list[int], batch_size: int) -> list[list[int]]:
    """Index batches that never straddle a chunk, so each chunk is written as soon as it is done."""
    out = []
    for c in chunks:
        start, end = cache.bounds(c)
        out += [list(range(i, min(end, i + batch_size))) for i in range(start, end, batch_size)]
    return out


def _loader(source, transform, batches, num_workers, device):
    # One loader over all missing chunks: workers start once and keep prefetching across chunks.
    return torch.utils.data.DataLoader(
        TransformedImages(source, transform, 0, len(source)), batch_sampler=batches, num_workers=num_workers,
        pin_memory=device.type == "cuda", persistent_workers=False)


def image_outputs(rep, images: torch.Tensor, device) -> dict[str, torch.Tensor]:
    """Everything the metrics need from one image batch, as float32 tensors on `device`."""
    images = images.to(device, non_blocking=True)
    with torch.inference_mode(), _autocast(device):
        out = {}
        if hasattr(rep, "sae_input_images"):  # SAEs: input, code, reconstruction
            sae = rep.sae_outputs(images)
            out["features"] = sae["features"]
            # The cache holds one row per image: per-token hooks (patch/all) give B*T rows of
            # input and reconstruction, which are not cached, so their FVU is not reported.
            if sae["sae_input"].shape[0] == images.shape[0]:
                out.update(sae_input=sae["sae_input"], sae_recon=sae["sae_recon"])
            emb = sae.get("embedding")
            recon = sae.get("reconstructed")
            if emb is None:  # a hook inside the tower: the embedding needs forwards of its own
                emb, recon = rep.encode_image_embedding(images), rep.encode_image_reconstructed(images)
            out["zs_embedding"] = recon.float()
        else:
            emb = rep.encode_image_embedding(images)
            out["features"] = _features(rep, images, emb).float()
            out["zs_embedding"] = out["features"] if rep.meta.kind == "sparse-clip" else emb.float()
        if emb is not None:
            out["embedding"] = emb.float()
    return {k: v.float() for k, v in out.items()}


def _features(rep, images, emb):
    """Features from the embedding already computed, where the adapter can (dense CLIP's
    sign split, sparse CLIP's identity): one tower forward per batch instead of two."""
    from_emb = getattr(rep, "features_from_embedding", None) or getattr(rep, "_features", None)
    if emb is not None and from_emb is not None:
        return from_emb(emb)
    return rep.encode_image_features(images)


def sparse_rows(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, F] on any device -> (non-zeros per row, col int32, val float32) on the CPU.

    Done on the device, so only the non-zeros cross to the host: a chunk never exists
    as a dense B x F array in host memory.
    """
    rows, cols = dense.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=dense.shape[0])
    return counts.cpu(), cols.to(torch.int32).cpu(), dense[rows, cols].float().cpu()


class _ChunkBuffer:
    """Collects one chunk's batches: features as CSR pieces, the rest as dense blocks."""

    def __init__(self):
        self.counts, self.cols, self.vals, self.dense = [], [], [], {}

    def add(self, sparse: tuple[torch.Tensor, torch.Tensor, torch.Tensor], out: dict[str, torch.Tensor]) -> None:
        counts, cols, vals = sparse
        self.counts.append(counts)
        self.cols.append(cols)
        self.vals.append(vals)
        for name, t in out.items():
            self.dense.setdefault(name, []).append(t.cpu())

    def tensors(self) -> dict[str, torch.Tensor]:
        counts = torch.cat(self.counts)
        row_ptr = torch.zeros(counts.numel() + 1, dtype=torch.int64)
        row_ptr[1:] = counts.cumsum(0)
        csr = {"row_ptr": row_ptr, "col": torch.cat(self.cols), "val": torch.cat(self.vals)}
        return {**csr, **{k: torch.cat(v) for k, v in self.dense.items()}}


def _check(rep, out, sparse, first: int) -> None:
    for name, t in out.items():
        check_finite(t, f"{rep.meta.name}: image {name}", first_index=first)
    _check_features(rep, *sparse, first)


def _check_features(rep, counts, cols, vals, first: int) -> None:
    """Finiteness and sign of the features, on their non-zeros only: the zeros of a [B, F]
    batch pass both checks, and scanning them cost more than the SAE's encode at F = 55,296."""
    nonfinite = ~torch.isfinite(vals)
    negative = vals < 0 if rep.meta.nonnegative else torch.zeros_like(nonfinite)
    for bad, guard in ((nonfinite, check_finite), (negative, check_nonnegative)):
        if bool(bad.any()):
            rows = torch.repeat_interleave(torch.arange(counts.numel()), counts)
            r = int(rows[bad][0])  # the first offending image; the guard names it and its value
            guard(vals[rows == r][None], f"{rep.meta.name}: image features", first_index=first + r)


def extract_images(rep, source: ImageSource, cache_root: Path, *, batch_size: int = 256, chunk_size: int = 1024,
                   device: str | torch.device = "cpu", num_workers: int | None = None,
                   progress: Progress | None = None, shard: Shard | None = None,
                   on_estimate: Callable[[str], None] | None = None) -> ChunkedCache:
    """Fill this shard's chunks of the image cache of (rep, source); returns the cache.

    Only missing chunks are computed; a second run reads everything from disk. With a
    shard of K ranks, the chunk size shrinks to at most ceil(N / K) so every rank has work.
    After the first new chunk, the rest of the cache is projected from its file: a disk
    without room for it stops the run (DiskFullError), and a long run gets the projected
    size and time through `on_estimate`.
    """
    check_nonempty(len(source), f"data source {getattr(source, 'name', type(source).__name__)!r}",
                   "Check the data spec, the folder it points at and --n-images.")
    device, shard = torch.device(device), shard or Shard()
    if shard.world > 1:
        chunk_size = min(chunk_size, -(-len(source) // shard.world))
    key = {"kind": "images", "model": rep.meta.fingerprint, "spec": rep.meta.spec, "data": source.identity,
           "transform": repr(rep.transform)}
    cache = ChunkedCache(Path(cache_root) / "activations", key, len(source), chunk_size)
    cache.owned = [c for c in range(cache.n_chunks) if shard.owns(c)]  # what iter_image_chunks reads
    missing = [c for c in cache.owned if cache.read(c) is None]
    if progress:
        progress(sum(cache.bounds(c)[1] - cache.bounds(c)[0] for c in cache.owned if c not in missing))
    if not missing:
        return cache
    rep.to(device)
    workers = default_workers(device) if num_workers is None else num_workers
    buf, pending, t0 = _ChunkBuffer(), list(missing), time.perf_counter()
    for images, idx in _loader(source, rep.transform, _batches(cache, missing, batch_size), workers, device):
        out = image_outputs(rep, images, device)
        sparse = sparse_rows(out.pop("features"))
        _check(rep, out, sparse, int(idx[0]))
        buf.add(sparse, out)
        if progress:
            progress(len(idx))
        if int(idx[-1]) == cache.bounds(pending[0])[1] - 1:  # the chunk is complete: write it
            c = pending.pop(0)
            cache.write(c, buf.tensors())
            buf = _ChunkBuffer()
            if c == missing[0] and pending:
                _after_first_chunk(cache, c, pending, time.perf_counter() - t0, on_estimate)
    return cache


def projected_cache(cache: ChunkedCache, first: int, pending: list[int], seconds: float) -> tuple[int, float]:
    """(bytes, seconds) the pending chunks will take, scaled by items from the first chunk's file."""
    start, end = cache.bounds(first)
    per_item_bytes, per_item_s = cache.path(first).stat().st_size / (end - start), seconds / (end - start)
    items = sum(cache.bounds(c)[1] - cache.bounds(c)[0] for c in pending)
    return int(per_item_bytes * items), per_item_s * items


def check_room(folder: Path, need_bytes: int, what: str) -> None:
    """DiskFullError, before the work, when `folder`'s disk has less free space than needed."""
    free = shutil.disk_usage(folder).free
    if need_bytes > free:
        raise DiskFullError(folder, f"{what} needs about {need_bytes / 1e9:.2f} GB more, but the disk has "
                                    f"{free / 1e9:.2f} GB free; stopped before filling it")


def _after_first_chunk(cache, first, pending, seconds, on_estimate) -> None:
    """Refuse a cache that cannot fit; tell a long run what it will cost (size and time)."""
    need, eta = projected_cache(cache, first, pending, seconds)
    n = cache.n_items
    check_room(cache.dir, need, f"the activation cache of {n:,} items")
    if on_estimate and len(pending) >= ESTIMATE_MIN_CHUNKS:
        on_estimate(f"extracting {n:,} items: the cache will take about {need / 1e9:.2f} GB more in "
                    f"{cache.dir}, and about {_duration(eta)} more at the first chunk's pace")


ESTIMATE_MIN_CHUNKS = 8  # print the projection only for runs this long (about 8,000 images and up)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def owned_chunks(cache: ChunkedCache) -> list[int]:
    """The chunks this process filled (all of them outside distributed runs)."""
    owned = getattr(cache, "owned", None)  # [] is meaningful: a rank can own no chunk of a tiny set
    return list(range(cache.n_chunks)) if owned is None else owned


def iter_image_chunks(cache: ChunkedCache, n_features: int,
                      sparse: bool = False) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Stream (features [b, F], other tensors) over this process's chunks of a filled cache;
    the features are dense, or a torch sparse CSR tensor with `sparse` (at 55,296 features a
    dense chunk of 1,024 rows is 0.2 GB, and every metric reads the non-zero entries only)."""
    for c in owned_chunks(cache):
        chunk = cache.read(c)
        if chunk is None:
            raise RuntimeError(f"cache chunk {c} of {cache.dir} vanished during the run; run again")
        yield (chunk.sparse_features(n_features) if sparse else chunk.features(n_features)), chunk.tensors


def cache_rows(cache: ChunkedCache, name: str) -> torch.Tensor:
    """One dense per-image tensor (e.g. "embedding") for all N items, in index order.

    In a distributed run each rank reads its own chunks and the blocks are all-gathered,
    so every rank gets the full [N, d] (what the judge and zero-shot steps index into).
    """
    rows = {}
    for c in owned_chunks(cache):
        chunk = cache.read(c)
        if chunk is None:
            raise RuntimeError(f"cache chunk {c} of {cache.dir} vanished during the run; run again")
        rows[chunk.start] = chunk.tensors[name]
    return gather_rows(rows)


def encode_texts_cached(encode: Callable[[list[str]], torch.Tensor], texts: list[str], cache_root: Path, key: dict,
                        *, batch_size: int = 512, chunk_size: int = 4096, sparse: bool = True,
                        rows: bool = False, progress: Progress | None = None) -> torch.Tensor | SparseRows:
    """Encode a list of texts through `encode`, chunk-cached under `key`; returns [len(texts), F]
    dense, or with `rows` (sparse caches only) as SparseRows, never dense in memory."""
    cache = ChunkedCache(Path(cache_root) / "texts", {**key, "kind": "texts", "n_texts": len(texts),
                                                      "sparse": sparse}, len(texts), chunk_size)
    out = []
    for c in range(cache.n_chunks):
        start, end = cache.bounds(c)
        chunk = cache.read(c)
        if chunk is None:
            chunk = cache.write(c, _encode_chunk(encode, texts[start:end], start, batch_size, sparse, key, progress))
        elif progress:
            progress(end - start)
        t = chunk.tensors
        out.append(t if rows else chunk.features(int(t["n_cols"][0])) if sparse else t["dense"])
    return SparseRows.concat(out, int(out[0]["n_cols"][0])) if rows else torch.cat(out)


def _encode_chunk(encode, texts, first: int, batch_size: int, sparse: bool, key: dict, progress) -> dict:
    """One text-cache chunk; sparse encodings go to CSR batch by batch, so a chunk of 4,096
    texts never exists dense (0.9 GB at 55,296 features)."""
    parts = []
    for i in range(0, len(texts), batch_size):
        t = encode(texts[i:i + batch_size]).float().cpu()
        check_finite(t, f"text encodings ({key.get('spec', '')})", first_index=first + i)
        parts.append(to_csr(t) | {"n_cols": t.shape[1]} if sparse else t)
        if progress:
            progress(t.shape[0])
    if not sparse:
        return {"dense": torch.cat(parts)}
    return cat_csr(parts) | {"n_cols": torch.tensor([parts[0]["n_cols"]])}
