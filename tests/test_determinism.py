"""The same `interpbench evaluate` command on the same inputs gives the same results JSON
(timing fields aside) on the CPU, from a fresh cache and from a resumed one, and every
result records its seed."""

import json
import math

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.results.store import ROUTE_LABELS


def strip_timing(obj):
    """The record without wall-clock fields (the only ones allowed to differ)."""
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items() if k not in ("timing", "timings") and "time" not in k}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def evaluate(model, out, cache, *extra):
    args = ["evaluate", "--model", model, "--quiet", "--offline", "--device", "cpu", "--results", str(out),
            "--cache-dir", str(cache), *extra]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [path] = [p for p in out.rglob("*.json") if not ROUTE_LABELS.search(p.name)]
    record = json.loads(path.read_text())
    feats = load_file(str(path.parent / record["per_feature_file"]))
    labels = (path.parent / record["labels_file"]).read_text() if record.get("labels_file") else None
    return record, feats, labels


def assert_same_run(a, b):
    (rec_a, feats_a, labels_a), (rec_b, feats_b, labels_b) = a, b
    assert strip_timing(rec_a) == strip_timing(rec_b)  # exact, every metric to the last bit
    assert feats_a.keys() == feats_b.keys()
    for k in feats_a:
        assert np.array_equal(feats_a[k], feats_b[k], equal_nan=True), k
    assert labels_a == labels_b


def check_seed_recorded(record, seed):
    assert record["seed"] == seed and record["settings"]["seed"] == seed
    assert record["dataset"]["identity"]["seed"] == seed


def test_random_model_is_deterministic_and_records_its_seed(tmp_path):
    opts = ("--n-images", "16", "--judge", "groundtruth", "--no-zeroshot", "--seed", "3")
    a = evaluate("openclip:shapes-vit-tiny/random", tmp_path / "r1", tmp_path / "c1", *opts)
    b = evaluate("openclip:shapes-vit-tiny/random", tmp_path / "r2", tmp_path / "c2", *opts)
    assert_same_run(a, b)
    check_seed_recorded(a[0], 3)
    assert {(iv["b"], iv["seed"]) for iv in a[0]["intervals"].values()} == {(200, 3)}  # seeded intervals, B recorded
    assert not any(isinstance(v, float) and math.isnan(v) for v in a[0]["metrics"].values())


@pytest.fixture(scope="session")
def trained_clip(tmp_path_factory):
    from interpbench.training.clip import ClipTrainCfg, train_clip

    out = tmp_path_factory.mktemp("clip") / "dense"
    train_clip(ClipTrainCfg(steps=20, batch_size=16, warmup=5), out_dir=out, log_every=0)
    return out


@pytest.mark.slow  # trains a small CLIP and runs the full evaluation three times (~1 min)
def test_trained_model_evaluation_is_identical_fresh_and_resumed(trained_clip, tmp_path):
    spec = f"openclip:local-dir:{trained_clip}"
    opts = ("--n-images", "64")  # ground-truth judge: a model may not judge itself
    first = evaluate(spec, tmp_path / "r1", tmp_path / "c1", *opts)
    fresh = evaluate(spec, tmp_path / "r2", tmp_path / "c2", *opts)  # recomputed from nothing
    cached = evaluate(spec, tmp_path / "r3", tmp_path / "c1", *opts)  # every activation read back from cache
    assert_same_run(first, fresh)
    assert_same_run(first, cached)
    check_seed_recorded(first[0], 0)
    assert "zeroshot_mean" in first[0]["metrics"]
