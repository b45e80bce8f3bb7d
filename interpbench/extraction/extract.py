"""Extraction: run a representation over a source once, cache it, stream it back.

Images are processed chunk by chunk (default 1,024 items); each chunk is one cache file,
so an interrupted run resumes at the first missing chunk. Within a chunk a DataLoader
batches the transformed images; inference runs under torch.inference_mode, with autocast
on CUDA only (on the CPU it would change the numbers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from interpbench.data.base import ImageSource, TransformedImages
from interpbench.extraction.cache import ChunkedCache, to_csr
from interpbench.guards import check_finite, check_nonnegative

Progress = Callable[[int], None]  # called with the number of items just finished


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _loader(source, transform, start, end, batch_size, num_workers, device):
    return torch.utils.data.DataLoader(
        TransformedImages(source, transform, start, end), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, pin_memory=device.type == "cuda",
        persistent_workers=False)


def image_outputs(rep, images: torch.Tensor, device) -> dict[str, torch.Tensor]:
    """Everything the metrics need from one image batch, as float32 CPU tensors."""
    images = images.to(device, non_blocking=True)
    with torch.inference_mode(), _autocast(device):
        out = {}
        if hasattr(rep, "sae_input_images"):  # SAEs: input, code, reconstruction
            x = rep.sae_input_images(images).float()
            z = rep.sae.encode(x).float()
            out.update(sae_input=x, sae_recon=rep.sae.decode(z).float(), features=z)
            out["zs_embedding"] = rep.encode_image_reconstructed(images).float()
            emb = rep.encode_image_embedding(images)
        else:
            emb = rep.encode_image_embedding(images)
            out["features"] = rep.encode_image_features(images).float()
            out["zs_embedding"] = out["features"] if rep.meta.kind == "sparse-clip" else emb.float()
        if emb is not None:
            out["embedding"] = emb.float()
    return {k: v.float().cpu() for k, v in out.items()}


def extract_images(rep, source: ImageSource, cache_root: Path, *, batch_size: int = 256, chunk_size: int = 1024,
                   device: str | torch.device = "cpu", num_workers: int = 0,
                   progress: Progress | None = None) -> ChunkedCache:
    """Fill the image cache of (rep, source); returns it. Only missing chunks are computed."""
    device = torch.device(device)
    key = {"kind": "images", "model": rep.meta.fingerprint, "spec": rep.meta.spec, "data": source.identity,
           "transform": repr(rep.transform)}
    cache = ChunkedCache(Path(cache_root) / "activations", key, len(source), chunk_size)
    rep.to(device)
    for c in range(cache.n_chunks):
        start, end = cache.bounds(c)
        if cache.read(c) is not None:
            if progress:
                progress(end - start)
            continue
        parts: dict[str, list[torch.Tensor]] = {}
        for images, idx in _loader(source, rep.transform, start, end, batch_size, num_workers, device):
            out = image_outputs(rep, images, device)
            for name, t in out.items():
                check_finite(t, f"{rep.meta.name}: image {name}", first_index=int(idx[0]))
            if rep.meta.nonnegative:
                check_nonnegative(out["features"], f"{rep.meta.name}: image features", first_index=int(idx[0]))
            for name, t in out.items():
                parts.setdefault(name, []).append(t)
            if progress:
                progress(len(idx))
        merged = {k: torch.cat(v) for k, v in parts.items()}
        feats = merged.pop("features")
        cache.write(c, {**to_csr(feats), **merged})
    return cache


def iter_image_chunks(cache: ChunkedCache, n_features: int) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Stream (dense features [b, F], other tensors) chunk by chunk from a filled cache."""
    for c in range(cache.n_chunks):
        chunk = cache.read(c)
        if chunk is None:
            raise RuntimeError(f"cache chunk {c} of {cache.dir} vanished during the run; run again")
        yield chunk.features(n_features), chunk.tensors


def encode_texts_cached(encode: Callable[[list[str]], torch.Tensor], texts: list[str], cache_root: Path, key: dict,
                        *, batch_size: int = 512, chunk_size: int = 4096, sparse: bool = True,
                        progress: Progress | None = None) -> torch.Tensor:
    """Encode a list of texts through `encode`, chunk-cached under `key`; returns [len(texts), F]."""
    cache = ChunkedCache(Path(cache_root) / "texts", {**key, "kind": "texts", "n_texts": len(texts),
                                                      "sparse": sparse}, len(texts), chunk_size)
    out = []
    for c in range(cache.n_chunks):
        start, end = cache.bounds(c)
        chunk = cache.read(c)
        if chunk is None:
            parts = []
            for i in range(start, end, batch_size):
                t = encode(texts[i:min(end, i + batch_size)]).float().cpu()
                check_finite(t, f"text encodings ({key.get('spec', '')})", first_index=i)
                parts.append(t)
                if progress:
                    progress(len(parts[-1]))
            dense = torch.cat(parts)
            chunk = cache.write(c, to_csr(dense) | {"n_cols": torch.tensor([dense.shape[1]])} if sparse
                                else {"dense": dense})
        elif progress:
            progress(end - start)
        t = chunk.tensors
        out.append(chunk.features(int(t["n_cols"][0])) if sparse else t["dense"])
    return torch.cat(out)
