"""Time the bootstrap intervals (metrics.intervals.metric_intervals) at the paper's width.

    python benchmarks/bench_intervals.py [--n 6000] [--features 55296] [--k 365] [--b 200]

Synthetic inputs shaped like `interpbench evaluate` on Shapes with the ground-truth judge: N
images with k active features each (exponential values), a 29-dimensional 0/1 concept judge,
29 ground-truth concepts, a label text vector per feature and reconstruction rows. Prints the
seconds, the peak resident memory and its growth over the inputs themselves.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from interpbench.metrics.inputs import Entries, unit_rows
from interpbench.metrics.intervals import IntervalInputs, metric_intervals
from interpbench.metrics.suite import SuiteConfig


def inputs(n: int, f: int, k: int, c: int = 29, seed: int = 0) -> IntervalInputs:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), k)
    cols = np.concatenate([rng.choice(f, k, replace=False) for _ in range(n)])
    vals = rng.exponential(1.0, n * k).astype(np.float32)
    e = Entries(torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(vals), n, f)
    concepts = (rng.random((n, c)) < 0.2).astype(np.float32)
    concepts[concepts.sum(1) == 0, 0] = 1.0
    judge = torch.from_numpy(concepts.astype(np.float64))
    x = torch.from_numpy(rng.normal(size=(n, 64)))
    return IntervalInputs(features=e, judge_unit=unit_rows(judge, "judge"), concepts=concepts,
                          concept_names=[f"c:{i}" for i in range(c)], label_judge=judge,
                          label_text_judge=np.eye(c)[rng.integers(0, c, f)],
                          top_words=[f"{i % c}" for i in range(f)], sae_input=x, sae_recon=x + 0.1)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--features", type=int, default=55296)
    ap.add_argument("--k", type=int, default=365)
    ap.add_argument("--b", type=int, default=200)
    a = ap.parse_args()
    inp = inputs(a.n, a.features, a.k)
    before = _rss_gb()
    t0 = time.perf_counter()
    out = metric_intervals(inp, SuiteConfig(), a.b, 0)
    dt = time.perf_counter() - t0
    print(f"N={a.n} F={a.features} k={a.k} B={a.b} threads={torch.get_num_threads()}: intervals {dt:.1f} s, "
          f"peak RSS {_rss_gb():.2f} GB ({before:.2f} GB with the inputs), {len(out)} intervals")


if __name__ == "__main__":
    main()
