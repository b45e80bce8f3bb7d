"""The whole suite: sharded == one pass, bounded state, and documented ranges under hypothesis."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpbench.errors import ConfigError, ShapeMismatchError
from interpbench.metrics.label_correlation import label_text_from_vocab
from interpbench.metrics.labels import vocabulary_labels
from interpbench.metrics.suite import MetricSuite, SuiteConfig

NAMES = ["shape:circle", "color:red", "size:small"]


def _batches(seed=0, n=90, f=16, d=6, v=20):
    rng = np.random.default_rng(seed)
    acts = np.round(rng.exponential(1, (n, f)), 1) * (rng.random((n, f)) < 0.3)
    text = np.round(rng.exponential(1, (n, f)), 1) * (rng.random((n, f)) < 0.3)
    judge = rng.normal(size=(n, d))
    concepts = (rng.random((n, 3)) < 0.4).astype(float)
    words = rng.random((v, f)) * (rng.random((v, f)) < 0.5)
    vocab_judge = rng.normal(size=(v, d))
    return acts, text, judge, concepts, words, vocab_judge


def _suite(acts, text, judge, concepts, labels, vocab_judge, rows, cfg=None):
    s = MetricSuite(acts.shape[1], judge.shape[1], cfg or SuiteConfig(polysemanticity_max_features=None),
                    concept_names=NAMES, label_text_judge=label_text_from_vocab(labels, vocab_judge))
    for lo, hi in rows:
        sl = slice(lo, hi)
        s.update_images(acts[sl], judge[sl], np.arange(lo, hi), concepts=concepts[sl])
        s.update_pairs(acts[sl], text[sl])
        s.update_reconstruction(judge[sl], 0.9 * judge[sl], acts[sl])
    return s


def test_two_shards_merged_equal_one_pass():
    acts, text, judge, concepts, words, vj = _batches()
    labels = vocabulary_labels(words, k=5)
    vocab = [f"w{i}" for i in range(words.shape[0])]
    one = _suite(acts, text, judge, concepts, labels, vj, [(0, 90)])
    a = _suite(acts, text, judge, concepts, labels, vj, [(0, 20), (20, 41)])
    b = _suite(acts, text, judge, concepts, labels, vj, [(41, 90)])
    b.merge(a)  # shards merge in any order
    m1, p1 = one.finalize(labels, vocab, vj)
    m2, p2 = b.finalize(labels, vocab, vj)
    assert m1.keys() == m2.keys()
    for k, v in m1.items():
        assert (v is None and m2[k] is None) or m2[k] == pytest.approx(v, abs=1e-5), k
    for k in p1:
        np.testing.assert_allclose(p2[k], p1[k], atol=1e-5, err_msg=k)
    for key in ("clarity", "clarity_baseline", "active_features_pct", "l0", "clarity_topn", "polysemanticity",
                "redundancy", "multimodal_fraction", "label_corr_mean", "label_agree_exact", "fvu", "fvu_msae",
                "sae_frac_zero", "dead_latents_pct", "gt_coverage", "gt_auroc_mean", "gt_label_accuracy"):
        assert key in m1


def test_state_size_does_not_depend_on_n():
    sizes = []
    for n in (40, 400):
        acts, text, judge, concepts, words, vj = _batches(seed=1, n=n)
        s = MetricSuite(acts.shape[1], judge.shape[1])
        for lo in range(0, n, 40):
            s.update_images(acts[lo:lo + 40], judge[lo:lo + 40], np.arange(lo, lo + 40))
            s.update_pairs(acts[lo:lo + 40], text[lo:lo + 40])
        streamed = [s.clarity, s.labelcorr, s.modality]
        sizes.append(sum(t.numel() for acc in streamed for t in acc.state_dict().values()))
        assert s.topn.state_dict()["store"].shape[0] <= acts.shape[1] * s.cfg.top_n
    assert sizes[0] == sizes[1]


def test_config_and_batch_errors():
    with pytest.raises(ConfigError, match="n_min"):
        SuiteConfig(n_min=1)
    with pytest.raises(ConfigError, match="band"):
        SuiteConfig(band=(0.9, 0.1))
    acts, text, judge, concepts, *_ = _batches()
    s = MetricSuite(acts.shape[1], judge.shape[1], concept_names=NAMES)
    with pytest.raises(ShapeMismatchError, match="concepts"):
        s.update_images(acts, judge, np.arange(len(acts)))
    with pytest.raises(ShapeMismatchError, match="judge"):
        s.update_images(acts, judge[:, :3], np.arange(len(acts)), concepts=concepts)
    with pytest.raises(ShapeMismatchError, match="config"):
        s.merge(MetricSuite(acts.shape[1], judge.shape[1], SuiteConfig(tau=0.5), concept_names=NAMES))


_values = st.sampled_from([0.0, 0.0, 0.0, 1e-4, 0.001, 0.5, 1.0, 1.0, 3.0, 1e6, 1e-30])


@st.composite
def _inputs(draw):
    n = draw(st.integers(1, 12))
    f = draw(st.integers(1, 6))
    d = draw(st.integers(1, 4))
    acts = np.array(draw(st.lists(_values, min_size=n * f, max_size=n * f))).reshape(n, f)
    text = np.array(draw(st.lists(_values, min_size=n * f, max_size=n * f))).reshape(n, f)
    judge = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0, 0.5, 1e3, 1e-3]), min_size=n * d,
                                   max_size=n * d))).reshape(n, d)
    concepts = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * 3, max_size=n * 3))).reshape(n, 3)
    return acts, text, judge, concepts


def _in(value, lo, hi):
    return value is None or lo - 1e-9 <= value <= hi + 1e-9


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inputs())
def test_ranges_hold_on_arbitrary_inputs(data):
    acts, text, judge, concepts = data
    n, f = acts.shape
    words = np.vstack([acts, text])  # any non-negative word features
    vj = np.vstack([judge, judge])
    labels = vocabulary_labels(words, k=2)
    s = MetricSuite(f, judge.shape[1], SuiteConfig(polysemanticity_max_features=3), concept_names=NAMES,
                    label_text_judge=label_text_from_vocab(labels, vj))
    s.update_images(acts, judge, np.arange(n), concepts=concepts)
    s.update_pairs(acts, text)
    s.update_reconstruction(judge, judge[::-1].copy(), acts)
    m, p = s.finalize(labels, [f"w{i}" for i in range(len(words))], vj)
    for key in ("clarity", "clarity_baseline", "clarity_topn", "redundancy", "label_corr_mean",
                "label_corr_median", "label_agree_cosine", "recon_cosine"):
        assert _in(m[key], -1, 1), key
    for key in ("multimodal_fraction", "label_corr_share", "label_agree_exact", "gt_coverage", "gt_auroc_mean",
                "gt_label_accuracy", "sae_frac_zero", "modality_score_median"):
        assert _in(m[key], 0, 1), key
    for key in ("active_features_pct", "dead_latents_pct", "labelled_pct"):
        assert _in(m[key], 0, 100), key
    assert _in(m["polysemanticity"], 0, 2)  # 1 - cosine
    assert 0 <= m["l0"] <= m["l0_nonzero"] <= f
    for key, (lo, hi) in {"clarity": (-1, 1), "modality_score": (0, 1), "density": (0, 1),
                          "gt_best_auroc": (0, 1), "label_corr": (-1, 1)}.items():
        arr = p[key][~np.isnan(p[key])]
        assert ((arr >= lo - 1e-6) & (arr <= hi + 1e-6)).all(), key
    for key in ("fvu", "fvu_msae", "nmae"):
        assert m[key] is None or m[key] >= 0
