"""Run the analyses on one model spec and write one results JSON (docs/analyses.md).

The record follows the results schema (interpbench/results/store.py) with
`record_type: "analysis"`; its `metrics` hold the headline numbers and `analyses` the
full curves and tables. It lives at RESULTS/<dataset>/analysis/<model slug>__<hash>.json.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import interpbench
from interpbench.analysis import clustering, duplicates, retrieval, steering
from interpbench.analysis.codes import (
    Codes,
    class_text_features,
    collect_codes,
    decoder_for,
    text_side,
    zeroshot_classifier,
)
from interpbench.analysis.intervals import attribute_mean_interval
from interpbench.errors import BadSpecError
from interpbench.metrics.bootstrap import DEFAULT_B, interval_record
from interpbench.results.store import SCHEMA_VERSION

ANALYSES = ("steering", "latent")


@dataclass(frozen=True)
class AnalysisSettings:
    dataset: str = "shapes"
    n_images: int = 2000  # evaluate's default, so the leaderboard joins analyses on the same images
    seed: int = 0
    strengths: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # boost = s * image's max activation
    ks: tuple[int, ...] = (1, 2, 4)  # label features per class
    k_ref: int = 2  # steerability is read at (k_ref, s_ref): the paper's best setting
    s_ref: float = 2.0
    contrast: bool = True  # label features relative to the attribute's other classes
    vocab: str = "shapes"  # for the ablation's label words and duplicate groups' labels
    template: str = "{}"
    max_pairs: int = 20000  # (image, feature) pairs in the ablation test
    retrieval_k: int = 10
    baseline: str = "auto"  # retrieval baseline: "auto" = own dense embedding (shapes:dense for sparse CLIP)
    jaccard: float = 0.9
    tau: float = 0.0
    n_min: int = 5
    batch_size: int = 256
    bootstrap_b: int = DEFAULT_B  # resamples of each headline number's 95% interval (0: none)
    which: tuple[str, ...] = ANALYSES
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.k_ref not in self.ks or float(self.s_ref) not in [float(s) for s in self.strengths]:
            raise BadSpecError(f"k_ref={self.k_ref} must be one of ks {self.ks} and s_ref={self.s_ref} one of "
                               f"strengths {self.strengths}")
        if min(self.ks) < 1 or min(self.strengths) < 0:
            raise BadSpecError("ks must be >= 1 and strengths >= 0")
        if not 0 < self.jaccard <= 1 or self.retrieval_k < 1 or self.n_images < 2 or self.bootstrap_b < 0:
            raise BadSpecError("need 0 < jaccard <= 1, retrieval_k >= 1, n_images >= 2 and bootstrap_b >= 0")
        bad = [w for w in self.which if w not in ANALYSES]
        if bad:
            raise BadSpecError(f"unknown analyses {bad}; expected some of {ANALYSES}")

    def record(self) -> dict:
        d = asdict(self)
        for k in ("batch_size", "extra"):
            d.pop(k)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def feature_labels(rep, settings: AnalysisSettings, cache_dir: Path) -> dict | None:
    """Top vocabulary word per feature (text tower) and each word's zero-shot-space text embedding."""
    if not rep.meta.has_text:
        return None
    from interpbench.extraction.extract import encode_texts_cached
    from interpbench.metrics.labels import vocabulary_labels
    from interpbench.vocab import load_vocab

    vocab = load_vocab(settings.vocab)
    words = list(vocab.words)
    texts = [settings.template.format(w) for w in words]
    key = {"model": rep.meta.fingerprint, "spec": rep.meta.spec, "vocab": str(vocab.path),
           "template": settings.template}
    feats = encode_texts_cached(rep.encode_text_features, texts, cache_dir, {**key, "what": "features"})
    emb = encode_texts_cached(text_side(rep), texts, cache_dir, {**key, "what": "zeroshot-space"}, sparse=False)
    top = vocabulary_labels(feats, k=1).top
    return {"words": words, "top": top, "top_words": [words[t] if t >= 0 else None for t in top],
            "word_embedding": emb}


def steering_analysis(rep, codes: Codes, labels: dict | None, settings: AnalysisSettings) -> dict:
    from interpbench.data.shapes import ATTRIBUTES, ZEROSHOT_CLASSNAMES, ZEROSHOT_TEMPLATES

    decode = decoder_for(rep, codes)
    per = {}
    # label minus random-feature steering success per (attribute, image); NaN where not scored
    gain = np.full((len(ATTRIBUTES), codes.features.shape[0]), np.nan)
    for a, (attribute, values) in enumerate(ATTRIBUTES.items()):
        names, templates = ZEROSHOT_CLASSNAMES[attribute], ZEROSHOT_TEMPLATES[attribute]
        truth = codes.attributes[attribute]
        rows = torch.tensor([i for i, v in enumerate(truth) if v is not None], dtype=torch.long)
        if len(rows) == 0:
            continue
        y = torch.tensor([values.index(truth[i]) for i in rows.tolist()])
        classifier = zeroshot_classifier(rep, names, templates)
        lf = steering.label_features(class_text_features(rep, names, templates), max(settings.ks), settings.contrast)
        ctrl = steering.random_label_features(len(names), rep.n_features, max(settings.ks), settings.seed + 1 + a)
        sub = _row_decoder(decode, rows)
        run = dict(z=codes.features[rows], labels=y, classifier=classifier, decode=sub,
                   strengths=settings.strengths, ks=settings.ks, seed=settings.seed + a)
        per[attribute] = {"label": steering.steering_curves(label_feats=lf, **run),
                          "control": steering.steering_curves(label_feats=ctrl, **run),
                          "label_features": {n: lf[c].tolist() for c, n in enumerate(names)}}
        gain[a, rows.numpy()] = _hits(run, lf, settings) - _hits(run, ctrl, settings)
    out = {"per_attribute": per,
           "steerability": steering.steerability(per, settings.k_ref, settings.s_ref),
           "steerability_interval": attribute_mean_interval(gain, settings.bootstrap_b, settings.seed),
           "mean_curves": _mean_curves(per, settings)}
    if labels is not None:
        labelled = torch.as_tensor(labels["top"] >= 0)
        word_text = labels["word_embedding"][torch.as_tensor(np.maximum(labels["top"], 0))]
        out["ablation"] = steering.ablation_faithfulness(codes.features, decode, word_text, labelled,
                                                         seed=settings.seed, max_pairs=settings.max_pairs,
                                                         b=settings.bootstrap_b)
    return out


def _hits(run: dict, feats: torch.Tensor, settings: AnalysisSettings) -> np.ndarray:
    """Per-image steering success at (k_ref, s_ref) of one attribute (NaN: misclassified image)."""
    args = {k: v for k, v in run.items() if k not in ("strengths", "ks")}
    return steering.steering_hits(label_feats=feats, k=settings.k_ref, strength=settings.s_ref, **args)


def _row_decoder(decode, rows: torch.Tensor):
    """A decoder over a subset `rows` of the images: local row ids -> global image ids."""
    return lambda z, local=None: decode(z, rows if local is None else rows[local])


def _mean_curves(per: dict, settings: AnalysisSettings) -> dict:
    out = {}
    for which in ("label", "control"):
        for metric in ("suppression", "steering"):
            for k in settings.ks:
                curves = np.array([r[which][metric][str(k)] for r in per.values()], dtype=float)
                out[f"{which}_{metric}_k{k}"] = np.nanmean(curves, axis=0).tolist() if len(curves) else []
        for k in settings.ks:
            out[f"{which}_collateral_k{k}"] = float(np.nanmean([r[which]["collateral"][str(k)] for r in per.values()]))
    return out


def latent_analysis(rep, codes: Codes, baseline: torch.Tensor, labels: dict | None,
                    settings: AnalysisSettings) -> dict:
    z = codes.features.numpy()
    w_dec = rep.sae.W_dec.detach().float() if rep.meta.kind == "sae" else None
    b, seed = settings.bootstrap_b, settings.seed
    return {"clustering": clustering.clustering_report(z, codes.attributes, seed=seed, b=b),
            "clustering_baseline": clustering.clustering_report(baseline.numpy(), codes.attributes, seed=seed, b=0),
            "retrieval": retrieval.retrieval_report(codes.features, baseline, codes.attributes, settings.retrieval_k,
                                                    b=b, seed=seed),
            "duplicates": duplicates.duplicate_groups(codes.features, settings.jaccard, settings.tau, settings.n_min,
                                                      w_dec=w_dec,
                                                      top_labels=labels["top_words"] if labels else None,
                                                      b=b, seed=seed)}


def baseline_embedding(rep, codes: Codes, source, settings: AnalysisSettings, cache_dir: Path, device) -> tuple:
    """(spec, [N, d]) of the dense CLIP embedding retrieval is compared against."""
    spec = settings.baseline
    if spec == "auto":
        if rep.meta.kind != "sparse-clip" and codes.embedding is not None:
            return f"{rep.meta.spec} (its dense CLIP embedding)", codes.embedding
        spec = "shapes:dense"
    from interpbench.adapters import load_representation

    base = load_representation(spec)
    emb = collect_codes(base, source, cache_dir, device, settings.batch_size).embedding
    if emb is None:
        raise BadSpecError(f"retrieval baseline {spec!r} has no dense image embedding; pass a CLIP spec")
    return spec, emb


def headline(analyses: dict) -> dict:
    """The few numbers a leaderboard row shows."""
    m = {}
    s = analyses.get("steering")
    if s and "skipped" not in s:
        m["steerability"] = s["steerability"]
        if "ablation" in s:
            m["ablation_ratio"] = s["ablation"]["ratio"]
            m["ablation_win_rate"] = s["ablation"]["win_rate"]
            m["ablation_share_beats_random"] = s["ablation"]["share_features_label_beats_random"]
    lat = analyses.get("latent")
    if lat:
        m["cluster_ari_mean"] = lat["clustering"]["mean_ari"]
        m["cluster_nmi_mean"] = lat["clustering"]["mean_nmi"]
        m["retrieval_p_at_k_codes"] = lat["retrieval"]["mean"]["codes"]
        m["retrieval_p_at_k_baseline"] = lat["retrieval"]["mean"]["baseline"]
        m["duplicate_share"] = lat["duplicates"]["share_in_groups"]
    return m


# headline metric -> (path to its interval in `analyses`, resampled unit)
INTERVALS = {"steerability": (("steering", "steerability_interval"), "bootstrap-images"),
             "ablation_win_rate": (("steering", "ablation", "win_rate_interval"), "bootstrap-images"),
             "ablation_ratio": (("steering", "ablation", "ratio_interval"), "bootstrap-images"),
             "cluster_ari_mean": (("latent", "clustering", "mean_ari_interval"), "bootstrap-images"),
             "cluster_nmi_mean": (("latent", "clustering", "mean_nmi_interval"), "bootstrap-images"),
             "retrieval_p_at_k_codes": (("latent", "retrieval", "interval"), "bootstrap-images"),
             "duplicate_share": (("latent", "duplicates", "share_interval"), "bootstrap-features")}


def headline_intervals(analyses: dict, b: int, seed: int) -> dict:
    """record["intervals"]: metric key -> interval_record (metrics/bootstrap.py) of each headline number."""
    out = {}
    for key, (path, method) in INTERVALS.items():
        node = analyses
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        # image resamples: analysis.intervals' bias-removed percentiles; duplicate share: a mean over features
        kind = "centred" if method == "bootstrap-images" else None
        rec = interval_record(tuple(node), method, b, seed, kind=kind) if node else None
        if rec is not None:
            out[key] = rec
    return out


def run_analyses(spec: str, settings: AnalysisSettings, cache_dir: Path, device: str = "cpu",
                 figures_dir: Path | None = None) -> dict:
    """Load the model, run the chosen analyses, optionally draw figures; returns the record."""
    from interpbench.adapters import load_representation
    from interpbench.data import load_source

    t0 = time.time()
    torch.manual_seed(settings.seed)
    rep = load_representation(spec)
    source = load_source(settings.dataset, settings.n_images, settings.seed)
    codes = collect_codes(rep, source, cache_dir, device, settings.batch_size)
    rep.to("cpu")
    labels = feature_labels(rep, settings, cache_dir)
    analyses, extra = {}, {}
    if "steering" in settings.which:
        if rep.meta.has_text:
            analyses["steering"] = steering_analysis(rep, codes, labels, settings)
        else:  # label features come from the text side; the latent analyses still apply
            analyses["steering"] = {"skipped": f"{rep.meta.name} has no text side (no label features)"}
    if "latent" in settings.which:
        base_spec, base = baseline_embedding(rep, codes, source, settings, cache_dir, device)
        analyses["latent"] = latent_analysis(rep, codes, base, labels, settings)
        analyses["latent"]["baseline"] = base_spec
        extra["baseline_embedding"] = base
    record = _record(rep, source, settings, analyses, time.time() - t0)
    if figures_dir is not None:
        from interpbench.analysis import plots

        record["figures"] = [str(p) for p in plots.model_figures(record, codes, source, extra, figures_dir)]
    return record


def _record(rep, source, settings, analyses, wall) -> dict:
    from interpbench.evaluation.runner import package_version

    return {"schema_version": SCHEMA_VERSION, "record_type": "analysis", "interpbench_version": interpbench.__version__,
            "model": rep.meta.to_dict(),
            "dataset": {"name": source.name, "spec": settings.dataset, "identity": source.identity},
            "settings": {**settings.record(), "analysis": True}, "seed": settings.seed,
            "metrics": headline(analyses), "intervals": headline_intervals(analyses, settings.bootstrap_b, settings.seed),
            "analyses": analyses, "timing": {"wall_time_s": round(wall, 2)},
            "environment": {"python": platform.python_version(), "torch": torch.__version__,
                            "scikit_learn": package_version("scikit-learn"), "clip_benchmark": package_version("clip-benchmark")}}


def write_analysis(results_dir: Path, record: dict) -> Path:
    """Atomically write RESULTS/<dataset>/analysis/<model slug>__<hash>.json."""
    from interpbench.ioutils import atomic_write_text
    from interpbench.results.store import json_safe, result_stem, slug

    path = Path(results_dir) / slug(record["dataset"]["name"]) / "analysis" / f"{result_stem(record)}.json"
    atomic_write_text(path, json.dumps(json_safe(record), indent=2, sort_keys=True) + "\n")
    return path
