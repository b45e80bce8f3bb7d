"""Numerical guards, through the real extraction path: NaN/inf and broken non-negativity
promises are caught where they enter and name the first offending item; an all-zeros
representation finishes with explicit "no active features" results, not a 0/0.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from test_resume import ToyImages, ToyRep  # the test representation and source

from interpbench.errors import EmptyDatasetError, NumericalError
from interpbench.extraction.extract import extract_images, iter_image_chunks
from interpbench.metrics.suite import MetricSuite


def extract(rep, source, root):
    return extract_images(rep, source, root, batch_size=4, chunk_size=8, num_workers=0)


@pytest.mark.parametrize("output,value", [("features", math.nan), ("features", math.inf),
                                          ("embedding", -math.inf), ("embedding", math.nan)])
def test_non_finite_output_names_the_first_bad_image(output, value, tmp_path):
    source = ToyImages(24, black=(13, 21))  # images 13 and 21 make the representation misbehave
    with pytest.raises(NumericalError) as err:
        extract(ToyRep(poison=(output, value)), source, tmp_path)
    msg = str(err.value)
    assert output in msg and "toy: image" in msg and "at item 13" in msg and "NaN or inf" in msg
    assert sorted(p.name for p in tmp_path.rglob("chunk_*")) == ["chunk_000000.safetensors"]  # items 0..7 kept


def test_negative_activation_breaks_the_promise_and_names_the_item(tmp_path):
    with pytest.raises(NumericalError) as err:
        extract(ToyRep(poison=("features", -0.25)), ToyImages(24, black=(6,)), tmp_path)
    msg = str(err.value)
    assert "negative activation -0.25 at item 6" in msg and "promises non-negative" in msg


def test_negative_values_are_fine_when_nothing_was_promised(tmp_path):
    cache = extract(ToyRep(poison=("features", -0.25), nonnegative=False), ToyImages(24, black=(6,)), tmp_path)
    feats = torch.cat([f for f, _ in iter_image_chunks(cache, 24)])
    assert (feats[6] == -0.25).all()


def test_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(EmptyDatasetError, match="no items"):
        extract(ToyRep(), ToyImages(0), tmp_path)


def test_all_zero_representation_gives_explicit_no_active_features(tmp_path):
    cache = extract(ToyRep(zeros=True), ToyImages(24), tmp_path)
    suite = MetricSuite(24, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 anywhere would warn (numpy) or give NaN (torch)
        for feats, t in iter_image_chunks(cache, 24):
            assert int(t["col"].numel()) == 0  # nothing stored for an all-zero chunk
            suite.update_images(feats, t["embedding"], t["index"])
            suite.update_pairs(feats, feats)
        metrics, per = suite.finalize()
    assert metrics["active_features_pct"] == 0.0 and metrics["l0"] == 0.0 and metrics["n_images"] == 24
    for name in ("clarity", "clarity_topn", "polysemanticity", "redundancy", "multimodal_fraction"):
        assert metrics[name] is None, name  # "not applicable", never NaN or a crash
    assert not any(isinstance(v, float) and math.isnan(v) for v in metrics.values())
    assert np.isnan(per["clarity"]).all()  # per feature: explicitly undefined
    baseline = torch.nn.functional.normalize(torch.cat([t["embedding"] for _, t in iter_image_chunks(cache, 24)]))
    gram = baseline @ baseline.T
    assert metrics["clarity_baseline"] == pytest.approx(float((gram.sum() - 24) / (24 * 23)), abs=1e-5)


def test_non_finite_judge_input_to_the_metrics_is_named():
    suite = MetricSuite(4, 3)
    judge = torch.ones(5, 3)
    judge[3, 1] = math.nan
    with pytest.raises(NumericalError, match="row 3"):
        suite.update_images(torch.ones(5, 4), judge, torch.arange(5))


def test_tau_is_compared_in_the_inputs_precision_not_after_a_float32_cast():
    from interpbench.metrics.clarity import clarity

    judge = np.eye(4)
    # float64 values that all round to float32(0.001): only the one above tau counts
    acts = np.zeros((4, 3))
    acts[:2, 0] = 0.0010000001  # > tau
    acts[:2, 1] = 0.001  # == tau: not above
    acts[:2, 2] = 0.00099999999999  # < tau, rounds up to float32(0.001) > tau
    r = clarity(acts, judge, tau=0.001)
    assert r.counts.tolist() == [2, 0, 0]
    assert r.l0 == pytest.approx(2 / 4)
    # float32 input: its values are exact, so the comparison is exact too
    f32 = np.zeros((4, 1), dtype=np.float32)
    f32[:2, 0] = np.float32(0.001)  # 0.0010000000474974513 > 0.001
    assert clarity(f32, judge, tau=0.001).counts.tolist() == [2]
    assert clarity(f32, judge, tau=float(np.float32(0.001))).counts.tolist() == [0]


@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_finite_value_beyond_float32_is_not_called_nan_or_inf(as_tensor):
    from interpbench.metrics.inputs import to_entries

    x = np.zeros((3, 2))
    x[2, 1] = 1e39
    x = torch.tensor(x) if as_tensor else x
    with pytest.raises(NumericalError) as err:
        to_entries(x, "features", 2)
    msg = str(err.value)
    assert "row 2" in msg and "1e+39" in msg and "float32" in msg and "NaN or inf" not in msg
    with pytest.raises(NumericalError, match="NaN or inf"):
        to_entries(np.array([[0.0, np.inf]]), "features", 2)
