"""The steps of one evaluation, each small and cached where it is expensive."""

from __future__ import annotations

import torch

from interpbench.distributed import current_shard, merge_across_ranks
from interpbench.extraction.extract import cache_rows, encode_texts_cached, extract_images, iter_image_chunks


def extract(rep, source, settings, ctx):
    advance = ctx_task(ctx, f"extract {rep.meta.name}", len(source))
    return extract_images(rep, source, ctx.cache_dir, batch_size=settings.batch_size,
                          chunk_size=settings.chunk_size, device=ctx.device, progress=advance,
                          shard=current_shard(), on_estimate=getattr(ctx, "note", None))


def ctx_task(ctx, description, total):
    """advance(n) for a progress bar of `total` steps, or a no-op when the run shows none."""
    return ctx.task(description, total) if ctx.task else _noop


def _noop(n: int) -> None:
    return None


_JUDGES: dict = {}


def _judge_rep(settings, ctx):
    from interpbench.adapters import load_representation

    if settings.judge not in _JUDGES:
        _JUDGES[settings.judge] = load_representation(settings.judge, offline=ctx.offline)
    return _JUDGES[settings.judge]


def check_judge(source, settings) -> None:
    """Fail in seconds, before any extraction, when the judge cannot judge this data set."""
    if settings.judge == "groundtruth" and source.concept_names is None:
        from interpbench.errors import JudgeError

        raise JudgeError(f"--judge groundtruth (the default) needs a data set with ground-truth concepts; "
                         f"{source.name} has none. Pass --judge MODEL_SPEC: a CLIP model that is not among "
                         "the models being ranked (docs/metrics.md#judge)")


def check_judge_is_not_the_model(rep, settings, ctx) -> None:
    """Refuse a judge with the model's own weights: it would score the model in its own
    embedding space (docs/metrics.md#judge). Checked before extraction; the judge loaded
    here is the one judge_embeddings uses."""
    if settings.judge == "groundtruth":
        return
    judge = _judge_rep(settings, ctx)
    if judge.meta.fingerprint == rep.meta.fingerprint or judge.meta.spec == rep.meta.spec:
        from interpbench.errors import JudgeError

        raise JudgeError(f"--judge {settings.judge} is the model being evaluated ({rep.meta.spec}, same weights): "
                         "it would score itself in its own embedding space. Pass a --judge that is not among "
                         "the models being ranked, or leave out --judge on Shapes (ground truth)")


def judge_embeddings(source, settings, ctx) -> torch.Tensor:
    """[N, d_judge] judge image embeddings (or ground-truth concept vectors)."""
    if settings.judge == "groundtruth":
        check_judge(source, settings)
        return torch.stack([torch.from_numpy(source.concepts(i)) for i in range(len(source))]).float()
    judge = _judge_rep(settings, ctx)
    cache = extract(judge, source, settings, ctx)
    return cache_rows(cache, "embedding")  # all N rows, also in distributed runs


def vocab_words(settings) -> list[str]:
    from interpbench.vocab import load_vocab

    return list(load_vocab(settings.vocab).words)


def vocabulary_labels(rep, words: list[str] | None, settings, ctx) -> dict | None:
    """Top-K vocabulary words per feature through the text tower (None without a text side)."""
    if words is None:
        return None
    from interpbench.metrics.labels import vocabulary_labels as top_k_words
    from interpbench.vocab import encode_vocab  # keys the text cache by vocabulary content + template

    advance = ctx_task(ctx, f"encode vocabulary ({len(words)} words)", len(words))
    word_feats = encode_vocab(rep.encode_text_features, words, ctx.cache_dir,
                              {"model": rep.meta.fingerprint, "spec": rep.meta.spec, "what": "features"},
                              template=settings.template, rows=True, progress=advance)
    # dense word blocks of <= 2^24 values (64 MB): 4,096 words at 55,296 features would be 0.9 GB
    block = max(64, (1 << 24) // max(1, rep.n_features))
    return {"words": words, "labels": top_k_words(word_feats.blocks(block), k=settings.top_k_words,
                                                  n_features=rep.n_features)}


def vocab_judge(words, settings, ctx, source=None) -> torch.Tensor | None:
    """[V, d_judge] judge text embeddings of the vocabulary words (None without words).
    The ground-truth judge's "embedding" of a word is the 0/1 vector of the concepts it names."""
    if words is None:
        return None
    if settings.judge == "groundtruth":
        from interpbench.data.shapes import word_concept_matrix

        return torch.from_numpy(word_concept_matrix(words, source.concept_names))
    from interpbench.vocab import encode_vocab

    judge = _judge_rep(settings, ctx)
    return encode_vocab(judge.encode_text_embedding, words, ctx.cache_dir,
                        {"model": judge.meta.fingerprint, "spec": judge.meta.spec, "what": "embedding"},
                        template=settings.template, sparse=False)


def caption_features(rep, source, settings, ctx):
    """[N, F] text features of each image's first caption (paired data) as SparseRows, or None."""
    if not rep.meta.has_text or source.captions(0) is None:
        return None
    captions = [source.captions(i)[0] for i in range(len(source))]
    advance = ctx_task(ctx, "encode captions", len(captions))
    return encode_texts_cached(rep.encode_text_features, captions, ctx.cache_dir,
                               {"model": rep.meta.fingerprint, "spec": rep.meta.spec, "data": source.identity,
                                "what": "caption-features"}, rows=True, progress=advance)


MULTIMODAL_KEYS = ("multimodal_fraction", "paired_multimodality", "modality_score_median")
IMAGE_ONLY = "image-only"  # the reason recorded (and shown as "n/a: image-only") for a rep without text


def unavailable_metrics(rep, source) -> dict[str, str]:
    """metric key -> why it was not measured (record["unavailable"]): multimodality needs a text
    side ("image-only") and captions ("no captions")."""
    if not rep.meta.has_text:
        return dict.fromkeys(MULTIMODAL_KEYS, IMAGE_ONLY)
    if source.captions(0) is None:
        return dict.fromkeys(MULTIMODAL_KEYS, "no captions")
    return {}


def suite_config(settings):
    from interpbench.metrics.suite import SuiteConfig

    return SuiteConfig(tau=settings.tau, n_min=settings.n_min, top_n=settings.top_n, band=tuple(settings.band),
                       top_k_words=settings.top_k_words, corr_threshold=settings.corr_threshold, seed=settings.seed)


def run_suite(rep, source, cache, judge, labels, text_feats, settings, ctx, routes=None):
    """(metrics, per_feature, extras) of the metric pass. `labels`: the primary labels known
    before the pass (or None); `routes`: route -> labels of every route known before it
    (evaluation.label_routes), whose label metrics, and the image route's labels, are added
    from the same pass as extras["label_routes"] = (route labels, route metrics, route arrays)."""
    from interpbench.evaluation import label_routes
    from interpbench.metrics.label_correlation import label_text_from_vocab
    from interpbench.metrics.multimodality import pairing_derangement
    from interpbench.metrics.suite import MetricSuite

    cfg = suite_config(settings)
    words = labels["words"] if labels else (next(iter(routes.values()))["words"] if routes else None)
    if routes is not None and words is None:
        words = vocab_words(settings)
    vjudge = vocab_judge(words, settings, ctx, source)
    label_text = label_text_from_vocab(labels["labels"], vjudge) if vjudge is not None and labels else None
    # ground truth: label correlation is with the labelled concept's presence (0/1), not a cosine
    similarity = "dot" if settings.judge == "groundtruth" else "cosine"
    suite = MetricSuite(rep.n_features, judge.shape[1], config=cfg, concept_names=source.concept_names,
                        label_text_judge=label_text, label_similarity=similarity,
                        concept_synonyms=concept_synonyms(source))
    # the paired score's reference: every caption's unit vector summed once; its control's
    # re-paired captions: a fixed seeded derangement over all pairs (global ids)
    perm = pairing_derangement(len(source), settings.seed) if text_feats is not None else None
    cap_sum = caption_sums(text_feats, rep.n_features, cfg.nonnegative) if perm is not None else None
    advance = ctx_task(ctx, f"metrics {rep.meta.name}", len(source))
    for feats, t in iter_image_chunks(cache, rep.n_features, sparse=True):
        idx = t["index"]
        concepts = None
        if source.concept_names is not None:
            concepts = torch.stack([torch.from_numpy(source.concepts(int(i))) for i in idx]).float()
        suite.update_images(feats, judge[idx], idx, concepts=concepts)
        if text_feats is not None:
            shuffled = None if perm is None else text_feats.take(torch.from_numpy(perm[idx.numpy()]))
            suite.update_pairs(feats, text_feats.take(idx), shuffled=shuffled, ids=idx, caption_sum=cap_sum)
        if "sae_input" in t:
            suite.update_reconstruction(t["sae_input"], t["sae_recon"], feats)
        advance(len(idx))
    suite = merge_across_ranks(suite)  # distributed runs: every rank scored its own chunks
    metrics, per_feature = suite.finalize(labels=labels["labels"] if labels else None,
                                          vocab=labels["words"] if labels else None, vocab_text_judge=vjudge)
    extras = suite.extras()
    if routes is not None:
        routes = dict(routes)
        route_metrics, route_per = label_routes.after_suite(suite, routes, words, vjudge,
                                                            scored=(labels, metrics, per_feature))
        extras["label_routes"] = (routes, route_metrics, route_per)
    return metrics, per_feature, extras


def caption_sums(text_feats, n_features: int, nonnegative: bool, block: int = 4096):
    """(S, M) of multimodality.caption_unit_sum over all captions, a block of rows at a time."""
    from interpbench.metrics.inputs import to_entries
    from interpbench.metrics.multimodality import caption_unit_sum

    s, m = torch.zeros(n_features, dtype=torch.float64), 0
    for rows in text_feats.sparse_blocks(block):
        bs, bm = caption_unit_sum(to_entries(rows, "text_features", n_features, nonnegative))
        s, m = s + bs, m + bm
    return s, m


def concept_synonyms(source) -> dict | None:
    """Words that also name each ground-truth concept value, for gt_label_accuracy.

    Only the Shapes world (and its spurious variant) has ground-truth concepts, so a source
    with concept names gets the Shapes synonyms; the metric itself knows no data set."""
    if source.concept_names is None:
        return None
    from interpbench.data.shapes import SYNONYMS

    return SYNONYMS


def zeroshot(rep, source, cache, settings, ctx) -> dict:
    """Zero-shot accuracy per Shapes attribute via clip-benchmark, on the cached image embeddings."""
    from interpbench.metrics.zeroshot import PassthroughTokenizer, zeroshot_accuracy

    if not hasattr(source, "world"):
        return labelled_zeroshot(rep, source, cache, ctx) if getattr(source, "classes", None) else {}
    view, out = _zeroshot_view(rep), {}
    for key, ds, templates in _zeroshot_sets(source, cache_rows(cache, "zs_embedding")):
        dl = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=False)
        res = zeroshot_accuracy(view, PassthroughTokenizer(), dl, ds.classes, templates, device=ctx.device.type)
        out[key] = res["acc1"]
    if out:
        out["zeroshot_mean"] = sum(out.values()) / len(out)
    return out


def _zeroshot_view(rep):
    from interpbench.metrics.zeroshot import EncoderView

    text_fn = rep.encode_text_features if rep.meta.kind == "sparse-clip" else rep.encode_text_embedding
    return EncoderView(lambda x: x, lambda texts: text_fn(list(texts)))


def _zeroshot_sets(source, emb):
    """(metric key, data set of (embedding, class), templates) per zero-shot task of the source."""
    if not hasattr(source, "world"):
        items = [(i, source.label(i)) for i in range(len(source))]
        return [("zeroshot_acc1", _EmbeddingDataset(emb, items, list(source.classes)), list(source.templates))]
    from interpbench.data.shapes import ATTRIBUTES, ZEROSHOT_CLASSNAMES, ZEROSHOT_TEMPLATES

    sets = []
    attributes = [source.world.labels(i)[0] for i in range(len(source))]  # no rendering
    for attribute, templates in ZEROSHOT_TEMPLATES.items():
        values = ATTRIBUTES[attribute]
        items = [(i, attributes[i][attribute]) for i in range(len(source))]
        items = [(i, values.index(v)) for i, v in items if v is not None]
        if items:
            ds = _EmbeddingDataset(emb, items, list(ZEROSHOT_CLASSNAMES[attribute]))
            sets.append((f"zeroshot_{attribute}", ds, list(templates)))
    return sets


def labelled_zeroshot(rep, source, cache, ctx) -> dict:
    """Zero-shot accuracy on a labelled source (folder:, table: with labels, clip_benchmark:)."""
    from interpbench.metrics.zeroshot import PassthroughTokenizer, zeroshot_accuracy

    [(_, ds, templates)] = _zeroshot_sets(source, cache_rows(cache, "zs_embedding"))
    dl = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=False)
    res = zeroshot_accuracy(_zeroshot_view(rep), PassthroughTokenizer(), dl, ds.classes, templates,
                            device=ctx.device.type)
    # zeroshot_mean is the headline key leaderboards read (for Shapes, the mean over attributes).
    return {"zeroshot_acc1": res["acc1"], "zeroshot_mean_per_class_recall": res["mean_per_class_recall"],
            "zeroshot_mean": res["acc1"]}


def zeroshot_correct(rep, source, cache, ctx) -> dict:
    """metric key -> (image ids, per-image top-1 correct) of each zero-shot task, for the intervals."""
    import numpy as np

    from interpbench.metrics.zeroshot import PassthroughTokenizer, zeroshot_correct

    if not hasattr(source, "world") and not getattr(source, "classes", None):
        return {}
    view, out = _zeroshot_view(rep), {}
    for key, ds, templates in _zeroshot_sets(source, cache_rows(cache, "zs_embedding")):
        dl = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=False)
        ids = np.array([i for i, _ in ds.items], dtype=np.int64)
        out[key] = (ids, zeroshot_correct(view, PassthroughTokenizer(), dl, ds.classes, templates,
                                          device=ctx.device.type))
    return out


def intervals(rep, source, cache, judge, labels, text_feats, settings, ctx, routes=None) -> dict:
    """metric key -> interval record (metrics.bootstrap) from the cached rows; {} when
    settings.bootstrap is 0. In a distributed run every rank gathers all rows' sparse entries
    (the same rows a single process reads) and rank 0, which writes the results, computes the
    same replicates; the other ranks return {}. routes: route -> labels; their label metrics'
    intervals come back as "key@route"."""
    from interpbench.metrics.intervals import metric_intervals

    if settings.bootstrap < 1:
        return {}
    advance = ctx_task(ctx, f"intervals {rep.meta.name} (B={settings.bootstrap})", 1)
    cfg = suite_config(settings)
    inputs = _interval_inputs(rep, source, cache, judge, labels, text_feats, cfg, settings, ctx, routes)  # collective
    out = metric_intervals(inputs, cfg, settings.bootstrap, settings.seed) if current_shard().is_main else {}
    advance(1)
    return out


def _interval_inputs(rep, source, cache, judge, labels, text_feats, cfg, settings, ctx, routes=None):
    """Every array the intervals read, one row per image, from the cache and earlier steps."""
    import numpy as np

    from interpbench.metrics.intervals import IntervalInputs
    from interpbench.metrics.label_correlation import label_text_from_vocab

    inputs = IntervalInputs(features=_feature_chunks(cache, rep.n_features, cfg.nonnegative), judge_unit=_unit(judge))
    words = labels["words"] if labels else (next(iter(routes.values()))["words"] if routes else None)
    vjudge = vocab_judge(words, settings, ctx, source)  # read back from the text cache
    if vjudge is not None:
        if labels is not None:
            inputs.label_text_judge = label_text_from_vocab(labels["labels"], vjudge)
        inputs.label_routes = {r: label_text_from_vocab(lab["labels"], vjudge) for r, lab in _others(routes, labels)}
        if settings.judge == "groundtruth":  # the suite's "dot" similarity: raw 0/1 concept vectors
            inputs.label_judge = judge.double()
    if source.concept_names is not None:
        world = getattr(source, "world", None)  # Shapes: concepts without rendering the images
        inputs.concepts = np.stack([world.labels(i)[1] if world is not None else source.concepts(i)
                                    for i in range(len(source))])
        inputs.concept_names = list(source.concept_names)
        inputs.concept_synonyms = concept_synonyms(source)
        if labels is not None:
            inputs.top_words = _top_words(labels)
        inputs.route_top_words = {r: _top_words(lab) for r, lab in _others(routes, labels)}
    if "sae_input" in cache.read(0).tensors:
        inputs.sae_input, inputs.sae_recon = cache_rows(cache, "sae_input"), cache_rows(cache, "sae_recon")
    if settings.zeroshot:
        inputs.zeroshot = zeroshot_correct(rep, source, cache, ctx)
    return inputs


def _others(routes, labels) -> list:
    """(route, labels) of the routes other than the primary `labels` (whose intervals are the
    record's own: the runner copies them to the primary route)."""
    return [(r, lab) for r, lab in (routes or {}).items() if lab is not labels]


def _top_words(labels) -> list[str | None]:
    return [labels["words"][w] if w >= 0 else None for w in labels["labels"].word_ids[:, 0].tolist()]


def _unit(judge):
    from interpbench.metrics.inputs import to_matrix, unit_rows

    return unit_rows(to_matrix(judge, "judge"), "judge")


def _feature_chunks(cache, n_features: int, nonnegative: bool):
    """The intervals' view of the activations: one process streams the cache a chunk at a time
    (metrics.intervals.FeatureChunks); a distributed run gathers every rank's sparse entries
    instead (`_all_entries`), since the ranks' caches need not share a disk."""
    from interpbench.metrics.inputs import to_entries
    from interpbench.metrics.intervals import FeatureChunks

    if current_shard().world > 1:
        return _all_entries(cache, n_features, nonnegative)

    def read():
        for feats, t in iter_image_chunks(cache, n_features, sparse=True):
            yield int(t["index"][0]), to_entries(feats, "features", n_features, nonnegative)

    return FeatureChunks(cache.n_items, n_features, read)


def _all_entries(cache, n_features: int, nonnegative: bool):
    """Entries of every cached image row (row = global image index). A distributed run
    gathers every rank's chunks (sparse entries only), in row order as one process reads them."""
    from interpbench.distributed import all_gather_objects
    from interpbench.metrics.inputs import Entries, to_entries

    mine = {}
    for feats, t in iter_image_chunks(cache, n_features, sparse=True):
        e = to_entries(feats, "features", n_features, nonnegative)
        mine[int(t["index"][0])] = (e.rows + int(t["index"][0]), e.cols, e.vals)
    blocks = {k: v for part in all_gather_objects(mine) for k, v in part.items()}
    parts = [Entries(*blocks[k], 0, n_features) for k in sorted(blocks)]
    return Entries(torch.cat([p.rows for p in parts]), torch.cat([p.cols for p in parts]),
                   torch.cat([p.vals for p in parts]), cache.n_items, n_features)


class _EmbeddingDataset(torch.utils.data.Dataset):
    def __init__(self, emb, items, classes):
        self.emb, self.items, self.classes = emb, items, classes

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        idx, target = self.items[i]
        return self.emb[idx], target


def labels_for_record(labels) -> dict | None:
    if labels is None:
        return None
    words, fl = labels["words"], labels["labels"]
    return {str(f): [[words[j], round(float(sc), 6)] for j, sc in zip(fl.word_ids[f].tolist(), fl.scores[f].tolist(), strict=False)
                     if j >= 0] for f in range(fl.word_ids.shape[0])}
