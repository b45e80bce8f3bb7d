"""Coverage of the leaderboard's 95% intervals, by simulation on synthetic data with a known truth.

    python benchmarks/interval_coverage.py [--sims 400] [--b 200] [--quick] [--groups means,clarity,label_corr,gt]

Each row draws `sims` data sets from a population whose true value is known, computes the
interval exactly as an evaluation does (metrics.bootstrap / metrics.intervals) and counts
how often it covers the truth. Target: 0.93-0.97 at the default sizes.

Interval kinds (the `method` of each leaderboard interval):
- bootstrap-images / -pairs / -features, a mean over units (L0, FVU, zero-shot, paired
  multimodality, multimodal fraction, Active F%): a skewed (log-normal) unit value at the
  default size (2,000 units) and a small sample (30 units); the percentile interval beside
  the BCa one the project uses.
- bootstrap-features (Clarity): features drawn from a population of clarities (each
  feature's images are Gaussian around its own direction), N images each activating one
  feature; truth = the population mean of the per-feature expected pairwise cosine.
- bootstrap-images+features (label correlation): a crossed design, every feature scored on
  every image, 20 shared label words, each feature's activation a thresholded noisy
  multiple (strength ~ U(0, 2)) of its word's judge similarity; truth = the population mean
  of the per-feature Pearson r (Monte Carlo).
- bootstrap-images+concepts (GT coverage, GT AUROC mean): 29 concepts whose detector feature
  has a population AUROC drawn from U(0.6, 1.0); truth = P(AUROC >= 0.9) = 0.25 and E[AUROC] = 0.8;
  the studentized interval over concepts the evaluation uses.

Prints a markdown table (docs/metrics.md#interval-coverage keeps one).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import norm

from interpbench.metrics.bootstrap import (
    mean_interval,
    mean_interval_kind,
    percentile_interval,
    resample_indices,
)
from interpbench.metrics.inputs import to_entries, unit_rows
from interpbench.metrics.intervals import IntervalInputs, metric_intervals
from interpbench.metrics.suite import SuiteConfig

SIGMA = 1.0  # log-normal shape: skew like per-image ratios and per-pair differences


def mean_rows(n: int, sims: int, b: int, rng) -> list[tuple]:
    truth = np.exp(SIGMA ** 2 / 2)
    hit_p, hit_b, w_p, w_b = 0, 0, [], []
    for s in range(sims):
        x = rng.lognormal(0.0, SIGMA, n)
        p = percentile_interval(x[resample_indices(n, b, s)].mean(axis=1))
        c = mean_interval(x, b=b, seed=s)
        hit_p += p[0] <= truth <= p[1]
        hit_b += c[0] <= truth <= c[1]
        w_p.append(p[1] - p[0])
        w_b.append(c[1] - c[0])
    kind = "mean over units (images, pairs, features)"
    return [(kind, "percentile", n, hit_p / sims, np.mean(w_p) / truth),
            (kind, f"{mean_interval_kind(n)} (used)", n, hit_b / sims, np.mean(w_b) / truth)]


def _clarity_of_sigma(sigma: np.ndarray, d: int, rng, m: int = 4000) -> np.ndarray:
    """E cos(x, x') for x, x' iid N(mu, sigma^2 I_d), |mu| = 1 (Monte Carlo, m pairs)."""
    mu = np.zeros(d)
    mu[0] = 1.0
    out = []
    for s in sigma:
        x, y = mu + s * rng.normal(size=(m, d)), mu + s * rng.normal(size=(m, d))
        out.append(np.mean((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)))
    return np.array(out)


def clarity_rows(n: int, f: int, sims: int, b: int, rng) -> list[tuple]:
    d, lo, hi = 8, 0.3, 1.5
    grid = np.linspace(lo, hi, 61)
    truth = float(_clarity_of_sigma(grid, d, rng, 20000).mean())  # sigma ~ U(lo, hi)
    cfg, hits, widths = SuiteConfig(), 0, []
    for s in range(sims):
        sigma = rng.uniform(lo, hi, f)
        centres = unit_rows(torch.from_numpy(rng.normal(size=(f, d))), "c").numpy()
        owner = rng.integers(0, f, n)  # each image activates one feature
        emb = centres[owner] + sigma[owner, None] * rng.normal(size=(n, d))
        acts = np.zeros((n, f))
        acts[np.arange(n), owner] = rng.exponential(1.0, n) + 0.01
        inputs = IntervalInputs(features=to_entries(acts, "f", f),
                                judge_unit=unit_rows(torch.from_numpy(emb), "judge"))
        rec = metric_intervals(inputs, cfg, b, s)["clarity"]
        hits += rec["lo"] <= truth <= rec["hi"]
        widths.append(rec["hi"] - rec["lo"])
    return [("Clarity, features", "BCa (used)", f"{n} img / {f} feat", hits / sims,
             np.mean(widths) / truth)]


def _corr_of_beta(beta: np.ndarray, d: int, rng, m: int = 200_000) -> np.ndarray:
    """Population Pearson r between a = max(0, beta s + eps - C) and s = cos(e, t), e ~ N(0, I_d)
    (the law of s does not depend on the unit word t), eps ~ N(0, NOISE^2): Monte Carlo."""
    e = rng.normal(size=(m, d))
    s = e[:, 0] / np.linalg.norm(e, axis=1)
    eps = NOISE * rng.normal(size=m)
    return np.array([np.corrcoef(np.maximum(0.0, b * s + eps - C), s)[0, 1] for b in beta])


NOISE, C = 0.3, 0.2  # activation noise and threshold of the label-correlation simulation


def label_corr_rows(n: int, f: int, sims: int, b: int, rng) -> list[tuple]:
    """Crossed design: every feature's r uses every image, and features share label words."""
    d, words, lo, hi = 8, 20, 0.0, 2.0
    grid = np.linspace(lo, hi, 41)
    truth = float(_corr_of_beta(grid, d, rng).mean())  # beta ~ U(lo, hi)
    cfg, hits, widths = SuiteConfig(), 0, []
    for s in range(sims):
        vocab = unit_rows(torch.from_numpy(rng.normal(size=(words, d))), "w").numpy()
        label = vocab[rng.integers(0, words, f)]
        emb = unit_rows(torch.from_numpy(rng.normal(size=(n, d))), "judge")
        sim = emb.numpy() @ label.T  # [n, f]
        beta = rng.uniform(lo, hi, f)
        acts = np.maximum(0.0, beta * sim + NOISE * rng.normal(size=(n, f)) - C)
        inputs = IntervalInputs(features=to_entries(acts, "f", f), judge_unit=emb, label_text_judge=label)
        rec = metric_intervals(inputs, cfg, b, s)["label_corr_mean"]
        hits += rec["lo"] <= truth <= rec["hi"]
        widths.append(rec["hi"] - rec["lo"])
    return [("label correlation, images + features", "BC (used)", f"{n} img / {f} feat", hits / sims,
             np.mean(widths) / truth)]


def gt_rows(n: int, c: int, sims: int, b: int, rng) -> list[tuple]:
    cfg = SuiteConfig()
    truth = {"gt_coverage": (1.0 - 0.9) / 0.4, "gt_auroc_mean": 0.8}
    hits, widths = dict.fromkeys(truth, 0), {k: [] for k in truth}
    for s in range(sims):
        auc = rng.uniform(0.6, 1.0, c)
        shift = np.sqrt(2.0) * norm.ppf(auc)  # N(shift, 1) vs N(0, 1) has AUROC Phi(shift / sqrt 2)
        concepts = (rng.random((n, c)) < 0.3).astype(np.float32)
        acts = np.exp(rng.normal(size=(n, c)) + concepts * shift)  # positive, ranks unchanged
        inputs = IntervalInputs(features=to_entries(acts, "f", c), judge_unit=torch.ones(n, 1, dtype=torch.float64),
                                concepts=concepts, concept_names=[f"c:{i}" for i in range(c)])
        got = metric_intervals(inputs, cfg, b, s)
        for k, t in truth.items():
            hits[k] += got[k]["lo"] <= t <= got[k]["hi"]
            widths[k].append(got[k]["hi"] - got[k]["lo"])
    return [(f"{k}, images + concepts", "studentized (used)", f"{n} img / {c} concepts", hits[k] / sims,
             np.mean(widths[k]) / truth[k]) for k in truth]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--b", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="smaller Clarity and ground-truth data sets (a smoke run)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulations (another seed: new data sets)")
    ap.add_argument("--groups", default="means,clarity,label_corr,gt",
                    help="comma-separated row groups to run (default: all)")
    a = ap.parse_args()
    sims = a.sims
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    print(f"| interval kind | interval | size | coverage ({sims} sims, B={a.b}) | mean width / truth |")
    print("|---|---|---|---|---|", flush=True)
    groups = {"means": lambda: mean_rows(2000, sims, a.b, rng) + mean_rows(30, sims, a.b, rng),
              "clarity": lambda: clarity_rows(600 if a.quick else 2000, 60 if a.quick else 200, sims, a.b, rng),
              "label_corr": lambda: label_corr_rows(600 if a.quick else 2000, 60 if a.quick else 200, sims, a.b, rng),
              "gt": lambda: gt_rows(1000 if a.quick else 2000, 29, sims, a.b, rng)}
    unknown = set(a.groups.split(",")) - set(groups)
    if unknown:
        ap.error(f"--groups: unknown {sorted(unknown)}; expected some of {sorted(groups)}")
    for name in a.groups.split(","):
        group = groups[name]
        for kind, how, size, cov, width in group():
            print(f"| {kind} | {how} | {size} | {cov:.3f} | {width:.3f} |", flush=True)
    print(f"\n{time.time() - t0:.0f} s")

if __name__ == "__main__":
    main()
