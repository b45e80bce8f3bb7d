"""Extraction throughput against the bare open_clip forward on the same batches, in one run.

    python benchmarks/bench_extraction.py [--model SPEC] [--n 512] [--batch-size 64] [--device auto]

Baseline: what one writes by hand: a DataLoader over the same images with the model's
transform (same batch size, workers and pinned memory), then model.encode_image under
inference_mode (fp16 autocast on GPU); for an SAE spec (sae:...@BASE), the base model's
open_clip forward to the SAE's input followed by the SAE's own `encode`. Target ratio >= 0.8
for an SAE at the Sparse CLIP paper's width (55,296 latents, k = 365; build one with
benchmarks/bench_evaluate_scale.py --sae-only --work DIR). Measured: interpbench's extract_images into an
empty cache (forward, feature split, finiteness checks, sparse CSR conversion, atomic
safetensors writes; for an SAE also its reconstruction), and again on the filled cache (a second run reads it). Each is run
--repeats times, alternating, and the median is reported. Target ratio >= 0.9.
Prints images/s, the ratio, and the peak resident memory (resource.getrusage).
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import tempfile
import time

import torch

from interpbench.adapters import load_representation
from interpbench.data import load_source
from interpbench.data.base import TransformedImages
from interpbench.extraction.extract import _autocast, default_workers, extract_images


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_written(rep):
    """images -> what a user would compute by hand: the CLIP embedding, or an SAE's codes."""
    if hasattr(rep, "sae"):  # SAE: the base CLIP forward to the SAE's input, then the SAE's encode
        return lambda images: rep.sae.encode(rep.sae_input_images(images))
    return rep.model.encode_image


def bare_forward(rep, source, batch_size, workers, device) -> float:
    """Seconds for DataLoader + the hand-written forward over all images."""
    forward = hand_written(rep)
    loader = torch.utils.data.DataLoader(TransformedImages(source, rep.transform, 0, len(source)), batch_size=batch_size, shuffle=False,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode(), _autocast(device):
        for images, _ in loader:
            forward(images.to(device, non_blocking=True)).float().cpu()
    _sync(device)
    return time.perf_counter() - t0


def extraction(rep, source, batch_size, workers, device, cache_dir) -> float:
    _sync(device)
    t0 = time.perf_counter()
    extract_images(rep, source, cache_dir, batch_size=batch_size, chunk_size=1024, device=device,
                   num_workers=workers)
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="openclip:shapes-vit-tiny/random")
    ap.add_argument("--dataset", default="shapes")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 8 on GPU, 0 on CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    rep = load_representation(args.model).to(device)
    if not hasattr(rep, "model") and not hasattr(rep, "sae"):
        raise SystemExit(f"{args.model}: the baseline needs an open_clip model or an SAE on one "
                         "(openclip:, sparseclip: or sae:...@BASE spec)")
    source = load_source(args.dataset, n_images=args.n, seed=0)
    workers = default_workers(device) if args.workers is None else args.workers
    bare_forward(rep, source, args.batch_size, workers, device)  # warm-up: kernels, allocator, page cache
    bare, fresh, cached = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            bare.append(bare_forward(rep, source, args.batch_size, workers, device))
            fresh.append(extraction(rep, source, args.batch_size, workers, device, d))
            cached.append(extraction(rep, source, args.batch_size, workers, device, d))
    n = len(source)
    ips = {k: n / statistics.median(v) for k, v in (("bare", bare), ("extract", fresh), ("cached", cached))}
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}"
    print(f"machine: {platform.node()} {platform.machine()} {dev}; torch threads {torch.get_num_threads()}; "
          f"workers {workers}")
    print(f"model {args.model}  data {args.dataset}  n={n}  batch={args.batch_size}  repeats={args.repeats}")
    sae = hasattr(rep, "sae")
    print(f"hand-written {'forward + SAE encode' if sae else 'open_clip forward'}: {ips['bare']:10.1f} images/s")
    print(f"interpbench extraction : {ips['extract']:10.1f} images/s")
    print(f"second run (cache hit) : {ips['cached']:10.1f} images/s")
    print(f"ratio extraction/bare  : {ips['extract'] / ips['bare']:.3f}  (target >= {0.8 if sae else 0.9})")
    print(f"peak RSS               : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
