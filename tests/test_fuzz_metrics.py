"""Fuzzing the metric functions: random shapes, all-zero inputs, ties and extreme values.

Property: a metric returns a result inside its documented range (None / NaN exactly where
it is documented as undefined), or raises one of the package's own errors (bad input,
named). Never another exception, never an out-of-range number.
"""

import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interpbench.errors import InterpbenchError
from interpbench.metrics.clarity import clarity, clarity_topn
from interpbench.metrics.ground_truth import exact_auroc
from interpbench.metrics.labels import vocabulary_labels
from interpbench.metrics.multimodality import modality_scores
from interpbench.metrics.reconstruction import reconstruction_metrics

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = 1e-9

# Magnitudes from denormal to near float32's max, plus exact ties (a few repeated values).
magnitude = st.sampled_from([0.0, 0.0, 1e-38, 1e-30, 1e-6, 0.5, 1.0, 1.0, 2.0, 1e6, 1e30, 3e38])


@st.composite
def activations(draw, nonnegative=True, n=None, f=None):
    n = n or draw(st.integers(1, 9))
    f = f or draw(st.integers(1, 7))
    kind = draw(st.sampled_from(["zeros", "ties", "mixed", "one-hot"]))
    if kind == "zeros":
        x = np.zeros((n, f))
    elif kind == "ties":
        x = np.full((n, f), draw(magnitude))
    elif kind == "one-hot":
        x = np.eye(n, f) * draw(magnitude)
    else:
        x = np.array(draw(st.lists(magnitude, min_size=n * f, max_size=n * f))).reshape(n, f)
    if not nonnegative:
        signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n * f, max_size=n * f)))
        x = x * signs.reshape(n, f)
    return torch.tensor(x, dtype=torch.float32)


@st.composite
def embeddings(draw, n, d=None):
    d = d or draw(st.integers(1, 5))
    vals = draw(st.lists(st.sampled_from([-1e30, -1.0, -1e-20, 0.0, 1e-20, 0.5, 1.0, 1e30]), min_size=n * d,
                         max_size=n * d))
    return torch.tensor(vals, dtype=torch.float32).reshape(n, d)


def in_range(x, lo, hi) -> bool:
    """None/NaN (undefined) or within [lo, hi]."""
    if x is None:
        return True
    arr = np.asarray(x, dtype=np.float64)
    ok = np.isnan(arr) | ((arr >= lo - EPS) & (arr <= hi + EPS))
    return bool(ok.all())


def own_error_or(fn):
    """fn() or None when it raised one of the package's errors (bad input, with a message)."""
    try:
        return fn()
    except InterpbenchError as err:
        assert str(err)
        return None


@FAST
@given(st.data())
def test_clarity_in_range(data):
    feats = data.draw(activations())
    judge = data.draw(embeddings(feats.shape[0]))
    n, f = feats.shape
    r = own_error_or(lambda: clarity(feats, judge))
    if r is None:
        return
    assert in_range(r.clarity, -1, 1) and in_range(r.per_feature, -1, 1) and in_range(r.baseline, -1, 1)
    assert in_range(r.active_features_pct, 0, 100) and in_range(r.l0, 0, f) and r.n_images == n
    assert r.clarity is None or not math.isnan(r.clarity)  # "no active features" is None, never NaN
    if not (feats > 0.001).any():
        assert r.clarity is None and r.active_features_pct == 0.0
    top = own_error_or(lambda: clarity_topn(feats, judge, n=3))
    if top is not None:
        assert in_range(top[0], -1, 1) and in_range(top[1], -1, 1)


@FAST
@given(st.data())
def test_modality_scores_in_range(data):
    img = data.draw(activations())
    txt = data.draw(activations(n=img.shape[0], f=img.shape[1]))
    r = own_error_or(lambda: modality_scores(img, txt))
    if r is None:
        return
    f = img.shape[1]
    assert in_range(r.modality_score, 0, 1) and in_range(r.density, 0, 1)
    assert in_range(r.multimodal_fraction, 0, 1) and 0 <= r.n_scored <= f
    assert (r.energy_image >= 0).all() and (r.energy_text >= 0).all() and (r.bridge >= 0).all()
    both_zero = ((img == 0).all(0) & (txt == 0).all(0)).numpy()
    assert np.isnan(r.modality_score[both_zero]).all()  # 0/0 is "undefined", documented as NaN


@FAST
@given(st.data())
def test_reconstruction_metrics_in_range(data):
    z = data.draw(activations(nonnegative=False))
    x = data.draw(embeddings(z.shape[0]))
    x_hat = data.draw(embeddings(z.shape[0], d=x.shape[1]))
    r = own_error_or(lambda: reconstruction_metrics(x, x_hat, z))
    if r is None:
        return
    f = z.shape[1]
    assert in_range(r.fvu, 0, math.inf) and in_range(r.fvu_msae, 0, math.inf) and in_range(r.nmae, 0, math.inf)
    assert in_range(r.recon_cosine, -1, 1) and in_range(r.sae_frac_zero, 0, 1)
    assert in_range(r.dead_latents_pct, 0, 100) and in_range(r.sae_l0, 0, f)


@FAST
@given(st.data())
def test_exact_auroc_in_range_and_nan_only_for_constant_concepts(data):
    acts = data.draw(activations()).numpy().astype(np.float64)
    n = acts.shape[0]
    c = data.draw(st.integers(1, 4))
    concepts = np.array(data.draw(st.lists(st.booleans(), min_size=n * c, max_size=n * c))).reshape(n, c)
    out = exact_auroc(acts, concepts)
    assert out.shape == (c, acts.shape[1]) and in_range(out, 0, 1)
    constant = concepts.all(0) | (~concepts).all(0)
    assert np.isnan(out[constant]).all() and not np.isnan(out[~constant]).any()


@FAST
@given(st.data())
def test_vocabulary_labels_pick_valid_words(data):
    words = data.draw(activations(nonnegative=False))  # [V, F] word features
    k = data.draw(st.integers(1, 6))
    labels = own_error_or(lambda: vocabulary_labels(words, k=k))
    if labels is None:
        return
    v, f = words.shape
    assert labels.word_ids.shape[0] == f and labels.word_ids.shape[1] <= k
    assert ((labels.word_ids >= -1) & (labels.word_ids < v)).all()
    assert np.isnan(labels.scores[labels.word_ids < 0]).all()
