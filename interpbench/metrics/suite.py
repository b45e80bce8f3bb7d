"""The whole metric suite as one streaming object: feed batches, merge shards, finalize once.

Each batch is validated and turned into its non-zero entries once (`to_entries`) and the
judge embeddings are normalised once; every accumulator then reads those. `finalize`
returns (metrics, per_feature): scalar metrics for the results JSON (None = not
applicable) and [F] arrays for the .features.safetensors sidecar; after it, `extras()` gives
the intervals and controls the suite computed itself, for record["intervals"] and
record["controls"]. After `finalize`, `image_labels` names every feature from the judge
embeddings of its top images (the image route) and `label_metrics` scores any set of labels
(text, decoder or image route) from the same streamed state, without another pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from interpbench.errors import ConfigError, ShapeMismatchError

from .bootstrap import bca_interval, interval_record, mean_interval, mean_interval_kind, resample_indices
from .clarity import ClarityAccumulator, topn_clarity
from .ground_truth import GroundTruthAccumulator, label_accuracy
from .inputs import as_float_or_none, check_rows, to_entries, to_ids, to_matrix, unit_rows
from .label_correlation import LabelCorrelationAccumulator, label_agreement
from .labels import FeatureLabels, image_labels
from .multimodality import MultimodalityAccumulator, PairedAccumulator
from .reconstruction import ReconstructionAccumulator
from .semanticlens import polysemanticity, redundancy
from .topn import TopNAccumulator


@dataclass(frozen=True)
class SuiteConfig:
    tau: float = 0.001  # Sparse CLIP Eq. 2 activation threshold
    n_min: int = 2  # images a feature needs to count as active
    top_n: int = 20  # SemanticLens concept examples per feature
    band: tuple[float, float] = (0.1, 0.9)  # modality-score band counted as multimodal
    top_k_words: int = 5
    corr_threshold: float = 0.3
    nonnegative: bool = True  # features are ReLU-like; dense CLIP is split into +/- parts upstream
    gt_threshold: float = 0.9
    gt_max_images: int = 1_000_000
    polysemanticity_max_features: int | None = 500  # k-means per feature is slow; seeded subset
    seed: int = 0

    def __post_init__(self):
        if self.tau < 0 or self.n_min < 2 or self.top_n < 2 or self.top_k_words < 1:
            raise ConfigError(f"SuiteConfig: need tau >= 0, n_min >= 2, top_n >= 2, top_k_words >= 1; got "
                              f"tau={self.tau}, n_min={self.n_min}, top_n={self.top_n}, "
                              f"top_k_words={self.top_k_words}.")
        lo, hi = self.band
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"SuiteConfig.band={self.band}: expected 0 <= low < high <= 1.")


class MetricSuite:
    """All image-side, paired and reconstruction metrics of one representation."""

    def __init__(self, n_features: int, judge_dim: int, config: SuiteConfig | None = None,
                 concept_names: list[str] | None = None, label_text_judge=None, label_similarity: str = "cosine",
                 concept_synonyms: dict[str, tuple[str, ...]] | None = None):
        """label_similarity: how label correlation scores an image against a word, "cosine" of
        the judge's image and text embeddings, or "dot" of the raw judge image vector with the
        word's unit vector (the ground-truth judge: a 0/1 concept vector with a word's one-hot
        concept gives the concept's presence in the image)."""
        if label_similarity not in ("cosine", "dot"):
            raise ConfigError(f"label_similarity={label_similarity!r}: expected 'cosine' or 'dot'.")
        self.cfg = config or SuiteConfig()
        self.n_features, self.judge_dim = int(n_features), int(judge_dim)
        self.label_text_judge = label_text_judge
        self.label_similarity = label_similarity
        self.concept_synonyms = concept_synonyms  # concept value -> words that also name it (label accuracy)
        c = self.cfg
        self.clarity = ClarityAccumulator(n_features, judge_dim, c.tau, c.n_min)
        self.topn = TopNAccumulator(n_features, c.top_n, judge_dim, c.tau)
        self.labelcorr = LabelCorrelationAccumulator(n_features, judge_dim)
        self.modality = MultimodalityAccumulator(n_features, c.n_min)
        self.paired = PairedAccumulator(n_features)
        self.recon: ReconstructionAccumulator | None = None
        self.gt = (GroundTruthAccumulator(n_features, concept_names, c.gt_max_images)
                   if concept_names is not None else None)
        self._n_pairs = 0
        self._topn_sums: torch.Tensor | None = None  # set during finalize only
        self._gt_result = None  # the ground-truth result of the last finalize (label metrics reuse it)
        self.intervals: dict[str, dict] = {}  # metric key -> bootstrap.interval_record, set by finalize
        self.controls: dict[str, dict] = {}  # control name -> {metric key: value}, set by finalize

    # ---- streaming -------------------------------------------------------------------
    def update_images(self, features, judge, ids, concepts=None) -> None:
        """features [B, F]; judge [B, d] raw judge image embeddings; ids [B] global image ids."""
        raw = to_matrix(judge, "judge", self.judge_dim)
        emb = unit_rows(raw, "judge")
        check_rows(features, emb, "features", "judge")
        ids = to_ids(ids, "ids", emb.shape[0])
        e = to_entries(features, "features", self.n_features, self.cfg.nonnegative, ids)
        self.clarity.update(e, emb)
        self.topn.update(e, ids, emb)
        self.labelcorr.update(e, emb if self.label_similarity == "cosine" else raw)
        if self.gt is not None:
            if concepts is None:
                raise ShapeMismatchError("update_images: this suite has concept names, so every batch needs "
                                         "its concepts [B, n_concepts].")
            self.gt.update(e, concepts)

    def update_pairs(self, image_features, text_features, shuffled=None, ids=None, caption_sum=None) -> None:
        """Paired image and caption features, row b of each describing the same pair.

        shuffled: the caption features of pi(b) for each row, pi a fixed derangement of all
        pairs (`multimodality.pairing_derangement`); caption_sum: (S, M) of all the data set's
        captions (`multimodality.caption_unit_sum`). Without both the paired score is not
        computed. ids: [B] global pair ids (the bootstrap's order; default arrival order)."""
        check_rows(image_features, text_features, "image_features", "text_features")
        nn = self.cfg.nonnegative
        image = to_entries(image_features, "image_features", self.n_features, nn)
        text = to_entries(text_features, "text_features", self.n_features, nn)
        self.modality.update(image, text)
        if shuffled is not None and caption_sum is not None:
            check_rows(image_features, shuffled, "image_features", "shuffled_text_features")
            pi = to_entries(shuffled, "shuffled_text_features", self.n_features, nn)
            self.paired.update(image, text, pi, caption_sum, None if ids is None else to_ids(ids, "ids", image.n_rows))
        self._n_pairs += int(image_features.shape[0])

    def update_reconstruction(self, x, x_hat, z) -> None:
        """SAE input x [B, d], reconstruction x_hat [B, d] and code z [B, F]."""
        xt = to_matrix(x, "sae_input")
        xh = to_matrix(x_hat, "sae_recon", xt.shape[1])
        check_rows(xt, z, "sae_input", "z")
        if self.recon is None:
            self.recon = ReconstructionAccumulator(self.n_features, xt.shape[1])
        self.recon.update(xt, xh, to_entries(z, "z", self.n_features, nonnegative=False))

    def merge(self, other: MetricSuite) -> None:
        """Add another shard's state (same config, features and judge)."""
        if ((other.n_features, other.judge_dim, other.cfg, other.label_similarity)
                != (self.n_features, self.judge_dim, self.cfg, self.label_similarity)):
            raise ShapeMismatchError("MetricSuite.merge: the other suite has a different config, feature "
                                     "count or judge dimension.")
        for name in ("clarity", "topn", "labelcorr", "modality", "paired"):
            getattr(self, name).merge(getattr(other, name))
        if (self.gt is None) != (other.gt is None):
            raise ShapeMismatchError("MetricSuite.merge: only one of the suites has ground-truth concepts.")
        if self.gt is not None:
            self.gt.merge(other.gt)
        if other.recon is not None:
            if self.recon is None:
                self.recon = ReconstructionAccumulator(other.recon.n_features, other.recon.dim)
            self.recon.merge(other.recon)
        self._n_pairs += other._n_pairs

    # ---- results -----------------------------------------------------------------------
    def finalize(self, labels: FeatureLabels | None = None, vocab: list[str] | None = None,
                 vocab_text_judge=None) -> tuple[dict, dict]:
        """(metrics, per_feature). labels: the features' vocabulary labels (FeatureLabels);
        vocab: the words; vocab_text_judge: [V, d] judge text embeddings of the (templated) words."""
        metrics: dict = {}
        per: dict = {}
        self.intervals, self.controls = {}, {}
        self.clarity.fold()  # free both [F, d] float32 batch buffers before the finalize peaks
        self.labelcorr.fold()
        self._clarity(metrics, per)
        self._topn_sums = self.topn.sums()  # shared by top-n clarity, redundancy and label agreement
        self._semanticlens(metrics, per)
        if self._n_pairs:
            self._multimodality(metrics, per)
        text_label = _text_label(labels, self.n_features)
        if text_label is not None:
            metrics["labelled_pct"] = 100.0 * float((text_label >= 0).mean()) if self.n_features else None
        self._label_correlation(metrics, per)
        if text_label is not None and vocab_text_judge is not None:
            self._agreement(metrics, per, text_label, vocab_text_judge)
        if self.recon is not None:
            r = asdict(self.recon.result())
            r.pop("n_samples")
            metrics.update(r)
        if self.gt is not None:
            self._ground_truth(metrics, per, text_label, vocab)
        self._topn_sums = None
        metrics = {k: as_float_or_none(v) for k, v in metrics.items()}
        return metrics, {k: np.asarray(v, dtype=np.float32) for k, v in per.items()}

    def _clarity(self, metrics, per) -> None:
        r = self.clarity.result()
        metrics.update(clarity=r.clarity, clarity_baseline=r.baseline, active_features_pct=r.active_features_pct,
                       l0=r.l0, l0_nonzero=r.l0_nonzero, n_images=r.n_images, n_features=self.n_features)
        per.update(clarity=r.per_feature, clarity_count=r.counts)

    def _semanticlens(self, metrics, per) -> None:
        c = self.cfg
        mean, arr = topn_clarity(self.topn, c.n_min, self._topn_sums)
        poly_mean, poly = polysemanticity(self.topn, c.n_min, max_features=c.polysemanticity_max_features,
                                          seed=c.seed)
        red_mean, red = redundancy(self.topn, c.n_min, self._topn_sums)
        # frequency-matched Clarity: every feature on exactly top_n images (features with fewer left out)
        full = self.matched_features()
        metrics.update(clarity_topn=mean, clarity_matched=float(arr[full].mean()) if full.any() else None,
                       clarity_matched_n=int(full.sum()), polysemanticity=poly_mean, redundancy=red_mean)
        per.update(clarity_topn=arr, polysemanticity=poly, redundancy=red)

    def extras(self) -> dict:
        """{"intervals": {key: interval}, "controls": {name: {key: value}}} from the last finalize."""
        return {"intervals": dict(self.intervals), "controls": {k: dict(v) for k, v in self.controls.items()}}

    def _interval(self, key: str, ci, method: str, kind: str = "bca") -> None:
        rec = interval_record(ci, method, seed=self.cfg.seed, kind=kind)
        if rec is not None:
            self.intervals[key] = rec

    def _multimodality(self, metrics, per) -> None:
        r = self.modality.result(self.cfg.band)
        median = _nanmedian(r.modality_score)
        metrics.update(multimodal_fraction=r.multimodal_fraction, modality_n_scored=r.n_scored,
                       modality_score_median=median)
        per.update(modality_score=r.modality_score, density=r.density, energy_image=r.energy_image,
                   energy_text=r.energy_text, bridge=r.bridge)
        lo, hi = self.cfg.band
        scores = r.modality_score[r.scored]
        seed = self.cfg.seed
        self._interval("multimodal_fraction", mean_interval((scores >= lo) & (scores <= hi), seed=seed)
                       if scores.size else None, "bootstrap-features", mean_interval_kind(scores.size))
        defined = r.modality_score[~np.isnan(r.modality_score)]
        self._interval("modality_score_median", bca_interval(
            [np.median(defined[i]) for i in resample_indices(defined.size, seed=seed)], median)
            if defined.size else None, "bootstrap-features", kind="bc")
        # Both are functions of per-tower marginals, which re-pairing the captions cannot change:
        # their shuffled-caption controls equal them (tested), so the report shows they ignore pairing.
        shuffled = {"multimodal_fraction": r.multimodal_fraction, "modality_score_median": median}
        p = self.paired.result()
        if p.n_valid:
            metrics.update(paired_multimodality=p.paired, paired_n=p.n_valid)
            per["paired_multimodality"] = p.per_feature
            self._interval("paired_multimodality", mean_interval(p.per_pair, seed=seed), "bootstrap-pairs",
                           mean_interval_kind(p.n_valid))
            shuffled["paired_multimodality"] = p.control
        self.controls["shuffled_pairs"] = {k: as_float_or_none(v) for k, v in shuffled.items()}

    def _label_correlation(self, metrics, per) -> None:
        if self.label_text_judge is None:
            return
        _label_corr_fields(self.labelcorr.result(_as_numpy(self.label_text_judge), self.cfg.corr_threshold),
                           metrics, per, self.matched_features())

    def _agreement(self, metrics, per, text_label, vocab_text_judge) -> None:
        valid = (self.topn.counts() >= max(self.cfg.n_min, 2)).numpy()
        r = label_agreement(text_label, self._topn_sums.numpy(), valid, _as_numpy(vocab_text_judge))
        metrics.update(label_agree_exact=r.exact, label_agree_cosine=r.cosine, label_agree_n=r.n_compared)
        per["image_label"] = r.image_label

    def _ground_truth(self, metrics, per, text_label, vocab) -> None:
        r = self._gt_result = self.gt.result(self.cfg.gt_threshold)
        metrics.update(gt_coverage=r.coverage, gt_auroc_mean=r.auroc_mean)
        if text_label is not None and vocab is not None:
            words = [vocab[w] if w >= 0 else None for w in text_label]
            metrics["gt_label_accuracy"] = label_accuracy(r, self.gt.concept_names, words, self.concept_synonyms,
                                                          threshold=self.cfg.gt_threshold)
        per.update(gt_best_auroc=r.feature_best_auroc, gt_best_concept=r.feature_best_concept)


    # ---- labelling routes (after finalize) ----------------------------------------------
    def image_labels(self, vocab_text_judge, k: int | None = None) -> FeatureLabels:
        """The image route: each feature's top-k words by cosine between their judge text
        embeddings and the mean of the feature's top-n unit judge image embeddings minus that of
        all images (`labels.image_labels`; features with fewer than n_min top images get none).
        Streams words in blocks; no [F, V] array."""
        counts = self.topn.counts()
        valid = (counts >= max(self.cfg.n_min, 2)).numpy()
        centre = self.clarity.sum_all / max(int(self.clarity.n_images), 1)  # the average image
        return image_labels(self.topn.sums(), valid, _as_numpy(vocab_text_judge), k or self.cfg.top_k_words,
                            counts=counts.numpy(), centre=centre.numpy())

    def matched_features(self) -> np.ndarray:
        """[F] bool: features active (above tau) on at least top_n images, the features that
        frequency-matched Clarity and frequency-matched label correlation score. A Pearson r
        between a feature active on k of N images and a concept of share p is at most
        sqrt(k (1 - p) / (p (N - k))) (0.14 for 10 of 2,000 images and p = 0.2), so a mean over
        every feature mostly measures how many rare features a model has."""
        return (self.topn.counts() >= self.cfg.top_n).numpy()

    def label_metrics(self, labels: FeatureLabels, vocab: list[str], vocab_text_judge) -> tuple[dict, dict]:
        """(metrics, per_feature) of one set of labels from the streamed state: labelled share,
        label correlation against the judge (the suite's similarity), GT label accuracy."""
        from .label_correlation import label_text_from_vocab

        top = labels.top
        metrics: dict = {"labelled_pct": 100.0 * float((top >= 0).mean()) if self.n_features else None}
        per: dict = {}
        if vocab_text_judge is not None:
            _label_corr_fields(self.labelcorr.result(label_text_from_vocab(labels, _as_numpy(vocab_text_judge)),
                                                     self.cfg.corr_threshold), metrics, per, self.matched_features())
        if self._gt_result is not None:
            words = [vocab[w] if w >= 0 else None for w in top]
            metrics["gt_label_accuracy"] = label_accuracy(self._gt_result, self.gt.concept_names, words,
                                                          self.concept_synonyms, threshold=self.cfg.gt_threshold)
        return {k: as_float_or_none(v) for k, v in metrics.items()}, {k: np.asarray(v, np.float32) for k, v in per.items()}


def _label_corr_fields(r, metrics: dict, per: dict, matched: np.ndarray) -> None:
    """The label-correlation keys of the record and the per-feature array, from one result;
    matched: [F] features with at least top_n images (`MetricSuite.matched_features`)."""
    metrics.update(label_corr_mean=r.mean, label_corr_median=r.median, label_corr_share=r.share_above,
                   label_corr_n=r.n_valid)
    ok = np.isfinite(r.per_feature) & matched
    metrics.update(label_corr_matched=float(r.per_feature[ok].mean()) if ok.any() else None,
                   label_corr_matched_n=int(ok.sum()))
    per["label_corr"] = r.per_feature


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _text_label(labels, n_features: int) -> np.ndarray | None:
    """[F] top word id per feature from FeatureLabels (or a {"top_index": [F, K]} dict), or None."""
    if labels is None:
        return None
    top = _as_numpy(labels.word_ids if isinstance(labels, FeatureLabels) else labels["top_index"])
    if top.ndim != 2 or top.shape[0] != n_features:
        raise ShapeMismatchError(f"labels['top_index']: shape {top.shape}; expected [{n_features}, K].")
    return top[:, 0].astype(np.int64)


def _nanmedian(x: np.ndarray) -> float | None:
    ok = ~np.isnan(x)
    return float(np.median(x[ok])) if ok.any() else None
