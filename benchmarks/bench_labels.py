"""Image-route labelling at scale, against the bare similarity matmul in the same run.

The image route (docs/metrics.md#label-routes) streams the activations once, keeping each
feature's top-n images and their judge embeddings (`metrics.topn.TopNAccumulator`), then
scores the [F, d] top-n sums against the [V, d] word embeddings in blocks of words with a
running top-k (`metrics.labels.image_labels`): nothing of size N x V or F x V is ever held.

The baseline is the bare similarity matmul that any feature-to-word labelling must pay: the
same [F, d] @ [d, V] product, in the same word blocks, written into one preallocated output
block reused for every word block (as the route does), with the result thrown away.

Synthetic data: N images, each with `--active` of the F features active (default 0.66%, the
Sparse CLIP paper's density) at exponential values on random features, and Gaussian judge
embeddings of width d (`--dim`, default 512, a ViT-B CLIP judge). Generating the data is not
timed. Prints the two times, their ratio and the peak RSS of the process (the vocabulary,
the sums and the top-n store included).

    python benchmarks/bench_labels.py                       # F = 49,152, V = 98,000, N = 100,000
    python benchmarks/bench_labels.py --features 4096 --vocab 8000 --images 5000   # seconds
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from interpbench.metrics.inputs import Entries
from interpbench.metrics.labels import BLOCK_ENTRIES, image_labels
from interpbench.metrics.topn import TopNAccumulator


def batch(n: int, f: int, active: int, d: int, g: torch.Generator, start: int):
    """Entries of n images with `active` random features each, and their unit judge embeddings."""
    cols = torch.rand(n, f, generator=g).argsort(dim=1)[:, :active] if f <= 8192 else \
        torch.randint(0, f, (n, active), generator=g)  # (repeats at large F are rare and harmless)
    rows = torch.arange(n).repeat_interleave(active)
    vals = torch.empty(n * active).exponential_(generator=g)
    emb = torch.randn(n, d, generator=g)
    emb = emb / emb.norm(dim=1, keepdim=True)
    return Entries(rows, cols.flatten(), vals, n, f), torch.arange(start, start + n), emb


class Clock:
    """Accumulated wall and process CPU seconds of the `with` blocks (CPU time is what a loaded
    shared machine distorts least)."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def peak_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kb * 1024 / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=int, default=49_152)
    p.add_argument("--vocab", type=int, default=98_000)
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512, help="judge embedding width")
    p.add_argument("--active", type=float, default=0.0066, help="share of features active per image")
    p.add_argument("--top-n", type=int, default=20)
    p.add_argument("--k", type=int, default=5, help="words per feature")
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if min(a.features, a.vocab, a.images, a.dim, a.top_n, a.k, a.batch) < 1 or not 0 < a.active <= 1:
        p.error("sizes must be positive and 0 < --active <= 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(a.seed)
    active = max(1, round(a.active * a.features))
    vocab = torch.randn(a.vocab, a.dim, generator=g)
    print(f"F = {a.features:,}, V = {a.vocab:,}, N = {a.images:,}, d = {a.dim}, {active} active per image "
          f"({100 * active / a.features:.2f}%), top-n = {a.top_n}, k = {a.k}, threads = {torch.get_num_threads()}")

    topn = TopNAccumulator(a.features, a.top_n, a.dim)
    stream = Clock()
    emb_sum = torch.zeros(a.dim, dtype=torch.float64)  # the suite's mean image (ClarityAccumulator.sum_all)
    for start in range(0, a.images, a.batch):
        e, ids, emb = batch(min(a.batch, a.images - start), a.features, active, a.dim, g, start)
        with stream:
            topn.update(e, ids, emb)
            emb_sum += emb.sum(dim=0)
    words = Clock()
    with words:  # as MetricSuite.image_labels: centred on the average image
        counts = topn.counts()
        sums, valid = topn.sums(), (counts >= 2).numpy()
        labels = image_labels(sums, valid, vocab, k=a.k, counts=counts.numpy(), centre=(emb_sum / a.images).numpy())
    print(f"image route: {stream.wall + words.wall:.1f} s wall, {stream.cpu + words.cpu:.1f} s CPU "
          f"(streaming top-n {stream.wall:.1f} / {stream.cpu:.1f} s, words {words.wall:.1f} / {words.cpu:.1f} s); "
          f"{int(labels.labelled.sum()):,} features labelled")

    chunk = max(256, BLOCK_ENTRIES // a.features)
    unit = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-30)
    # One preallocated output block reused for every word block, as the route's word step does
    # (`labels._score_block`): a fresh [F, chunk] block per chunk would pay page faults that the
    # route does not pay, and flatter the ratio.
    buf = torch.empty(a.features * min(chunk, a.vocab), dtype=torch.float32)
    mm = Clock()
    with mm:
        for s in range(0, a.vocab, chunk):
            w = vocab[s:s + chunk]
            out = buf[: a.features * w.shape[0]].view(a.features, w.shape[0])
            torch.mm(unit, (w / w.norm(dim=1, keepdim=True)).T, out=out)  # the bare [F, d] @ [d, V] product
    print(f"bare similarity matmul [F, d] @ [d, V]: {mm.wall:.1f} s wall, {mm.cpu:.1f} s CPU")
    print(f"ratio image route / matmul: {(stream.wall + words.wall) / mm.wall:.2f} wall, "
          f"{(stream.cpu + words.cpu) / mm.cpu:.2f} CPU (target <= 2)")
    print(f"peak RSS: {peak_rss_gb():.2f} GB (target <= 4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
