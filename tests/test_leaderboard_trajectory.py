"""Checkpoint trajectories: steps from names and training.json, metric series, top-word tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from interpbench.errors import BadSpecError
from interpbench.leaderboard.trajectory import (
    build_trajectory,
    collect_series,
    expand_model_globs,
    metrics_frame,
    plot_metrics,
    series_name,
    training_step,
)
from interpbench.results.store import SCHEMA_VERSION, read_results, write_result

STEPS = (100, 20, 300)  # written out of order on purpose
WORDS = {20: ["red", "blue"], 100: ["red", "square"], 300: ["square", "big"]}


def record(spec, step):
    return {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0",
            "model": {"spec": spec, "name": spec, "kind": "sparse-clip"},
            "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": {}},
            "settings": {"n_images": 50}, "seed": 0,
            "metrics": {"clarity": 0.5 + step / 1000, "l0": 100.0 / step}, "device": "cpu"}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    for step in STEPS:
        spec = f"sparseclip:{tmp_path}/ckpts/step_{step}"
        clarity = np.full(6, 0.1)
        clarity[3] = 0.9  # feature 3 is the clearest at the last step
        labels = {"3": [[w, 1.0] for w in WORDS[step]], "0": [["dot", 0.2]]}
        write_result(folder, record(spec, step), {"clarity": clarity}, labels)
    write_result(folder, record("shapes:dense", 1), None, None)  # not a checkpoint: ignored
    return folder


def test_steps_from_name_and_training_json(tmp_path):
    assert training_step("openclip:local-dir:/x/run/step-400") == 400
    assert training_step("sae:own:/x/ckpt_7.safetensors@shapes:dense") == 7
    assert training_step("shapes:sparse") is None
    folder = tmp_path / "final"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps({"config": {"steps": 1200}}))
    assert training_step(f"sparseclip:{folder}") == 1200
    assert series_name("sparseclip:/x/step_400") == "sparseclip:/x/step_*"
    assert series_name(f"sparseclip:{folder}") == f"sparseclip:{tmp_path}/*"


def test_glob_expands_in_step_order(tmp_path):
    for step in (10, 2, 100):
        (tmp_path / f"step{step}").mkdir()
    specs = expand_model_globs([f"sparseclip:{tmp_path}/step*", "shapes:dense"])
    assert specs == [f"sparseclip:{tmp_path}/step{s}" for s in (2, 10, 100)] + ["shapes:dense"]
    with pytest.raises(BadSpecError, match="matches no folder"):
        expand_model_globs([f"sparseclip:{tmp_path}/nothing*"])


def test_series_metrics_and_words(results, tmp_path):
    groups = collect_series(read_results(results)[0])
    assert len(groups) == 1
    (points,) = groups.values()
    assert [s for s, _ in points] == sorted(STEPS)
    data = metrics_frame(points)
    np.testing.assert_allclose(data["clarity"], [0.5 + s / 1000 for s in sorted(STEPS)])
    fig, _ = plot_metrics(data, "t")
    assert len(fig.axes) == 2  # only Clarity and L0 have values
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), sorted(STEPS))
    report = build_trajectory(results, tmp_path / "out")
    assert report.n_records == 3
    page = next(p for p in report.written if p.suffix == ".md").read_text()
    # default: the 5 clearest at the last step, ties to the lower index
    assert "| step | feature 3 | feature 0 | feature 1 | feature 2 | feature 4 |" in page
    for step in sorted(STEPS):
        assert f"| {step} | {', '.join(WORDS[step])} |" in page
    csv_path = next(p for p in report.written if p.suffix == ".csv")
    assert list(pd.read_csv(csv_path)["step"]) == sorted(STEPS)


def test_chosen_features_and_no_checkpoints(results, tmp_path):
    report = build_trajectory(results, tmp_path / "out", features=[0, 3])
    page = next(p for p in report.written if p.suffix == ".md").read_text()
    assert "| step | feature 0 | feature 3 |" in page and "| 20 | dot | red, blue |" in page
    only = tmp_path / "only"
    write_result(only, record("shapes:dense", 1))
    with pytest.raises(BadSpecError, match="no results of checkpoints"):
        build_trajectory(only, tmp_path / "o2")
