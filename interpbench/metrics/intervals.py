"""95% bootstrap intervals for the suite's leaderboard metrics, from arrays already computed.

One resample of the N evaluation images (seeded, `bootstrap.resample_indices`) is shared
by every image-level metric in a replicate, and each metric is recomputed on the resampled
rows (the rows come from the activation cache; no model runs again). Label correlation
recomputes the sums its accumulator keeps with each image weighted by its number of copies,
for all replicates at once; ground truth reuses the exact AUROC of the point value. The
Clarity baseline is a mean cosine over pairs of distinct images, so it is recomputed with
each image weighted by its number of copies and copies never paired with each other
(`weighted_pairwise_cosine`).

- images: L0, Clarity baseline, FVU (both variants), zero-shot per attribute and mean.
- images + concepts (two levels): GT coverage, GT AUROC mean and GT label accuracy
  (`_ground_truth`); a mean over 29 concepts is a small sample, so their ends are the
  studentized (bootstrap-t) interval over concepts, not BC.
- features (seed + 1): Clarity and Clarity@n (means over features of per-feature values
  that each carry their own images' noise: `_clarity_replicates`), Active F% (see
  `_clarity_family` for why not images).
- images + features (two levels): label correlation, a mean over features of correlations
  that all use every image: each replicate recomputes the per-feature values on the
  resampled images and averages them over the resample of the features.
- the multimodality metrics (fraction, paired score) get theirs from `MetricSuite.extras()`.

Ground truth: each concept keeps its full-sample best feature in every replicate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .bootstrap import (
    DEFAULT_B,
    bca_interval,
    interval_record,
    mean_jackknife,
    resample_indices,
    studentized_from,
)
from .ground_truth import GroundTruthAccumulator, GroundTruthResult, exact_auroc, label_accuracy
from .inputs import Entries
from .label_correlation import labelled_rows, pearson_from_sums
from .reconstruction import per_sample_ratios
from .topn import TopNAccumulator

IMAGES, FEATURES, PAIRS = "bootstrap-images", "bootstrap-features", "bootstrap-pairs"
TWO_LEVEL = "bootstrap-images+features"
TWO_LEVEL_CONCEPTS = "bootstrap-images+concepts"


@dataclass
class FeatureChunks:
    """The N x F activations, read chunk by chunk: `read()` yields (first row, Entries of that
    chunk's rows numbered from 0); chunks come in row order and cover every row once. Every
    interval is a sum over images of per-image terms, or a per-feature value built from such
    sums, so nothing of size N x F is ever held, not even sparse (the activation cache is the
    store)."""

    n_rows: int
    n_cols: int
    read: Callable[[], Iterator[tuple[int, Entries]]]


def as_chunks(features) -> FeatureChunks:
    """FeatureChunks as they are, or one Entries of all N rows as a single chunk."""
    if isinstance(features, FeatureChunks):
        return features
    return FeatureChunks(features.n_rows, features.n_cols, lambda: iter([(0, features)]))


@dataclass
class IntervalInputs:
    """Everything the intervals need, one row per evaluation image (row i = image i)."""

    features: object  # FeatureChunks, or Entries of all N images (metrics.inputs.Entries)
    judge_unit: torch.Tensor  # [N, d] unit judge embeddings (float64)
    label_text_judge: np.ndarray | None = None  # [F, d] judge text embedding of each label (NaN: none)
    concepts: np.ndarray | None = None  # [N, C] 0/1
    concept_names: list[str] | None = None
    top_words: list[str | None] | None = None  # [F] each feature's top vocabulary word
    concept_synonyms: dict[str, tuple[str, ...]] | None = None  # as the suite's label accuracy
    sae_input: torch.Tensor | None = None  # [N, d] SAE input and reconstruction, or None
    sae_recon: torch.Tensor | None = None
    label_judge: torch.Tensor | None = None  # [N, d] what label correlation scores against, if not judge_unit
    zeroshot: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # key -> (image ids, correct)
    # labelling routes beside the primary labels (evaluation/label_routes.py): route -> [F, d] judge
    # text embedding of each label, and route -> [F] top words; their intervals come back as "key@route"
    label_routes: dict[str, np.ndarray] = field(default_factory=dict)
    route_top_words: dict[str, list] = field(default_factory=dict)


def metric_intervals(inputs: IntervalInputs, cfg, b: int = DEFAULT_B, seed: int = 0) -> dict[str, dict]:
    """metric key -> interval_record for every metric the inputs allow (cfg: a SuiteConfig).

    Row 0 of every resample is the identity (each image, feature and concept once), so each
    statistic's first value is its point estimate, computed by the same code as its
    replicates: the BCa interval's bias correction compares the replicates with it."""
    chunks = as_chunks(inputs.features)
    n = chunks.n_rows
    idx = _with_identity(resample_indices(n, b, seed))
    fidx = _with_identity(resample_indices(chunks.n_cols, b, seed + 1)) if chunks.n_cols else None
    weights = np.stack([np.bincount(i, minlength=n) for i in idx]).astype(np.float64)  # [b + 1, N]
    stats: dict[str, tuple] = {}  # key -> (point + replicates, method[, jackknife values])
    matched = _clarity_family(inputs, chunks, cfg, fidx, weights, stats)
    if inputs.label_text_judge is not None or inputs.label_routes:
        _label_correlation(inputs, chunks, fidx, weights, stats, matched)
    # the multimodality metrics' intervals come from MetricSuite.extras() (over features and pairs)
    if inputs.concepts is not None and inputs.concept_names is not None:
        _ground_truth(inputs, chunks, cfg, idx, stats, seed)
    if inputs.sae_input is not None:
        _reconstruction(inputs, weights, stats)
    if inputs.zeroshot:
        _zeroshot(inputs.zeroshot, weights, stats)
    out = {}
    for key, (values, method, *extra) in stats.items():
        values = np.asarray(values, dtype=np.float64)
        jack, ses = (*extra, None, None)[:2]
        if ses is not None and ses[0] > 0:  # a mean over few units with its se per replicate
            ci = _clip01(studentized_from(values, ses))
            rec = interval_record(ci, method, b, seed, kind="studentized")
        else:
            ci = bca_interval(values[1:], float(values[0]), jack)
            rec = interval_record(ci, method, b, seed, kind="bc" if jack is None else "bca")
        if rec is not None:
            # the replicates themselves: two results on the same images and seed share the image
            # resamples, so validate-metrics can bootstrap a difference pairwise
            rec["replicates"] = [round(float(v), 6) if np.isfinite(v) else None for v in values[1:]]
            out[key] = rec
    return out


def _clip01(ci: tuple[float, float] | None) -> tuple[float, float] | None:
    """A share's or an AUROC's interval kept inside [0, 1] (bootstrap-t ends can leave it)."""
    return None if ci is None else (min(max(ci[0], 0.0), 1.0), min(max(ci[1], 0.0), 1.0))


def _with_identity(idx: np.ndarray) -> np.ndarray:
    """The resamples [b, n] with the identity resample range(n) prepended as row 0."""
    return np.vstack([np.arange(idx.shape[1])[None, :], idx])


def _feature_mean(per: np.ndarray, f: np.ndarray | None) -> float:
    """Mean of the defined per-feature values over a resample f of the features."""
    v = per[f] if f is not None else per
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def weighted_pairwise_cosine(sums: torch.Tensor, n: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean cosine over pairs of distinct images, each image j counted w_j times: with
    S = sum w_j e_j, n = sum w_j and q = sum w_j^2, (||S||^2 - q) / (n^2 - q). Copies of one
    image are not paired with each other (a U-statistic bootstrap): pairing them would add
    cosines of 1 and bias Clarity up for features with few images. w = 1 gives Eq. 2."""
    sq = (sums.to(torch.float64) ** 2).sum(dim=-1)
    den = n * n - q
    out = torch.full_like(sq, float("nan"))
    ok = den > 0
    out[ok] = (sq[ok] - q[ok]) / den[ok]
    return out


def _clarity_family(inputs, chunks, cfg, fidx, weights, stats) -> np.ndarray:
    """Clarity, Clarity@n, the Clarity baseline, L0 and Active F%, in one pass over the chunks:
    per image its count of active features, per feature its count and the sum of its images'
    unit judge embeddings (float32 terms, as the suite's RowSums), and its top-n images.
    Returns the [F] features with a full top-n set (the frequency-matched ones)."""
    emb = inputs.judge_unit
    emb32, d = emb.float(), emb.shape[1]
    per_image, count = np.zeros(chunks.n_rows), np.zeros(chunks.n_cols)
    sums = torch.zeros(chunks.n_cols, d, dtype=torch.float64)
    top = TopNAccumulator(chunks.n_cols, cfg.top_n, d, cfg.tau)
    for start, e in chunks.read():
        ids = torch.arange(start, start + e.n_rows)
        keep = e.select(e.above(cfg.tau))
        per_image[start:start + e.n_rows] = np.bincount(keep.rows.numpy(), minlength=e.n_rows)
        count += np.bincount(keep.cols.numpy(), minlength=chunks.n_cols)
        sums.index_add_(0, keep.cols, emb32[keep.rows + start].double())
        top.update(e, ids, emb32[start:start + e.n_rows])
    n_top = top.counts().double()
    for key, per in (("clarity", _per_feature_clarity(sums, torch.from_numpy(count), max(cfg.n_min, 2))),
                     ("clarity_matched", _per_feature_clarity(top.sums().double(), n_top, cfg.top_n))):
        values = [_feature_mean(per, f) for f in fidx] if fidx is not None else [_feature_mean(per, None)]
        stats[key] = (values, FEATURES, mean_jackknife(per[np.isfinite(per)]))
    w = torch.from_numpy(weights)
    base = weighted_pairwise_cosine(w @ emb, w.sum(dim=1), (w * w).sum(dim=1))
    stats["clarity_baseline"] = (base.numpy(), IMAGES)
    stats["l0"] = (weights @ per_image / weights.sum(axis=1), IMAGES, mean_jackknife(per_image))
    # Active F% resamples features only: whether a feature reaches n_min images is a threshold
    # on its count, and resampled images drop rare features (P(image left out) ~ 0.37), so an
    # image bootstrap would sit below the point value (measured: 80.5% -> [65, 75] for shapes:sae).
    if fidx is not None:
        active = count >= cfg.n_min
        stats["active_features_pct"] = (100.0 * active[fidx].mean(axis=1), FEATURES, mean_jackknife(100.0 * active))
    return (n_top >= cfg.top_n).numpy()


def _per_feature_clarity(sums: torch.Tensor, n: torch.Tensor, n_min: int) -> np.ndarray:
    """[F] Clarity of each feature from the sum of its images' unit embeddings and their number
    (Eq. 2), NaN below n_min images.

    The intervals resample the features, not the images: each feature's Clarity is a mean
    over its own images, so its value already carries their sampling noise, and the mean over
    features is a two-stage sample whose first stage alone gives the variance (Davison &
    Hinkley 1997, sec. 3.8). Resampling the images as well counted that noise twice (measured
    coverage 1.000 instead of 0.95, benchmarks/interval_coverage.py)."""
    per = weighted_pairwise_cosine(sums, n, n).numpy()
    per[n.numpy() < n_min] = np.nan
    return per


def _label_correlation(inputs, chunks, fidx, weights, stats, matched: np.ndarray) -> None:
    """Per replicate, each feature's Pearson r from weighted sums over the images (the sums
    LabelCorrelationAccumulator keeps, with each image counted as often as it is drawn), for
    all replicates at once and a chunk of images at a time: the per-feature sums of a, a^2
    and a s (one per labelling) are sparse [F, chunk] x [chunk, b + 1] products, and the
    similarity s_uj = e_j . t_u is needed only for the distinct label words u (over all
    images) and at the active entries, so no [N, F] or per-replicate [F, d] array is built."""
    # the same judge rows the suite used: unit embeddings, or raw concept vectors ("dot" similarity)
    emb = inputs.judge_unit if inputs.label_judge is None else inputs.label_judge
    em = emb.double().numpy()
    sets = ({"label_corr_mean": inputs.label_text_judge} if inputs.label_text_judge is not None else {}) | {
        f"label_corr_mean@{r}": t for r, t in inputs.label_routes.items()}
    words = [_label_words(np.asarray(text, dtype=np.float64)) for text in sets.values()]
    cols = weights.shape[0]
    sums = [np.zeros((chunks.n_cols, cols)) for _ in range(2 + len(words))]  # a, a^2, then a s per set
    sim_sums = [(np.zeros((len(u), cols)), np.zeros((len(u), cols))) for _, u in words]  # s, s^2 per word
    for start, e in chunks.read():
        wt = np.ascontiguousarray(weights[:, start:start + e.n_rows].T)  # [chunk, b + 1]: fits in cache
        rows, feats, a = e.rows.numpy(), e.cols.numpy(), e.vals.double().numpy()
        image = em[start:start + e.n_rows]
        data = [a, a * a] + [a * _entry_similarity(image, rows, feats, *w) for w in words]
        for total, d in zip(sums, data, strict=True):
            total += sp.csr_matrix((d, (feats, rows)), shape=(chunks.n_cols, e.n_rows)) @ wt
        for (ss, ss2), (_, unit) in zip(sim_sums, words, strict=True):
            sim = image @ unit.T  # [chunk, U]
            ss += sim.T @ wt
            ss2 += (sim * sim).T @ wt
    n = torch.from_numpy(weights.sum(axis=1))[None, :]
    for key, (word_of, _), sas, (ss, ss2) in zip(sets, words, sums[2:], sim_sums, strict=True):
        per = np.full((chunks.n_cols, cols), np.nan)
        rows = np.flatnonzero(word_of >= 0)
        for start in range(0, len(rows), 4096):  # [4096, b + 1] temporaries, not [F, b + 1] ones
            f = rows[start:start + 4096]
            per[f] = pearson_from_sums(n, *(torch.from_numpy(x) for x in (
                sums[0][f], sums[1][f], ss[word_of[f]], ss2[word_of[f]], sas[f]))).numpy()
        stats[key] = ([_feature_mean(per[:, r], fidx[r] if fidx is not None else None)
                       for r in range(cols)], TWO_LEVEL)
        per[~matched] = np.nan  # frequency-matched: the features with a full top-n set (fixed)
        stats[key.replace("label_corr_mean", "label_corr_matched")] = (
            [_feature_mean(per[:, r], fidx[r] if fidx is not None else None) for r in range(cols)], TWO_LEVEL)


def _label_words(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(word_of [F]: index of each feature's label among the distinct labels, -1 unlabelled;
    the distinct labels as unit rows [U, d])."""
    labelled = labelled_rows(torch.from_numpy(text)).numpy()
    word_of = np.full(len(text), -1, dtype=np.int64)
    if not labelled.any():
        return word_of, np.zeros((0, text.shape[1]))
    unit, inv = np.unique(text[labelled], axis=0, return_inverse=True)
    word_of[labelled] = inv.reshape(-1)
    return word_of, unit / np.linalg.norm(unit, axis=1, keepdims=True)


def _entry_similarity(image, rows, feats, word_of, unit, block: int = 1 << 23) -> np.ndarray:
    """s_u(i)j = e_j . t_u(i) at each active entry (image row j, feature i); 0 for unlabelled features."""
    out = np.zeros(len(rows))
    ok = np.flatnonzero(word_of[feats] >= 0)
    step = max(1, block // image.shape[1])
    for start in range(0, len(ok), step):
        k = ok[start:start + step]
        out[k] = np.einsum("ij,ij->i", image[rows[k]], unit[word_of[feats[k]]])
    return out


def _ground_truth(inputs, chunks, cfg, idx, stats, seed: int) -> None:
    """Two levels, images then concepts. Each concept keeps its full-sample best feature (as
    the point does); a replicate recomputes that feature's AUROC on the resampled images and
    averages over a resample of the concepts (seed + 2). Re-searching the best feature in
    every replicate would take a maximum of noisy AUROCs (biased up), and a share of 29
    concepts moves in steps of 1/29, so an image bootstrap alone put the point at an end of
    the interval for every shipped model. The ends are studentized: each replicate also keeps
    its standard error over the resampled concepts (`_MeanSe`). Only the [N, C] columns of
    the best features are ever dense."""
    concepts = np.asarray(inputs.concepts)
    gt = GroundTruthAccumulator(chunks.n_cols, list(inputs.concept_names), max_images=max(chunks.n_rows, 1))
    for start, e in chunks.read():  # exact AUROC needs every value: the accumulator keeps the entries
        gt.update(e, concepts[start:start + e.n_rows])
    full = gt.result(cfg.gt_threshold)
    del gt
    defined = full.best_feature >= 0
    if not defined.any():
        return
    best = full.best_feature[defined]
    cols = _dense_columns(chunks, best)  # [N, C_defined]
    names = [n for n, d in zip(inputs.concept_names, defined, strict=True) if d]
    route_words = ({"gt_label_accuracy": inputs.top_words} if inputs.top_words is not None else {}) | {
        f"gt_label_accuracy@{r}": w for r, w in inputs.route_top_words.items()}
    hits = {key: np.array([_names_concept(top[f], n, inputs.concept_synonyms) for f, n in zip(best, names, strict=True)])
            for key, top in route_words.items()}  # per labelling route: does the best feature's word name it
    cidx = _with_identity(resample_indices(int(defined.sum()), len(idx) - 1, seed + 2))
    cov, auc, acc = _MeanSe(binary=True), _MeanSe(), {key: _MeanSe(binary=True) for key in hits}
    for r, i in enumerate(idx):
        a = np.diagonal(exact_auroc(cols[i], concepts[i][:, defined]))  # each concept's own feature
        c = cidx[r][np.isfinite(a[cidx[r]])]
        covered = a[c] >= cfg.gt_threshold
        cov.add(covered.astype(np.float64))
        auc.add(a[c])
        for key, h in hits.items():
            acc[key].add(h[c][covered].astype(np.float64))
    stats["gt_coverage"] = (cov.means, TWO_LEVEL_CONCEPTS, None, cov.ses)
    stats["gt_auroc_mean"] = (auc.means, TWO_LEVEL_CONCEPTS, None, auc.ses)
    stats.update({key: (m.means, TWO_LEVEL_CONCEPTS, None, m.ses) for key, m in acc.items()})


class _MeanSe:
    """Per replicate, the mean of the concepts' values and its standard error over concepts:
    a mean over 29 concepts is a small sample, whose percentile and BC intervals under-cover
    (measured 0.918 for GT coverage), so its interval is the studentized one. For a share
    (0/1 values, `binary`) the se is that of a binomial share with half a success and half a
    failure added, sqrt(p~ (1 - p~) / n) with p~ = (k + 0.5) / (n + 1): a resample whose units
    all agree would otherwise have se = 0 and no t, and leaving those out biases the interval
    (4 concepts of which 3 hit: the plain bootstrap-t drops every all-hit resample)."""

    def __init__(self, binary: bool = False):
        self.binary, self.means, self.ses = binary, [], []

    def add(self, v: np.ndarray) -> None:
        n = v.size
        self.means.append(float(v.mean()) if n else np.nan)
        if self.binary and n:
            p = (float(v.sum()) + 0.5) / (n + 1)
            self.ses.append(float(np.sqrt(p * (1 - p) / n)))
        else:
            self.ses.append(float(v.std(ddof=1)) / np.sqrt(n) if n > 1 else np.nan)


def _names_concept(word, concept_name, synonyms) -> bool:
    """Whether `word` names the concept, by the rule of ground_truth.label_accuracy."""
    one = GroundTruthResult(np.zeros((1, 1)), np.array([0]), np.array([1.0]), None, None, np.zeros(0), np.zeros(0), 0)
    return bool(label_accuracy(one, [concept_name], [word], synonyms, threshold=0.0))


def _dense_columns(chunks, cols: np.ndarray) -> np.ndarray:
    """[N, len(cols)] float32 dense copy of the chosen columns only (a column may repeat)."""
    out = np.zeros((chunks.n_rows, len(cols)), dtype=np.float32)
    wanted = torch.from_numpy(np.unique(cols))
    for start, e in chunks.read():
        keep = torch.isin(e.cols, wanted)
        rows, c, v = e.rows[keep].numpy() + start, e.cols[keep].numpy(), e.vals[keep].numpy()
        for j, f in enumerate(cols):
            m = c == f
            out[rows[m], j] = v[m]
    return out


def _weighted_means(weights: np.ndarray, values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per replicate: the mean of values over the usable resampled units (weights = multiplicities)."""
    w = weights * ok[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ np.where(ok, values, 0.0)) / w.sum(axis=1)


def _reconstruction(inputs, weights, stats) -> None:
    x = inputs.sae_input.double()
    ratios = per_sample_ratios(x, inputs.sae_recon.double())
    for key, (value, ok) in zip(("fvu", "fvu_msae"), ratios[:2], strict=False):
        v, o = value.numpy(), ok.numpy()
        stats[key] = (_weighted_means(weights, v, o), IMAGES, mean_jackknife(v[o]))


def _zeroshot(zs: dict, weights, stats) -> None:
    per_key = {}
    for key, (ids, correct) in zs.items():
        ok = np.zeros(weights.shape[1], dtype=bool)
        value = np.zeros(weights.shape[1])
        ok[ids], value[ids] = True, np.asarray(correct, dtype=np.float64)
        per_key[key] = _weighted_means(weights, value, ok)
        stats[key] = (per_key[key], IMAGES, mean_jackknife(np.asarray(correct, dtype=np.float64)))
    stats["zeroshot_mean"] = (np.mean(np.stack(list(per_key.values())), axis=0), IMAGES)
