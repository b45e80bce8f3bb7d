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
  (`_ground_truth`).
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

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .bootstrap import DEFAULT_B, bca_interval, interval_record, mean_jackknife, resample_indices
from .ground_truth import GroundTruthResult, exact_auroc, label_accuracy, result_from_auroc, sparse_auroc
from .label_correlation import labelled_rows, pearson_from_sums
from .reconstruction import per_sample_ratios

IMAGES, FEATURES, PAIRS = "bootstrap-images", "bootstrap-features", "bootstrap-pairs"
TWO_LEVEL = "bootstrap-images+features"
TWO_LEVEL_CONCEPTS = "bootstrap-images+concepts"


@dataclass
class IntervalInputs:
    """Everything the intervals need, one row per evaluation image (row i = image i)."""

    features: object  # Entries of all N images (metrics.inputs.Entries)
    judge_unit: torch.Tensor  # [N, d] unit judge embeddings (float64)
    text_features: object | None = None  # Entries of each image's caption features, or None
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
    n = inputs.features.n_rows
    idx = torch.from_numpy(_with_identity(resample_indices(n, b, seed)))
    fidx = _with_identity(resample_indices(inputs.features.n_cols, b, seed + 1)) if inputs.features.n_cols else None
    weights = np.stack([np.bincount(i, minlength=n) for i in idx.numpy()]).astype(np.float64)  # [b + 1, N]
    stats: dict[str, tuple] = {}  # key -> (point + replicates, method[, jackknife values])
    _clarity_family(inputs, cfg, idx, fidx, weights, stats)
    if inputs.label_text_judge is not None or inputs.label_routes:
        _label_correlation(inputs, fidx, weights, stats)
    # the multimodality metrics' intervals come from MetricSuite.extras() (over features and pairs)
    if inputs.concepts is not None and inputs.concept_names is not None:
        _ground_truth(inputs, cfg, idx, stats, seed)
    if inputs.sae_input is not None:
        _reconstruction(inputs, weights, stats)
    if inputs.zeroshot:
        _zeroshot(inputs.zeroshot, weights, stats)
    out = {}
    for key, (values, method, *jack) in stats.items():
        values = np.asarray(values, dtype=np.float64)
        jack = jack[0] if jack else None
        ci = bca_interval(values[1:], float(values[0]), jack)
        rec = interval_record(ci, method, b, seed, kind="bc" if jack is None else "bca")
        if rec is not None:
            # the replicates themselves: two results on the same images and seed share the image
            # resamples, so validate-metrics can bootstrap a difference pairwise
            rec["replicates"] = [round(float(v), 6) if np.isfinite(v) else None for v in values[1:]]
            out[key] = rec
    return out


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


def _clarity_family(inputs, cfg, idx, fidx, weights, stats) -> None:
    e, emb = inputs.features, inputs.judge_unit
    above = e.vals > cfg.tau
    rows, cols = e.rows[above], e.cols[above]
    per_image = torch.bincount(rows, minlength=e.n_rows).double().numpy()
    emb32 = emb.float()
    mask = sp.csr_matrix((np.ones(int(above.sum())), (cols.numpy(), rows.numpy())), shape=(e.n_cols, e.n_rows))
    top = _top_n_mask(rows.numpy(), cols.numpy(), e.vals[above].numpy(), e.n_rows, e.n_cols, cfg.top_n)
    for key, members in (("clarity", mask), ("clarity_matched", top)):
        values, jack = _clarity_replicates(members, emb32, fidx, cfg)
        stats[key] = (values, FEATURES, jack)
    w = torch.from_numpy(weights)
    base = weighted_pairwise_cosine(w @ emb, w.sum(dim=1), (w * w).sum(dim=1))
    stats["clarity_baseline"] = (base.numpy(), IMAGES)
    stats["l0"] = (weights @ per_image / weights.sum(axis=1), IMAGES, mean_jackknife(per_image))
    # Active F% resamples features only: whether a feature reaches n_min images is a threshold
    # on its count, and resampled images drop rare features (P(image left out) ~ 0.37), so an
    # image bootstrap would sit below the point value (measured: 80.5% -> [65, 75] for shapes:sae).
    if fidx is not None:
        active = torch.bincount(cols, minlength=e.n_cols).numpy() >= cfg.n_min
        stats["active_features_pct"] = (100.0 * active[fidx].mean(axis=1), FEATURES, mean_jackknife(100.0 * active))


def _top_n_mask(rows, cols, vals, n_rows: int, n_cols: int, n: int) -> sp.csr_matrix:
    """[F, N] 0/1 membership of each feature's n most activating images (above tau), only for
    features with at least n of them: the order of metrics.topn (value descending, then
    smaller image id first)."""
    order = np.lexsort((rows, -vals.astype(np.float64), cols))
    c, r = cols[order], rows[order]
    count = np.bincount(c, minlength=n_cols)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    rank = np.arange(len(c)) - start[c]
    keep = (rank < n) & (count[c] >= n)
    return sp.csr_matrix((np.ones(int(keep.sum())), (c[keep], r[keep])), shape=(n_cols, n_rows))


def _clarity_replicates(mask: sp.csr_matrix, emb32, fidx, cfg) -> tuple[list[float], np.ndarray]:
    """Mean Clarity over the images of `mask` [F, N] for each resample of the features (row 0:
    the identity, the point), and the jackknife values of that mean.

    The features are resampled, the images are not: each feature's Clarity is a mean over its
    own images, so its value already carries their sampling noise, and the mean over features
    is a two-stage sample whose first stage alone gives the variance (Davison & Hinkley 1997,
    sec. 3.8). Resampling the images as well counted that noise twice (measured coverage 1.000
    instead of 0.95, benchmarks/interval_coverage.py)."""
    n = np.asarray(mask.sum(axis=1)).ravel()
    sums = (_torch_csr(mask) @ emb32).double()  # float32 products, as RowSums per batch
    per = weighted_pairwise_cosine(sums, torch.from_numpy(n), torch.from_numpy(n)).numpy()
    per[n < max(cfg.n_min, 2)] = np.nan
    values = [_feature_mean(per, f) for f in fidx] if fidx is not None else [_feature_mean(per, None)]
    return values, mean_jackknife(per[np.isfinite(per)])


def _csr(e) -> sp.csr_matrix:
    return sp.csr_matrix((e.vals.double().numpy(), (e.rows.numpy(), e.cols.numpy())), shape=(e.n_rows, e.n_cols))


def _torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    """A float32 torch CSR copy of a scipy CSR matrix (torch's CSR x dense product is the fast one)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr).long(), torch.from_numpy(m.indices).long(),
                                       torch.from_numpy(m.data).float(), m.shape)


def _label_correlation(inputs, fidx, weights, stats) -> None:
    """Per replicate, each feature's Pearson r from weighted sums over the images (the sums
    LabelCorrelationAccumulator keeps, with each image counted as often as it is drawn), for
    all replicates at once: the per-feature sums of a, a^2 and a s are row sums of sparse
    [F, N] matrices against the [N, b + 1] weights (`_row_sums`), and the similarity
    s_uj = e_j . t_u is needed only for the distinct label words u (over all images, a block
    at a time) and at the active entries, so no [N, F] or per-replicate [F, d] array is built."""
    # the same judge rows the suite used: unit embeddings, or raw concept vectors ("dot" similarity)
    e, emb = inputs.features, inputs.judge_unit if inputs.label_judge is None else inputs.label_judge
    em, at = emb.double().numpy(), _csr(e).T.tocsr()  # [N, d], [F, N]
    at.sort_indices()
    wt = weights.T  # [N, b + 1]
    sets = ({"label_corr_mean": inputs.label_text_judge} if inputs.label_text_judge is not None else {}) | {
        f"label_corr_mean@{r}": t for r, t in inputs.label_routes.items()}
    words = {key: _label_words(np.asarray(text, dtype=np.float64)) for key, text in sets.items()}
    feature = np.repeat(np.arange(at.shape[0]), np.diff(at.indptr))  # each entry's feature
    channels = [at.data, at.data * at.data] + [at.data * _entry_similarity(em, at.indices, feature, *w)
                                               for w in words.values()]
    sa, sa2, *sas = _row_sums(at.indptr, at.indices, channels, wt)
    n = torch.from_numpy(weights.sum(axis=1))[None, :]
    for (key, (word_of, unit)), sas_k in zip(words.items(), sas, strict=True):
        per = np.full((at.shape[0], wt.shape[1]), np.nan)
        rows = np.flatnonzero(word_of >= 0)
        ss, ss2 = _similarity_sums(em, unit, wt)  # [U, b + 1]
        for start in range(0, len(rows), 4096):  # [4096, b + 1] temporaries, not [F, b + 1] ones
            f = rows[start:start + 4096]
            per[f] = pearson_from_sums(n, *(torch.from_numpy(x) for x in (
                sa[f], sa2[f], ss[word_of[f]], ss2[word_of[f]], sas_k[f]))).numpy()
        stats[key] = ([_feature_mean(per[:, r], fidx[r] if fidx is not None else None)
                       for r in range(per.shape[1])], TWO_LEVEL)


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


def _entry_similarity(em, image, feature, word_of, unit, block: int = 1 << 23) -> np.ndarray:
    """s_u(i)j = e_j . t_u(i) at each active entry (image j, feature i); 0 for unlabelled features."""
    out = np.zeros(len(image))
    ok = np.flatnonzero(word_of[feature] >= 0)
    step = max(1, block // em.shape[1])
    for start in range(0, len(ok), step):
        k = ok[start:start + step]
        out[k] = np.einsum("ij,ij->i", em[image[k]], unit[word_of[feature[k]]])
    return out


def _similarity_sums(em, unit, wt, block: int = 1 << 23) -> tuple[np.ndarray, np.ndarray]:
    """[U, b + 1] weighted sums over all images of s_uj and s_uj^2, a [N, step] block of words at a time."""
    ss, ss2 = np.empty((len(unit), wt.shape[1])), np.empty((len(unit), wt.shape[1]))
    step = max(1, block // max(1, em.shape[0]))
    for start in range(0, len(unit), step):
        sim = em @ unit[start:start + step].T
        ss[start:start + step], ss2[start:start + step] = sim.T @ wt, (sim * sim).T @ wt
    return ss, ss2


def _row_sums(indptr, indices, channels, wt, block: int = 1 << 22) -> list[np.ndarray]:
    """sum_j data[ij] wt[j] for every row i of CSR matrices that share one pattern (indptr,
    indices) and differ in their data (`channels`): [F, b + 1] each. The weights of a block of
    entries are gathered once, in entry order, and every channel reads them sequentially: one
    scattered read of wt for all channels instead of one per product (the gather is what a
    plain sparse x dense product pays for)."""
    n_rows, step = len(indptr) - 1, max(1, block // wt.shape[1])
    out = [np.zeros((n_rows, wt.shape[1])) for _ in channels]
    start = 0
    while start < n_rows:
        end = max(start + 1, int(np.searchsorted(indptr, indptr[start] + step, side="right")) - 1)
        end = min(end, n_rows)
        e0, e1 = indptr[start], indptr[end]
        gathered = wt[indices[e0:e1]]  # [entries, b + 1], contiguous
        ptr = indptr[start:end + 1] - e0
        for o, data in zip(out, channels, strict=True):
            o[start:end] = sp.csr_matrix((data[e0:e1], np.arange(e1 - e0), ptr), shape=(end - start, e1 - e0)) @ gathered
        start = end
    return out


def _ground_truth(inputs, cfg, idx, stats, seed: int) -> None:
    """Two levels, images then concepts. Each concept keeps its full-sample best feature (as
    the point does); a replicate recomputes that feature's AUROC on the resampled images and
    averages over a resample of the concepts (seed + 2). Re-searching the best feature in
    every replicate would take a maximum of noisy AUROCs (biased up), and a share of 29
    concepts moves in steps of 1/29, so an image bootstrap alone put the point at an end of
    the interval for every shipped model. Only the [N, C] columns of the best features are
    ever dense."""
    e, concepts = inputs.features, np.asarray(inputs.concepts)
    full = result_from_auroc(sparse_auroc(e, concepts), cfg.gt_threshold, e.n_cols, e.n_rows)
    defined = full.best_feature >= 0
    if not defined.any():
        return
    best = full.best_feature[defined]
    cols = _dense_columns(e, best)  # [N, C_defined]
    names = [n for n, d in zip(inputs.concept_names, defined, strict=True) if d]
    route_words = ({"gt_label_accuracy": inputs.top_words} if inputs.top_words is not None else {}) | {
        f"gt_label_accuracy@{r}": w for r, w in inputs.route_top_words.items()}
    hits = {key: np.array([_names_concept(top[f], n, inputs.concept_synonyms) for f, n in zip(best, names, strict=True)])
            for key, top in route_words.items()}  # per labelling route: does the best feature's word name it
    cidx = _with_identity(resample_indices(int(defined.sum()), len(idx) - 1, seed + 2))
    cov, auc, acc = [], [], {key: [] for key in hits}
    for r, i in enumerate(idx.numpy()):
        a = np.diagonal(exact_auroc(cols[i], concepts[i][:, defined]))  # each concept's own feature
        c = cidx[r][np.isfinite(a[cidx[r]])]
        covered = a[c] >= cfg.gt_threshold
        cov.append(float(covered.mean()) if c.size else np.nan)
        auc.append(float(a[c].mean()) if c.size else np.nan)
        for key, h in hits.items():
            acc[key].append(float(h[c][covered].mean()) if covered.any() else np.nan)
    stats["gt_coverage"] = (cov, TWO_LEVEL_CONCEPTS)
    stats["gt_auroc_mean"] = (auc, TWO_LEVEL_CONCEPTS)
    stats.update({key: (vals, TWO_LEVEL_CONCEPTS) for key, vals in acc.items()})


def _names_concept(word, concept_name, synonyms) -> bool:
    """Whether `word` names the concept, by the rule of ground_truth.label_accuracy."""
    one = GroundTruthResult(np.zeros((1, 1)), np.array([0]), np.array([1.0]), None, None, np.zeros(0), np.zeros(0), 0)
    return bool(label_accuracy(one, [concept_name], [word], synonyms, threshold=0.0))


def _dense_columns(e, cols: np.ndarray) -> np.ndarray:
    """[N, len(cols)] float32 dense copy of the chosen columns only (a column may repeat)."""
    out = np.zeros((e.n_rows, len(cols)), dtype=np.float32)
    keep = torch.isin(e.cols, torch.from_numpy(np.unique(cols)))
    rows, c, v = e.rows[keep].numpy(), e.cols[keep].numpy(), e.vals[keep].numpy()
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
