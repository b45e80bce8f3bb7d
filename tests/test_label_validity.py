"""Label validity per route (leaderboard/label_validity.py) on records with known numbers: the gap
to each control, its paired-bootstrap interval (percentiles of replicate differences, computed
here with numpy) and the direction of the verdict; and its section in `validate-metrics`."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.leaderboard.label_validity import label_validity, markdown_section
from interpbench.results.store import write_result

RNG = np.random.default_rng(0)
BASE = RNG.normal(0, 0.01, 50)  # shared replicate noise: the same image resamples in both results


def _iv(value, shift):
    reps = (value + BASE + shift * RNG.normal(0, 0.002, 50)).round(6).tolist()
    return {"lo": min(reps), "hi": max(reps), "level": 0.95, "method": "bootstrap-images", "b": 50, "seed": 0,
            "replicates": reps}


def _record(spec, routes, control=None, agreement=None):
    model = {"spec": spec, "name": spec, "kind": "sae"}
    if control:
        model["control"] = {"of": "sae:trained", "kind": control, "seed": 0}
    lr = {"primary": next(iter(routes)), "agreement": agreement or {}, "unavailable": {},
          "routes": {r: {"metrics": {k: v for k, v in m.items()}, "intervals": {k: _iv(v, 1) for k, v in m.items()}}
                     for r, m in routes.items()}}
    return {"schema_version": 1, "interpbench_version": "t", "model": model,
            "dataset": {"name": "shapes-eval", "identity": {}}, "settings": {"n_images": 10, "judge": "groundtruth"},
            "seed": 0, "metrics": {}, "label_routes": lr}


def _records():
    trained = _record("sae:trained", {"decoder": {"gt_label_accuracy": 0.8, "label_corr_mean": 0.30,
                                                  "cf_selectivity": 0.10},
                                      "images": {"gt_label_accuracy": 0.9, "label_corr_mean": 0.20,
                                                 "cf_selectivity": 0.05}},
                      agreement={"decoder~images": {"share": 0.6, "n": 40}})
    decoder = _record("control:random-decoder@sae:trained",
                      {"decoder": {"gt_label_accuracy": 0.2, "label_corr_mean": 0.40, "cf_selectivity": 0.1001},
                       "images": {"gt_label_accuracy": 0.5, "label_corr_mean": 0.10, "cf_selectivity": 0.0}},
                      control="random-decoder")
    codes = _record("control:random-codes@sae:trained", {"images": {"gt_label_accuracy": 0.4, "label_corr_mean": 0.05,
                                                                     "cf_selectivity": 0.0}}, control="random-codes")
    return [trained, decoder, codes]


def test_gaps_have_paired_intervals_and_a_direction():
    records = _records()
    report = label_validity(records)
    rows = {(r["model"], r["route"]): r for r in report["rows"]}
    assert set(rows) == {("sae:trained", "decoder"), ("sae:trained", "images"),
                         ("control:random-decoder@sae:trained", "decoder"),
                         ("control:random-decoder@sae:trained", "images"), ("control:random-codes@sae:trained", "images")}
    gaps = {(g["control"], g["metric"]): g for g in rows[("sae:trained", "decoder")]["gaps"]}
    assert set(gaps) == {("random-decoder", k) for k in ("gt_label_accuracy", "label_corr_mean", "cf_selectivity")}
    t, c = (r["label_routes"]["routes"]["decoder"]["intervals"]["gt_label_accuracy"]["replicates"] for r in records[:2])
    lo, hi = np.quantile(np.subtract(t, c), [0.025, 0.975])
    g = gaps[("random-decoder", "gt_label_accuracy")]
    assert np.isclose(g["gap"], 0.6) and np.isclose(g["lo"], lo) and np.isclose(g["hi"], hi)
    assert g["verdict"] == "beats"
    assert gaps[("random-decoder", "label_corr_mean")]["verdict"] == "control better"  # higher is better
    assert gaps[("random-decoder", "cf_selectivity")]["verdict"] == "no separation"
    images = {(g["control"], g["metric"]) for g in rows[("sae:trained", "images")]["gaps"]}
    assert ("random-codes", "gt_label_accuracy") in images and ("random-decoder", "gt_label_accuracy") in images
    assert rows[("sae:trained", "decoder")]["agreement"] == {"decoder~images": {"share": 0.6, "n": 40}}
    assert report["summary"]["decoder"]["label_corr_mean"] == {"control better": 1}
    text = markdown_section(report)
    assert "| shapes-eval | `sae:trained` | decoder * | 0.800 [" in text
    assert "random-decoder GT label acc. +0.600" in text and "(control)" in text


def test_shuffled_labels_gap_every_row_including_controls():
    records = _records()
    for r, shift in zip(records, (-0.25, 0.0, 0.0), strict=True):  # trained: shuffled labels 0.25 lower
        lr = r["label_routes"]
        lr["shuffled"] = {route: {"metrics": {k: v + shift for k, v in info["metrics"].items()},
                                  "intervals": {k: {**iv, "replicates": [x + shift for x in iv["replicates"]]}
                                                for k, iv in info["intervals"].items()}}
                          for route, info in lr["routes"].items()}
    report = label_validity(records)
    rows = {(r["model"], r["route"]): r for r in report["rows"]}
    g = {x["metric"]: x for x in rows[("sae:trained", "decoder")]["shuffled_gaps"]}
    assert np.isclose(g["label_corr_mean"]["gap"], 0.25) and g["label_corr_mean"]["verdict"] == "beats"
    assert np.isclose(g["label_corr_mean"]["lo"], 0.25) and np.isclose(g["label_corr_mean"]["hi"], 0.25)
    codes = rows[("control:random-codes@sae:trained", "images")]["shuffled_gaps"]
    assert {x["verdict"] for x in codes} == {"no separation"}  # a gap of exactly 0
    assert report["summary_shuffled"]["decoder"]["label_corr_mean"] == {"beats": 1, "no separation": 1}  # + the control
    assert "Verdicts against shuffled labels" in markdown_section(report)


def test_validate_metrics_appends_the_section(tmp_path):
    folder = tmp_path / "res"
    for r in _records():
        write_result(folder, r)
    out = tmp_path / "report" / "validity.md"
    res = CliRunner().invoke(app, ["validate-metrics", "--results", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "## Label validity (every labelling route)" in out.read_text()
    data = json.loads(out.with_suffix(".json").read_text())
    assert len(data["label_validity"]["rows"]) == 5 and "metrics" in data  # the metric report is still there
