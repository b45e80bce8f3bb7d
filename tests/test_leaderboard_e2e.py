"""End to end on real trained checkpoints: evaluate -> leaderboard, trajectory, explore, search (slow)."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.results.store import read_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two open_clip model folders standing in for checkpoints (random weights: training is
    tested elsewhere), each with the training.json that `interpbench train` writes."""
    from interpbench.clipmodels import create_random, save_model_folder

    root = tmp_path_factory.mktemp("ckpts")
    for steps in (4, 8):
        folder = root / f"run{steps}"
        save_model_folder(folder, create_random("shapes-vit-tiny", seed=steps), "shapes-vit-tiny")
        (folder / "training.json").write_text(json.dumps({"config": {"steps": steps}}))
    return root


def _run(args):
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    return out.output


def test_evaluate_then_leaderboard_trajectory_explore(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPBENCH_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    common = ["--n-images", "32", "--results", str(results)]  # the default judge: ground truth
    specs = [f"openclip:local-dir:{checkpoints / f'run{s}'}" for s in (4, 8)]
    _run(["evaluate", *sum((["--model", s] for s in specs), []), *common, "--quiet", "--device", "cpu"])
    records, skipped = read_results(results)
    assert skipped == [] and sorted(r["model"]["spec"] for r in records) == sorted(specs)
    for r in records:  # the documented schema fields are present
        assert {"timing", "device", "environment", "per_feature_file", "labels_file"} <= set(r)
        assert r["settings"]["judge"] == "groundtruth"
        m, ci = r["metrics"], r["intervals"]["paired_multimodality"]
        assert ci["method"] == "bootstrap-pairs" and ci["lo"] <= m["paired_multimodality"] <= ci["hi"]
        assert set(r["controls"]["shuffled_pairs"]) == {"paired_multimodality", "multimodal_fraction",
                                                        "modality_score_median"}

    _run(["leaderboard", "--results", str(results), "--out", str(tmp_path / "lb")])
    rows = list(csv.DictReader((tmp_path / "lb" / "shapes-eval.csv").open()))
    by_spec = {r["model"]["spec"]: r["metrics"] for r in records}
    for row in rows:
        assert float(row["clarity"]) == pytest.approx(by_spec[row["model"]]["clarity"])
    assert (tmp_path / "lb" / "shapes-eval-modality-density.png").stat().st_size > 1000
    assert "Judge (Clarity, label correlation): `groundtruth`" in (tmp_path / "lb" / "shapes-eval.md").read_text()

    _run(["trajectory", "--results", str(results), "--out", str(tmp_path / "traj"), "--feature", "0"])
    (csv_path,) = (tmp_path / "traj").glob("*-metrics.csv")
    steps = [int(r["step"]) for r in csv.DictReader(csv_path.open())]
    assert steps == [4, 8]

    out = _run(["explore", "--model", specs[1], "--top", "2", *common, "--out", str(tmp_path / "ex"), "--device", "cpu"])
    assert len(list((tmp_path / "ex").rglob("feature_*.png"))) == 2
    assert "feature_" in (tmp_path / "ex" / "index.html").read_text() and "Clarity" in out
    labels = json.loads(next(results.rglob("*run8*.labels.json")).read_text())
    word = next(pairs[0][0] for _, pairs in sorted(labels.items(), key=lambda kv: int(kv[0])) if pairs)
    out = _run(["search", word, "--model", specs[1], *common, "--out", str(tmp_path / "ex"), "--device", "cpu"])
    assert "image " in out and list((tmp_path / "ex").rglob("search_*.png"))
