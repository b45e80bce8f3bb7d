"""The whole `interpbench evaluate` at the Sparse CLIP paper's width, as a new user runs it.

    python benchmarks/bench_evaluate_scale.py [--n 2000 6000 20000] [--full] [--seed 0]

Builds a random TopK SAE in the project's own format from a seed: 55,296 latents, k = 365
(0.66% active), a random unit-norm decoder and its transpose as encoder, on `shapes:dense`'s
image embedding (so captions and the vocabulary go through it too). Then runs
`python -m interpbench evaluate` on it as a subprocess, once per N, each with an empty cache,
and prints per N: wall seconds, each stage's seconds (the results file's `timings`, where the
installed interpbench writes them), its CPU seconds (user + system: steadier than wall
time on a shared machine), peak resident memory of the subprocess (wait4's ru_maxrss), seconds per 1,000 images, and the ratios the scale targets name: peak-RSS growth
from the smallest to each larger N (target <= 15% from 2,000 to 20,000), the intervals' share
of the run (target <= 20% at 6,000) and, with --extraction, extraction throughput against a
hand-written forward plus the SAE's encode (benchmarks/bench_extraction.py; target >= 0.8).

The subprocess imports whatever `interpbench` the environment gives it (PYTHONPATH), so the
same script measures two checkouts side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_LATENTS, K, BASE = 55_296, 365, "shapes:dense"
STAGES = ("extraction", "captions", "vocabulary", "metrics", "counterfactual", "intervals", "zeroshot")


def build_sae(folder: Path, seed: int) -> str:
    """A random TopK SAE of the paper's width in the interpbench format; returns its spec."""
    import torch

    from interpbench.adapters import load_representation
    from interpbench.adapters.sae_canonical import CanonicalSAE, SAESettings, random_unit_rows, save_own

    d_in = load_representation(BASE).encode_text_embedding(["x"]).shape[-1]
    W_dec = random_unit_rows(N_LATENTS, d_in, seed)
    settings = SAESettings(activation="topk", k=K, base_model=BASE)
    sae = CanonicalSAE(W_dec.t().clone(), torch.zeros(N_LATENTS), W_dec, torch.zeros(d_in), settings)
    save_own(sae, folder, extra={"note": f"random TopK SAE, seed {seed} (benchmarks/bench_evaluate_scale.py)"})
    return f"sae:interpbench:{folder}@{BASE}"


def run_evaluate(spec: str, n: int, work: Path, extra: list[str]) -> dict:
    """One `interpbench evaluate` subprocess on an empty cache: wall, peak RSS, the results file."""
    out, cache = work / f"results-{n}", work / f"cache-{n}"
    cmd = [sys.executable, "-m", "interpbench", "evaluate", "--model", spec, "--n-images", str(n),
           "--results", str(out), "--cache-dir", str(cache), "--device", "cpu", "--quiet", *extra]
    t0 = time.perf_counter()
    # cwd: the work folder, never a checkout: `python -m` puts the cwd first on sys.path, where a
    # checkout's package would win over the PYTHONPATH under test
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not the running maximum
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"evaluate at N={n} failed:\n{log[-4000:]}")
    [path] = [p for p in out.rglob("*.json") if ".labels." not in p.name and ".features." not in p.name][:1] or [None]
    record = json.loads(path.read_text()) if path else {}
    return {"n": n, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss / 1024 ** 2,
            "timings": record.get("timings") or {}}


def extraction_ratio(spec: str, n: int) -> str:
    """bench_extraction.py's ratio against forward + encode, on the same batches in one run."""
    script = Path(__file__).with_name("bench_extraction.py")
    res = subprocess.run([sys.executable, str(script), "--model", spec, "--n", str(n), "--batch-size", "256",
                          "--device", "cpu", "--repeats", "1"], capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(("hand-written", "interpbench extraction", "ratio"))]
    return "\n".join(lines) if res.returncode == 0 else f"bench_extraction failed: {res.stderr[-2000:]}"


def print_table(rows: list[dict]) -> None:
    stages = [s for s in STAGES if any(s in r["timings"] for r in rows)]
    head = ["N", "wall s", "CPU s", "s/1k img", "peak RSS GB", *[f"{s} s" for s in stages], "RSS growth", "intervals share"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    base = rows[0]["peak_rss_gb"]
    for r in rows:
        t = r["timings"]
        share = f"{t['intervals'] / r['wall_s']:.0%}" if "intervals" in t else "–"
        cells = [f"{r['n']:,}", f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}", f"{1000 * r['wall_s'] / r['n']:.1f}",
                 f"{r['peak_rss_gb']:.2f}",
                 *[f"{t[s]:.1f}" if s in t else "–" for s in stages],
                 f"{r['peak_rss_gb'] / base - 1:+.0%}", share]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 6000, 20000])
    ap.add_argument("--full", action="store_true", help="also N = 100,000")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random SAE")
    ap.add_argument("--extraction", type=int, default=0, metavar="N",
                    help="also measure extraction against forward + encode on N images (0: skip)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the SAE, caches and results (default: temp)")
    ap.add_argument("--sae-only", action="store_true", help="only build the SAE under --work and print its spec")
    ap.add_argument("--evaluate-args", default="", help="extra options passed to evaluate, e.g. '--bootstrap 0'")
    args = ap.parse_args()
    ns = sorted(set(args.n + ([100_000] if args.full else [])))
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work or Path(tmp)).resolve()
        sae_dir = work / "sae"
        spec = f"sae:interpbench:{sae_dir}@{BASE}" if (sae_dir / "cfg.json").is_file() else build_sae(sae_dir, args.seed)
        if args.sae_only:
            print(spec)
            return
        import interpbench

        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}")
        print(f"interpbench from {Path(interpbench.__file__).parent}; SAE {N_LATENTS} latents, k={K}, seed {args.seed}")
        rows = []
        for n in ns:
            rows.append(run_evaluate(spec, n, work, args.evaluate_args.split()))
            r = rows[-1]
            print(f"N={n}: {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU, peak {r['peak_rss_gb']:.2f} GB, "
                  f"{r['timings']}", flush=True)
        print(f"load after: {os.getloadavg()}")
        print_table(rows)
        if args.extraction:
            print(extraction_ratio(spec, args.extraction))


if __name__ == "__main__":
    main()
