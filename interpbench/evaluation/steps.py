"""The steps of one evaluation, each small and cached where it is expensive."""

from __future__ import annotations

import torch

from interpbench.distributed import current_shard, merge_across_ranks
from interpbench.extraction.extract import cache_rows, encode_texts_cached, extract_images, iter_image_chunks


def extract(rep, source, settings, ctx):
    advance = ctx_task(ctx, f"extract {rep.meta.name}", len(source))
    return extract_images(rep, source, ctx.cache_dir, batch_size=settings.batch_size,
                          chunk_size=settings.chunk_size, device=ctx.device, progress=advance,
                          shard=current_shard())


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


def judge_embeddings(source, settings, ctx) -> torch.Tensor:
    """[N, d_judge] judge image embeddings (or ground-truth concept vectors)."""
    if settings.judge == "groundtruth":
        if source.concept_names is None:
            from interpbench.errors import BadSpecError

            raise BadSpecError(f"--judge groundtruth needs a data set with ground-truth concepts; "
                               f"{source.name} has none")
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
                              template=settings.template, progress=advance)
    return {"words": words, "labels": top_k_words(word_feats, k=settings.top_k_words, n_features=rep.n_features)}


def vocab_judge(labels, settings, ctx) -> torch.Tensor | None:
    """[V, d_judge] judge text embeddings of the vocabulary (None without labels or a text judge)."""
    if labels is None or settings.judge == "groundtruth":
        return None
    from interpbench.vocab import encode_vocab

    judge = _judge_rep(settings, ctx)
    return encode_vocab(judge.encode_text_embedding, labels["words"], ctx.cache_dir,
                        {"model": judge.meta.fingerprint, "spec": judge.meta.spec, "what": "embedding"},
                        template=settings.template, sparse=False)


def caption_features(rep, source, settings, ctx) -> torch.Tensor | None:
    """[N, F] text features of each image's first caption (paired data), or None."""
    if not rep.meta.has_text or source.captions(0) is None:
        return None
    captions = [source.captions(i)[0] for i in range(len(source))]
    advance = ctx_task(ctx, "encode captions", len(captions))
    return encode_texts_cached(rep.encode_text_features, captions, ctx.cache_dir,
                               {"model": rep.meta.fingerprint, "spec": rep.meta.spec, "data": source.identity,
                                "what": "caption-features"}, progress=advance)


def run_suite(rep, source, cache, judge, labels, text_feats, settings, ctx):
    from interpbench.metrics.label_correlation import label_text_from_vocab
    from interpbench.metrics.suite import MetricSuite, SuiteConfig

    cfg = SuiteConfig(tau=settings.tau, n_min=settings.n_min, top_n=settings.top_n, band=tuple(settings.band),
                      top_k_words=settings.top_k_words, corr_threshold=settings.corr_threshold, seed=settings.seed)
    vjudge = vocab_judge(labels, settings, ctx)
    label_text = label_text_from_vocab(labels["labels"], vjudge) if vjudge is not None else None
    suite = MetricSuite(rep.n_features, judge.shape[1], config=cfg, concept_names=source.concept_names,
                        label_text_judge=label_text, concept_synonyms=concept_synonyms(source))
    advance = ctx_task(ctx, f"metrics {rep.meta.name}", len(source))
    for feats, t in iter_image_chunks(cache, rep.n_features):
        idx = t["index"]
        concepts = None
        if source.concept_names is not None:
            concepts = torch.stack([torch.from_numpy(source.concepts(int(i))) for i in idx]).float()
        suite.update_images(feats, judge[idx], idx, concepts=concepts)
        if text_feats is not None:
            suite.update_pairs(feats, text_feats[idx])
        if "sae_input" in t:
            suite.update_reconstruction(t["sae_input"], t["sae_recon"], feats)
        advance(len(idx))
    suite = merge_across_ranks(suite)  # distributed runs: every rank scored its own chunks
    return suite.finalize(labels=labels["labels"] if labels else None,
                          vocab=labels["words"] if labels else None, vocab_text_judge=vjudge)


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
    from interpbench.data.shapes import ATTRIBUTES, ZEROSHOT_CLASSNAMES, ZEROSHOT_TEMPLATES
    from interpbench.metrics.zeroshot import EncoderView, PassthroughTokenizer, zeroshot_accuracy

    if not hasattr(source, "world"):
        return labelled_zeroshot(rep, source, cache, ctx) if getattr(source, "classes", None) else {}
    emb = cache_rows(cache, "zs_embedding")
    text_fn = rep.encode_text_features if rep.meta.kind == "sparse-clip" else rep.encode_text_embedding
    view = EncoderView(lambda x: x, lambda texts: text_fn(list(texts)))
    out = {}
    for attribute, templates in ZEROSHOT_TEMPLATES.items():
        values = ATTRIBUTES[attribute]
        items = [(i, source.world[i].attributes[attribute]) for i in range(len(source))]
        items = [(i, values.index(v)) for i, v in items if v is not None]
        if not items:
            continue
        ds = _EmbeddingDataset(emb, items, list(ZEROSHOT_CLASSNAMES[attribute]))
        dl = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=False)
        res = zeroshot_accuracy(view, PassthroughTokenizer(), dl, ds.classes, list(templates), device=ctx.device.type)
        out[f"zeroshot_{attribute}"] = res["acc1"]
    if out:
        out["zeroshot_mean"] = sum(out.values()) / len(out)
    return out


def labelled_zeroshot(rep, source, cache, ctx) -> dict:
    """Zero-shot accuracy on a labelled source (folder:, table: with labels, clip_benchmark:)."""
    from interpbench.metrics.zeroshot import EncoderView, PassthroughTokenizer, zeroshot_accuracy

    emb = cache_rows(cache, "zs_embedding")
    text_fn = rep.encode_text_features if rep.meta.kind == "sparse-clip" else rep.encode_text_embedding
    view = EncoderView(lambda x: x, lambda texts: text_fn(list(texts)))
    ds = _EmbeddingDataset(emb, [(i, source.label(i)) for i in range(len(source))], list(source.classes))
    dl = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=False)
    res = zeroshot_accuracy(view, PassthroughTokenizer(), dl, ds.classes, list(source.templates),
                            device=ctx.device.type)
    # zeroshot_mean is the headline key leaderboards read (for Shapes, the mean over attributes).
    return {"zeroshot_acc1": res["acc1"], "zeroshot_mean_per_class_recall": res["mean_per_class_recall"],
            "zeroshot_mean": res["acc1"]}


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
