"""The metric suite at 1x, 4x and 16x data: time should grow linearly, peak memory stay flat.

    python benchmarks/bench_scaling.py [--base 4096] [--features 4096] [--dim 64] [--density 0.01]

Each size runs in its own process (peak RSS from resource.getrusage is per process), and
streams synthetic sparse activations chunk by chunk through MetricSuite.update_images and
update_pairs, then finalize, as `interpbench evaluate` does with cached chunks. Chunks are
drawn from a seeded generator, so nothing of size N is ever held; generation time is not
counted. Prints per size: streaming and finalize seconds, microseconds per image, peak RSS; then
the ratios (finalize works per feature, so only the streaming part should grow with N).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch


def _chunk(c: int, rows: int, args) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + c)
    img = torch.rand(rows, args.features, generator=g)
    img = torch.where(img < args.density, img / args.density, torch.zeros(()))
    txt = torch.rand(rows, args.features, generator=g)
    txt = torch.where(txt < args.density, txt / args.density, torch.zeros(()))
    return img, txt, torch.randn(rows, args.dim, generator=g)


def run_one(n: int, args) -> dict:
    from interpbench.metrics.suite import MetricSuite, SuiteConfig

    suite = MetricSuite(args.features, args.dim, SuiteConfig(polysemanticity_max_features=50))
    spent = 0.0
    for c, start in enumerate(range(0, n, args.chunk)):
        rows = min(args.chunk, n - start)
        img, txt, judge = _chunk(c, rows, args)
        t0 = time.perf_counter()
        suite.update_images(img, judge, torch.arange(start, start + rows))
        suite.update_pairs(img, txt)
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics, _ = suite.finalize()
    final = time.perf_counter() - t0
    return {"n": n, "seconds": spent + final, "stream": spent, "finalize": final, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "clarity": metrics.get("clarity")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=4096, help="images at 1x")
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=64, help="judge embedding width")
    ap.add_argument("--density", type=float, default=0.01, help="share of active features")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.child is not None:
        print(json.dumps(run_one(args.child, args)))
        return
    rows = []
    for scale in (1, 4, 16):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", str(scale * args.base)]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    print(f"machine: {platform.node()} {platform.machine()}, 1 torch thread; F={args.features} d={args.dim} "
          f"density={args.density} chunk={args.chunk}")
    print(f"{'scale':>5} {'images':>8} {'total s':>8} {'stream s':>9} {'finalize s':>10} {'stream us/img':>13} "
          f"{'peak RSS MB':>12}")
    for scale, r in zip((1, 4, 16), rows, strict=True):
        print(f"{scale:>4}x {r['n']:>8} {r['seconds']:>8.2f} {r['stream']:>9.2f} {r['finalize']:>10.2f} "
              f"{1e6 * r['stream'] / r['n']:>13.1f} {r['peak_rss_mb']:>12.0f}")
    t, m = [r["stream"] for r in rows], [r["peak_rss_mb"] for r in rows]
    print(f"streaming time ratio 4x/1x = {t[1] / t[0]:.2f} (linear: 4), 16x/1x = {t[2] / t[0]:.2f} (linear: 16); "
          "finalize is per feature, independent of N")
    print(f"peak RSS ratio 16x/1x = {m[2] / m[0]:.2f} (flat: 1)")


if __name__ == "__main__":
    main()
