"""Time the full metric suite against the bare encode matmul on the same synthetic data.

    python benchmarks/bench_metrics.py --n 100000

Synthetic Sparse-CLIP-sized data: N images, F = 55,296 features (72 x 768), d = 768,
0.66% of features active per input (Sparse CLIP's headline sparsity). Per batch we time
(a) the bare encoder matmul x[B, 768] @ W[768, F] that produces such activations and
(b) the metric suite's updates on the same batch (Clarity + Active F% + L0 + baseline,
top-n store, label correlation, multimodality on paired text features, reconstruction),
then (b) also includes finalize: top-n Clarity, polysemanticity (seeded subset),
redundancy, labels from a vocabulary, label correlation and agreement. Data generation
is timed by neither. Ground truth is left out: it is defined for Shapes concepts only and
keeps its (small) evaluation set dense by design.

Prints both times, their ratio (target <= 1.5) and the peak resident memory (target <= 4 GB).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from interpbench.metrics.label_correlation import label_text_from_vocab
from interpbench.metrics.labels import vocabulary_labels
from interpbench.metrics.suite import MetricSuite, SuiteConfig


def sparse_batch(g: torch.Generator, b: int, f: int, active: int) -> torch.Tensor:
    """[b, f] CSR batch with `active` distinct features per row, exponential values."""
    cols = torch.rand(b, f, generator=g).topk(active, dim=1).indices.sort(dim=1).values if f <= 4096 else \
        _distinct_cols(g, b, f, active)
    vals = torch.empty(b * active).exponential_(generator=g)
    crow = torch.arange(0, b * active + 1, active)
    return torch.sparse_csr_tensor(crow, cols.reshape(-1), vals, (b, f), check_invariants=False)


def _distinct_cols(g, b, f, active):
    # sorted draws from [0, f - active] plus 0..active-1: strictly increasing, all below f
    cols = torch.randint(0, f - active + 1, (b, active), generator=g).sort(dim=1).values
    return cols + torch.arange(active)[None]


def run(n: int, f: int, d: int, sparsity: float, batch: int, vocab: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    active = max(1, round(f * sparsity))
    w = torch.randn(d, f, generator=g) / d ** 0.5
    suite = MetricSuite(f, d, SuiteConfig(seed=seed))
    t_mm = t_suite = 0.0
    for start in range(0, n, batch):
        b = min(batch, n - start)
        x = torch.randn(b, d, generator=g)
        feats, text = sparse_batch(g, b, f, active), sparse_batch(g, b, f, active)
        x_hat = x + 0.1 * torch.randn(b, d, generator=g)
        ids = torch.arange(start, start + b)
        t0 = time.perf_counter()
        encoded = x @ w  # the bare encode
        t1 = time.perf_counter()
        del encoded  # the benchmark's own [batch, F] output must not stay alive into finalize
        suite.update_images(feats, x, ids)
        suite.update_pairs(feats, text)
        suite.update_reconstruction(x, x_hat, feats)
        t2 = time.perf_counter()
        t_mm, t_suite = t_mm + (t1 - t0), t_suite + (t2 - t1)
        print(f"\r{start + b}/{n} images  matmul {t_mm:.1f}s  suite {t_suite:.1f}s", end="", file=sys.stderr)
    print(file=sys.stderr)
    # kept sparse until labelling streams them (a dense [V, F] list would dominate peak memory)
    word_chunks = [sparse_batch(g, min(1024, vocab - i), f, active) for i in range(0, vocab, 1024)]
    peak_updates = _peak_gb()
    vocab_judge = torch.randn(vocab, d, generator=g)
    t0 = time.perf_counter()
    labels = vocabulary_labels((c.to_dense() for c in word_chunks), k=5)
    suite.label_text_judge = label_text_from_vocab(labels, vocab_judge)
    metrics, _ = suite.finalize(labels=labels, vocab=[f"w{i}" for i in range(vocab)], vocab_text_judge=vocab_judge)
    t_final = time.perf_counter() - t0
    return {"matmul_s": t_mm, "suite_update_s": t_suite, "finalize_s": t_final, "metrics": metrics,
            "peak_after_updates_gb": peak_updates}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # ru_maxrss is KiB on Linux


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="number of synthetic images (default 100,000)")
    p.add_argument("--features", type=int, default=55_296)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--sparsity", type=float, default=0.0066, help="share of active features per input")
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=4096, help="vocabulary words for the labelling step")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    r = run(a.n, a.features, a.dim, a.sparsity, a.batch, a.vocab, a.seed)
    suite = r["suite_update_s"] + r["finalize_s"]
    peak_gb = _peak_gb()
    print(f"N={a.n} F={a.features} d={a.dim} active={a.sparsity:.2%} batch={a.batch} "
          f"threads={torch.get_num_threads()} seed={a.seed}")
    print(f"bare encode matmul : {r['matmul_s']:8.2f} s")
    print(f"metric suite       : {suite:8.2f} s  (updates {r['suite_update_s']:.2f} s, finalize {r['finalize_s']:.2f} s)")
    print(f"ratio suite/matmul : {suite / r['matmul_s']:8.2f}   (target <= 1.5)")
    print(f"peak RSS           : {peak_gb:8.2f} GB (target <= 4; {r['peak_after_updates_gb']:.2f} GB before finalize)")
    print("clarity {clarity:.4f}  L0 {l0:.1f}  multimodal {multimodal_fraction:.3f}  "
          "label corr {label_corr_mean:.4f}  FVU {fvu:.4f}".format(**r["metrics"]))


if __name__ == "__main__":
    main()
