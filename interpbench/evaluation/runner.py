"""`interpbench evaluate`: source -> representation -> accumulators -> results.

For one (model, data set): extract and cache image activations; label features with a
vocabulary through the text tower; stream the cached chunks through the metric suite;
score zero-shot classification through clip-benchmark on the cached embeddings; write
one results JSON. Every step is deterministic given the seed.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

import interpbench
from interpbench.extraction.cache import default_cache_dir
from interpbench.metrics.bootstrap import DEFAULT_B
from interpbench.results.store import STAGES

CF_SCENES = 200  # default counterfactual scenes at the default 2,000 images


@dataclass(frozen=True)
class EvalSettings:
    dataset: str = "shapes"
    n_images: int = 2000
    seed: int = 0
    judge: str = "groundtruth"  # Shapes concept vectors (no contestant judges itself), or a model spec
    vocab: str = "shapes"
    template: str = "{}"
    tau: float = 0.001
    n_min: int = 2
    top_n: int = 20
    band: tuple[float, float] = (0.1, 0.9)
    top_k_words: int = 5
    corr_threshold: float = 0.3
    zeroshot: bool = True
    # One-object scenes for counterfactual selectivity, each with 5 edits; 0 skips it. None:
    # min(200, n_images // 10), so the pairs add at most 60% of the main run's images.
    cf_scenes: int | None = None
    batch_size: int = 256
    chunk_size: int = 1024
    bootstrap: int = DEFAULT_B  # B resamples for the 95% intervals (0: none); B and seed are in each interval
    skip_unreadable: bool = False  # leave out images that cannot be decoded (file-based data); recorded
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0 < self.band[0] < self.band[1] < 1:
            raise ValueError(f"band must satisfy 0 < low < high < 1, got {self.band}")
        if self.tau < 0 or self.n_min < 2 or self.top_n < 2 or self.top_k_words < 1:
            raise ValueError("need tau >= 0, n_min >= 2, top_n >= 2, top_k_words >= 1")
        if self.cf_scenes is None:
            object.__setattr__(self, "cf_scenes", min(CF_SCENES, self.n_images // 10))
        if self.cf_scenes < 0:
            raise ValueError(f"cf_scenes must be >= 0 (0 skips counterfactual selectivity), got {self.cf_scenes}")

    def record(self) -> dict:
        """The settings that determine the numbers (not batch or chunk size)."""
        d = asdict(self)
        for k in ("batch_size", "chunk_size", "extra", "bootstrap"):
            d.pop(k)
        if not self.skip_unreadable:  # absent unless used: older results keep their settings hash
            d.pop("skip_unreadable")
        d["band"] = list(self.band)
        return d


@dataclass
class RunContext:
    device: torch.device
    cache_dir: Path
    offline: bool = False
    task: Callable | None = None  # task(description, total) -> advance(n) for progress bars
    results_dir: Path | None = None  # where the CLI writes results: checked before the first forward pass
    note: Callable[[str], None] | None = None  # prints a line for the user (estimates), or None: silent


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        from interpbench.errors import BadSpecError

        raise BadSpecError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
    return torch.device(device)


def evaluate_model(spec: str, settings: EvalSettings, ctx: RunContext) -> tuple[dict, dict, dict | None]:
    """Evaluate one model on one data set; returns (record, per_feature arrays, labels)."""
    from interpbench.adapters import load_representation
    from interpbench.data import load_source
    from interpbench.evaluation import label_routes, steps
    from interpbench.evaluation.counterfactual import counterfactual_selectivity_step

    t0 = time.time()
    torch.manual_seed(settings.seed)
    rep = load_representation(spec, offline=ctx.offline)
    source = load_source(settings.dataset, settings.n_images, settings.seed, settings.skip_unreadable)
    steps.check_judge(source, settings)
    steps.check_judge_is_not_the_model(rep, settings, ctx)
    check_outputs(source, ctx)
    stage = StageTimer()
    # Read before extraction, so a missing vocabulary fails in seconds rather than after minutes.
    words = stage("vocabulary", steps.vocab_words, settings)
    cache = stage("extraction", steps.extract, rep, source, settings, ctx)
    judge = stage("extraction", steps.judge_embeddings, source, settings, ctx)
    routes = stage("vocabulary", label_routes.before_suite, rep, words, settings, ctx)  # text and decoder routes
    primary = label_routes.primary_route(routes)
    labels = routes.get(primary)  # None when the primary labels come from the images (after the pass)
    text_feats = stage("captions", steps.caption_features, rep, source, settings, ctx)
    metrics, per_feature, extras = stage("metrics", steps.run_suite, rep, source, cache, judge, labels, text_feats,
                                         settings, ctx, routes)
    routes, route_metrics, route_per = extras.pop("label_routes")
    primary = label_routes.primary_route(routes)
    labels = routes.get(primary)
    if labels is None:  # no route at all (a judge that cannot embed words): no label metrics
        primary = None
    metrics.update(route_metrics.get(primary, {}))
    per_feature.update(route_per.get(primary, {}))
    per_feature.update({f"{k}@{r}": v for r, arrays in route_per.items()
                        if r != primary and not label_routes.is_shuffled(r) for k, v in arrays.items()})
    cf_metrics, cf_intervals, cf_per_feature = stage("counterfactual", counterfactual_selectivity_step, rep, source,
                                                     labels, per_feature, settings, ctx,
                                                     {r: v for r, v in routes.items() if r != primary})
    cf_metrics, cf_routes = label_routes.split_route_keys(cf_metrics)
    cf_intervals, cf_route_intervals = label_routes.split_route_keys(cf_intervals)
    metrics.update(cf_metrics)
    per_feature.update({k: v for k, v in cf_per_feature.items() if not label_routes.is_shuffled(k)})
    if settings.zeroshot:
        metrics.update(stage("zeroshot", steps.zeroshot, rep, source, cache, settings, ctx))
    # intervals of the same numbers, from the cached rows (no second model pass)
    intervals = stage("intervals", steps.intervals, rep, source, cache, judge, labels, text_feats, settings, ctx,
                      routes)
    intervals, route_intervals = label_routes.split_route_keys(intervals)
    label_routes.merge_routes(primary, route_metrics, route_intervals, (cf_routes, cf_route_intervals),
                              metrics, {**intervals, **cf_intervals})
    record = {
        "schema_version": 1,
        "interpbench_version": interpbench.__version__,
        "model": rep.meta.to_dict(),
        "dataset": {"name": source.name, "spec": settings.dataset, "identity": source.identity},
        "settings": settings.record(),
        "seed": settings.seed,
        "metrics": metrics,
        # metric key -> metrics.bootstrap.interval_record; the suite's own (paired multimodality) win
        "intervals": {**intervals, **extras["intervals"]},
        "controls": extras["controls"],  # control name -> {metric key: value}, e.g. "shuffled_pairs"
        "label_routes": label_routes.record(primary, route_metrics, route_intervals,
                                            label_routes.agreement(routes, _concept_of_word(source)),
                                            label_routes.unavailable_routes(rep, "images" in routes)),
        "timing": {"wall_time_s": round(time.time() - t0, 2)},
        "timings": stage.record(),  # seconds per stage: where the time (and a GPU's time) goes
        "device": str(ctx.device),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "open_clip": package_version("open_clip_torch"), "clip_benchmark": package_version("clip-benchmark"),
                        "machine": platform.machine()},
    }
    if settings.skip_unreadable:
        record["dataset"]["skipped_unreadable"] = {"count": len(source.skipped), "names": list(source.skipped)}
    unavailable = steps.unavailable_metrics(rep, source)
    if unavailable:
        record["unavailable"] = unavailable
    if cf_intervals:
        record.setdefault("intervals", {}).update(cf_intervals)
    # the other routes' words, written by results.store.write_result as .labels.<route>.json sidecars
    record["_route_labels"] = {r: steps.labels_for_record(lab) for r, lab in routes.items()
                               if r != primary and not label_routes.is_shuffled(r)}
    return record, per_feature, steps.labels_for_record(labels)


def check_outputs(source, ctx: RunContext) -> None:
    """Every folder the run writes to is writable, before minutes of extraction are spent."""
    from interpbench.ioutils import check_writable_dir
    from interpbench.results.store import slug

    check_writable_dir(ctx.cache_dir, "--cache-dir")
    if ctx.results_dir is not None:
        check_writable_dir(Path(ctx.results_dir) / slug(source.name), "--results")


class StageTimer:
    """stage(name, fn, *args) runs fn and adds its wall seconds to `name`; a stage that
    did not run (no text side, no zero-shot) is recorded as 0."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def __call__(self, name: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def record(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}


def _concept_of_word(source) -> dict | None:
    """Word -> ground-truth concept it names, for route agreement (Shapes); None elsewhere."""
    if source.concept_names is None:
        return None
    from interpbench.data.shapes import word_concepts

    return word_concepts()


def package_version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "unknown"


def default_cache() -> Path:
    return default_cache_dir()
