"""Metric validity (gap to control, reseed spread, GT agreement, shuffled pairs) and the
leaderboard's Controls block, on hand-written results files with known answers."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from scipy.stats import rankdata
from typer.testing import CliRunner

from interpbench.leaderboard.build import build_leaderboard
from interpbench.leaderboard.columns import COLUMNS
from interpbench.leaderboard.validity import separation_flags, validity_report
from interpbench.results.store import SCHEMA_VERSION, read_results, write_result

COL = {c.key: c for c in COLUMNS}


def _iv(lo, hi):
    return {"lo": lo, "hi": hi, "level": 0.95, "method": "bootstrap-images", "b": 200, "seed": 0}


def _record(spec, metrics, intervals, model_extra=None, controls=None):
    rec = {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0",
           "model": {"spec": spec, "name": spec, "kind": "sae", **(model_extra or {})},
           "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": {"seed": 0}},
           "settings": {"n_images": 100, "judge": "groundtruth"}, "seed": 0, "metrics": metrics,
           "intervals": intervals}
    if controls:
        rec["controls"] = controls
    return rec


RNG = np.random.default_rng(0)
GT = RNG.uniform(0.5, 1.0, 30)
CLARITY = GT + RNG.normal(scale=0.2, size=30)
CLARITY[[3, 7]] = np.nan  # inactive features are left out of the rank correlation


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "results"
    # trained: clarity 0.50 [0.46, 0.54], l0 16 [15.5, 16.5], multimodal 0.40 [0.35, 0.45]
    write_result(out, _record("sae:a", {"clarity": 0.5, "l0": 16.0, "multimodal_fraction": 0.4},
                              {"clarity": _iv(0.46, 0.54), "l0": _iv(15.5, 16.5), "multimodal_fraction": _iv(0.35, 0.45)},
                              {"recipe": "topk16", "train_seed": 0},
                              {"shuffled_pairs": {"multimodal_fraction": 0.39, "clarity": 0.2}}),
                 {"clarity": CLARITY, "gt_best_auroc": GT})
    # its untrained control: clarity 0.30 [0.27, 0.33] (separates), the same L0 (does not)
    write_result(out, _record("untrained:sae:a", {"clarity": 0.3, "l0": 16.0, "multimodal_fraction": 0.1},
                              {"clarity": _iv(0.27, 0.33), "l0": _iv(15.6, 16.4), "multimodal_fraction": _iv(0.05, 0.15)},
                              {"control": {"of": "sae:a", "kind": "untrained", "seed": 0}}))
    # two reseeds of the same recipe
    for seed, c in ((1, 0.56), (2, 0.47)):
        write_result(out, _record(f"sae:a@{seed}", {"clarity": c, "l0": 16.0}, {},
                                  {"recipe": "topk16", "train_seed": seed}))
    return out


def _metric(report, key):
    return next(m for m in report["metrics"] if m["key"] == key)


def test_gap_to_control_with_combined_interval_and_flags(folder):
    records = read_results(folder)[0]
    rep = validity_report(records)
    [g] = next(r for r in _metric(rep, "clarity")["models"] if r["model"] == "sae:a")["gaps"]
    h = math.hypot(0.04, 0.03)  # half-widths 0.04 and 0.03 combined in quadrature
    assert g["gap"] == pytest.approx(0.2) and [g["lo"], g["hi"]] == pytest.approx([0.2 - h, 0.2 + h])
    assert g["separates"] is True and g["kind"] == "untrained"
    [g] = next(r for r in _metric(rep, "l0")["models"] if r["model"] == "sae:a")["gaps"]
    assert g["gap"] == 0 and g["separates"] is False and g["verdict"] == "does not separate"
    flags = separation_flags(records)
    assert set(flags) == {"l0"} and "`sae:a` vs its untrained" in flags["l0"]
    assert flags["l0"].startswith("does not separate: the gap's 95% interval includes 0")
    assert _metric(rep, "l0")["separates"] is False and _metric(rep, "clarity")["separates"] is True
    assert _metric(rep, "l0")["verdict"] == "does not separate" and _metric(rep, "clarity")["verdict"] == "separates"


def test_metrics_a_control_copies_by_construction_are_not_compared(tmp_path):
    """Random codes keep L0 and zero-shot of their target: a 0 gap there is by design, not a flag."""
    write_result(tmp_path, _record("m", {"l0": 16.0, "zeroshot_mean": 0.9, "clarity": 0.5},
                                   {"l0": _iv(15.9, 16.1), "zeroshot_mean": _iv(0.88, 0.92), "clarity": _iv(0.49, 0.51)}))
    write_result(tmp_path, _record("ctl", {"l0": 16.0, "zeroshot_mean": 0.9, "clarity": 0.5},
                                   {"l0": _iv(15.9, 16.1), "zeroshot_mean": _iv(0.88, 0.92), "clarity": _iv(0.49, 0.51)},
                                   {"control": {"of": "m", "kind": "random-codes", "seed": 0}}))
    records = read_results(tmp_path)[0]
    rep = validity_report(records)
    for key in ("l0", "zeroshot_mean"):
        assert next(r for r in _metric(rep, key)["models"] if r["model"] == "m")["gaps"] == []
    flags = separation_flags(records)
    assert flags["clarity"].startswith("does not separate")  # the same Clarity is a real failure
    # L0 and zero-shot are not failures, but nothing shows they separate either: unknown, never bold
    assert {k: v.split(":")[0] for k, v in flags.items() if k != "clarity"} == {"l0": "unknown",
                                                                               "zeroshot_mean": "unknown"}
    assert "copy it by construction" in flags["l0"]


def test_gap_is_a_paired_bootstrap_when_both_keep_replicates_of_the_same_resamples(tmp_path):
    rng = np.random.default_rng(1)
    shared = rng.normal(scale=0.05, size=200)  # the image resamples move both models alike
    t, c = 0.5 + shared, 0.48 + shared + rng.normal(scale=0.002, size=200)
    t[5] = np.nan  # an undefined replicate drops its pair

    def iv(v):
        return {**_iv(float(np.nanquantile(v, 0.025)), float(np.nanquantile(v, 0.975))),
                "replicates": [None if np.isnan(x) else float(x) for x in v]}

    write_result(tmp_path, _record("m", {"clarity": 0.5}, {"clarity": iv(t)}))
    write_result(tmp_path, _record("ctl", {"clarity": 0.48}, {"clarity": iv(c)},
                                   {"control": {"of": "m", "kind": "random-codes", "seed": 0}}))
    rep = validity_report(read_results(tmp_path)[0])
    [g] = next(r for r in _metric(rep, "clarity")["models"] if r["model"] == "m")["gaps"]
    d = (t - c)[np.isfinite(t)]
    assert g["method"] == "paired bootstrap" and g["gap"] == pytest.approx(0.02)
    assert [g["lo"], g["hi"]] == pytest.approx(list(np.quantile(d, [0.025, 0.975])), abs=1e-12)
    assert g["separates"] is True  # combined in quadrature, +-0.14 would have included 0


def test_reseed_spread_is_the_sample_sd_over_seeds(folder):
    [s] = _metric(validity_report(read_results(folder)[0]), "clarity")["reseed"]
    assert s["recipe"] == "topk16" and s["seeds"] == [0, 1, 2]
    assert s["sd"] == pytest.approx(np.std([0.5, 0.56, 0.47], ddof=1)) and (s["min"], s["max"]) == (0.47, 0.56)


def test_ground_truth_agreement_is_spearman_over_defined_features(folder):
    row = next(r for r in _metric(validity_report(read_results(folder)[0]), "clarity")["models"] if r["model"] == "sae:a")
    ok = np.isfinite(CLARITY)
    # independent: Pearson correlation of average ranks (float32 as stored in the sidecar)
    x, y = CLARITY[ok].astype(np.float32), GT[ok].astype(np.float32)
    expect = np.corrcoef(rankdata(x), rankdata(y))[0, 1]
    assert row["gt_agreement"]["rho"] == pytest.approx(expect, abs=1e-12) and row["gt_agreement"]["n_features"] == 28


def test_shuffled_pairs_moves_only_outside_the_interval(folder):
    rep = validity_report(read_results(folder)[0])
    mm = next(r for r in _metric(rep, "multimodal_fraction")["models"] if r["model"] == "sae:a")["shuffled_pairs"]
    assert mm == {"value": 0.4, "shuffled": 0.39, "moves": False}  # 0.39 is inside [0.35, 0.45]
    cl = next(r for r in _metric(rep, "clarity")["models"] if r["model"] == "sae:a")["shuffled_pairs"]
    assert cl["moves"] is True


def test_leaderboard_puts_controls_apart_and_marks_unseparated_columns(folder, tmp_path):
    build_leaderboard(folder, tmp_path / "lb", with_plots=False)
    page = (tmp_path / "lb" / "shapes-eval.md").read_text()
    main, controls = page.split("## Controls")
    assert "untrained:sae:a" not in main and "`untrained:sae:a`" in controls
    assert "untrained of sae:a (seed 0)" in controls and "**" not in controls.split("[^")[0]
    l0_note = next(line for line in page.splitlines() if line.startswith("[^l0]:"))
    assert "**Does not separate trained from random:**" in l0_note
    clarity_note = next(line for line in page.splitlines() if line.startswith("[^clarity]:"))
    assert "**Separates** every ranked model" in clarity_note
    rows = list(csv.DictReader(io.StringIO((tmp_path / "lb" / "shapes-eval.csv").read_text())))
    ctrl = next(r for r in rows if r["model"] == "untrained:sae:a")
    assert ctrl["rank"] == "" and ctrl["control"] == "untrained of sae:a (seed 0)"
    assert (float(ctrl["clarity_lo"]), float(ctrl["clarity_hi"])) == (0.27, 0.33)
    # the other seeds of sae:a's recipe are in the reseed view, not ranked; sae:a (which has a
    # control) is the recipe's contestant
    assert [(r["model"], r["rank"]) for r in rows if not r["control"]] == [("sae:a", "1")]
    assert "2 reseed runs (recipe `topk16`) are in the reseed view, not ranked." in page
    assert (tmp_path / "lb" / "shapes-eval-reseed.md").is_file()


def test_a_column_that_does_not_separate_loses_its_bold(folder):
    from interpbench.leaderboard.build import _ranked
    from interpbench.leaderboard.records import select
    from interpbench.leaderboard.tables import markdown_table
    from interpbench.leaderboard.verdicts import NO_SEPARATION, SEPARATES, UNKNOWN

    records = read_results(folder)[0]
    for r in records:  # make the reseeds contestants of their own, clear of sae:a on Clarity
        r["model"].pop("recipe", None)
    rows, _, verdicts, rank = _ranked(select(records), None, None)
    best = next(r for r in rows if r["model"] == "sae:a@1")
    best["clarity_lo"], best["clarity_hi"] = 0.58, 0.6
    assert verdicts["clarity"].verdict == UNKNOWN  # the reseeds have no control
    assert "**0.560" not in markdown_table("t", rows, ("model",), verdicts=verdicts, rank=rank)
    verdicts["clarity"].verdict = SEPARATES
    assert "**0.560 ± 0.010**" in markdown_table("t", rows, ("model",), verdicts=verdicts, rank=rank)
    verdicts["clarity"].verdict = NO_SEPARATION
    assert "**0.560" not in markdown_table("t", rows, ("model",), verdicts=verdicts, rank=rank)


def test_cli_writes_markdown_and_json(folder, tmp_path):
    from interpbench.cli.main import app

    out = tmp_path / "v" / "validity.md"
    out.parent.mkdir()
    res = CliRunner().invoke(app, ["validate-metrics", "--results", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.with_suffix(".json").read_text())
    assert {m["key"] for m in data["metrics"]} == set(COL)
    text = out.read_text()
    assert "| Clarity | separates | `sae:a` | 0.500 [0.460, 0.540] | untrained: +0.200 [0.150, 0.250] |" in text
    assert "- **Does not separate trained from random (the gap's interval includes 0)**: L0 (" in text
    assert "L0: does not separate: the gap's 95% interval includes 0" in res.output
