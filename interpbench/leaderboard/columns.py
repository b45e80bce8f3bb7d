"""The metric columns of the leaderboards: key in the results JSON, direction, docs anchor."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    # Position in the documented rank order (docs/metrics.md#ranking): the default `#` rank is the
    # first such column that separates every ranked model from its controls; None = never the default.
    rank: int | None = None
    analysis: bool = False  # from `interpbench analyze run`, not `evaluate`

    @property
    def key(self) -> str:
        return self.keys[0]

    def matches(self, name: str) -> bool:
        """Whether a user's `--rank-by NAME` means this column (a key or the title, any case)."""
        name = name.strip().lower()
        return name in {k.lower() for k in self.keys} or name == self.title.lower()

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


# Written by `interpbench analyze run` into RESULTS/<dataset>/analysis/ and joined to the
# model's row by leaderboard/merge.py; "–" where the analyses were not run (or do not apply).
_ANALYZE = " From `interpbench analyze run` (Shapes ground truth); – where not run."
ANALYSIS_COLUMNS: tuple[Column, ...] = tuple(replace(c, analysis=True) for c in (
    Column(("steerability",), "steer.", "max", "steerability",
           "Zero-shot steering success of label features minus that of random features at the reference "
           "point (default k = 2, s = 2), mean over attributes. An untrained CLIP scores as high: read it "
           "beside zero-shot accuracy." + _ANALYZE),
    Column(("ablation_win_rate",), "ablation win", "max", "ablation-faithfulness",
           "Share of (image, feature) pairs where zeroing the feature lowers its label word's similarity "
           "more than zeroing a random active feature (0.5 = random)." + _ANALYZE),
    Column(("cluster_ari_mean",), "k-means ARI", "max", "kmeans-ari-nmi",
           "Adjusted Rand index of k-means on the codes against each attribute's true values, mean over "
           "attributes." + _ANALYZE),
    Column(("cluster_nmi_mean",), "k-means NMI", "max", "kmeans-ari-nmi",
           "Normalised mutual information of the same k-means clusters, mean over attributes." + _ANALYZE),
    Column(("retrieval_p_at_k_codes",), "P@10", "max", "retrieval-precision",
           "Share of an image's 10 nearest images by code cosine with the same attribute value, mean over "
           "attributes." + _ANALYZE),
    Column(("duplicate_share",), "dup. share", "min", "duplicate-features",
           "Share of active features in groups firing on nearly the same images (default Jaccard > 0.9)." + _ANALYZE),
))

COLUMNS: tuple[Column, ...] = (
    Column(("clarity",), "Clarity", "max", "clarity",
           "Mean pairwise cosine of judge embeddings of the images each feature fires on (tau, n_min).", rank=7),
    Column(("clarity_matched",), "Clarity@n", "max", "frequency-matched-clarity",
           "Frequency-matched Clarity: every feature scored on its top n images (n = top_n), features active on "
           "fewer than n images left out, so rare features cannot score high by chance.", rank=8),
    Column(("clarity_baseline",), "baseline", None, "dataset-baseline",
           "Clarity of the data set itself: mean pairwise cosine over all images. Not ranked."),
    Column(("active_features_pct",), "Active F%", "max", "active-features",
           "Share of features that fire on at least n_min images.", percent=True),
    Column(("l0",), "L0", "min", "l0", "Mean number of features above tau per image.", digits=1),
    Column(("multimodal_fraction",), "band fraction", "max", "multimodal-fraction",
           "Share of scored features whose modality score (on per-tower normalised activations) lies in the "
           "band [0.1, 0.9]. Per-tower marginals only: shuffling the captions does not change it."),
    Column(("paired_multimodality",), "paired multimodal", "max", "paired-multimodality",
           "Mean over image-caption pairs of cos(image, own caption) minus the mean cos(image, every other "
           "caption), on feature activations; chance 0.", rank=3),
    Column(("label_correlation_mean", "label_corr_mean"), "label corr.", "max", "label-correlation",
           "Mean Pearson correlation between a feature's activations and its top word's judge similarity "
           "(ground-truth judge: whether the word's concept is in the image).", rank=1),
    Column(("label_corr_matched",), "label corr.@n", "max", "frequency-matched-label-correlation",
           "Frequency-matched label correlation: the mean over the labelled features active on at least n images "
           "(n = top_n, as Clarity@n); a feature seen on few images cannot correlate highly with any concept.",
           rank=2),
    Column(("gt_coverage",), "GT coverage", "max", "ground-truth-coverage",
           "Share of ground-truth concepts detected by some feature with AUROC >= 0.9 (Shapes only).", rank=6),
    Column(("gt_label_accuracy",), "GT label acc.", "max", "label-accuracy",
           "Share of covered concepts whose best feature's top word names the concept (Shapes only).", rank=5),
    Column(("cf_selectivity",), "CF select.", "max", "counterfactual-selectivity",
           "Counterfactual selectivity: mean over features labelled with a Shapes concept (top vocabulary "
           "word) of (own - other) / (own + other), own/other the mean |activation change| when one-object "
           "scenes are re-rendered with the feature's concept changed / another attribute changed; 1 = moves "
           "only with its concept, 0 = no preference; 95% interval by bootstrap over scenes and features (Shapes only).", rank=4),
    Column(("zeroshot_mean",), "zero-shot", "max", "zero-shot-accuracy",
           "Mean top-1 zero-shot accuracy over attributes, through clip-benchmark."),
    Column(("fvu",), "FVU (nMSE)", "min", "reconstruction-fvu",
           "Per sample mean((x - x_hat)^2) / mean(x^2), averaged (MSAE's normalized_mean_squared_error; "
           "no mean subtraction) (SAEs only)."),
    Column(("fvu_msae",), "FVU (var)", "min", "reconstruction-fvu",
           "Per sample Var_d(x - x_hat) / Var_d(x), averaged (MSAE's explained_variance_full, the number "
           "its evaluation script reports) (SAEs only)."),
    *ANALYSIS_COLUMNS,
)


# The headline table (first on each page, and `evaluate`'s summary): `#`, model, then at most
# MAX_HEADLINE_METRICS metrics: these performance columns always, and the columns that separate.
HEADLINE_ALWAYS = ("zeroshot_mean", "l0", "fvu")
MAX_HEADLINE_METRICS = 8
RANK_ORDER = tuple(sorted((c for c in COLUMNS if c.rank is not None), key=lambda c: c.rank))


def find_column(name: str, columns=COLUMNS) -> Column:
    """The ranked column a user names (key or title); a clear error listing the choices."""
    from interpbench.errors import BadSpecError

    for col in columns:
        if col.better and col.matches(name):
            return col
    choices = ", ".join(c.key for c in columns if c.better)
    raise BadSpecError(f"--rank-by {name!r}: not a ranked leaderboard column; choose one of {choices}")


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
