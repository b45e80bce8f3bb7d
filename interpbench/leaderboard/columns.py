"""The metric columns of the leaderboards: key in the results JSON, direction, docs anchor."""

from __future__ import annotations

from dataclasses import dataclass

DOCS_URL = "../docs/metrics.md"  # relative to leaderboards/, so the links work on GitHub and on disk


@dataclass(frozen=True)
class Column:
    keys: tuple[str, ...]  # metric keys to try in order (older results used other names)
    title: str
    better: str | None  # "max", "min", or None for reference values that are not ranked
    anchor: str  # heading anchor in docs/metrics.md
    note: str  # footnote text
    percent: bool = False  # value is already in percent
    digits: int = 3

    @property
    def key(self) -> str:
        return self.keys[0]

    def value(self, metrics: dict) -> float | None:
        for k in self.keys:
            v = metrics.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return None

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "–"
        if self.percent:
            return f"{v:.1f}%"
        return f"{v:.{self.digits}f}" if abs(v) < 100 else f"{v:.1f}"

    @property
    def arrow(self) -> str:
        return {"max": " ↑", "min": " ↓"}.get(self.better, "")


COLUMNS: tuple[Column, ...] = (
    Column(("clarity",), "Clarity", "max", "clarity",
           "Mean pairwise cosine of judge embeddings of the images each feature fires on (tau, n_min)."),
    Column(("clarity_baseline",), "baseline", None, "dataset-baseline",
           "Clarity of the data set itself: mean pairwise cosine over all images. Not ranked."),
    Column(("active_features_pct",), "Active F%", "max", "active-features",
           "Share of features that fire on at least n_min images.", percent=True),
    Column(("l0",), "L0", "min", "l0", "Mean number of features above tau per image.", digits=1),
    Column(("multimodal_fraction",), "multimodal", "max", "multimodal-fraction",
           "Share of scored features whose modality score lies in the band [0.1, 0.9]."),
    Column(("label_correlation_mean", "label_corr_mean"), "label corr.", "max", "label-correlation",
           "Mean Pearson correlation between a feature's activations and its top word's judge similarity."),
    Column(("gt_coverage",), "GT coverage", "max", "ground-truth-coverage",
           "Share of ground-truth concepts detected by some feature with AUROC >= 0.9 (Shapes only)."),
    Column(("gt_label_accuracy",), "GT label acc.", "max", "label-accuracy",
           "Share of covered concepts whose best feature's top word names the concept (Shapes only)."),
    Column(("cf_selectivity",), "CF select.", "max", "counterfactual-selectivity",
           "Counterfactual selectivity: mean over features labelled with a Shapes concept (top vocabulary "
           "word) of (own - other) / (own + other), own/other the mean |activation change| when one-object "
           "scenes are re-rendered with the feature's concept changed / another attribute changed; 1 = moves "
           "only with its concept, 0 = no preference; 95% interval by bootstrap over scenes and features (Shapes only)."),
    Column(("zeroshot_mean",), "zero-shot", "max", "zero-shot-accuracy",
           "Mean top-1 zero-shot accuracy over attributes, through clip-benchmark."),
    Column(("fvu",), "FVU", "min", "reconstruction-fvu",
           "Fraction of variance unexplained by the SAE reconstruction (SAEs only)."),
)


def best_values(rows: list[dict[str, float | None]], columns=COLUMNS) -> dict[str, float]:
    """Column key -> best value among rows, for ranked columns with at least two values.

    A lone value, or a column where all values tie, is not marked: bold would claim a
    difference that is not there. Ties for the best value are all marked.
    """
    best = {}
    for col in columns:
        vals = [r[col.key] for r in rows if r.get(col.key) is not None]
        if col.better and len(set(vals)) >= 2:
            best[col.key] = max(vals) if col.better == "max" else min(vals)
    return best
