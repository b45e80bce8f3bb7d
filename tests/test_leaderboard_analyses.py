"""The analyses' headline numbers on the leaderboard: joined from analysis records in the results folder."""

from __future__ import annotations

import csv
import io

import pytest

from interpbench.analysis.run import write_analysis
from interpbench.leaderboard.build import build_leaderboard, load_records
from interpbench.leaderboard.columns import ANALYSIS_COLUMNS, COLUMNS
from interpbench.metrics.bootstrap import interval_record
from interpbench.results.store import SCHEMA_VERSION, write_result

IDENTITY = {"source": "shapes", "length": 100, "seed": 0}


def evaluation(spec, kind, clarity, identity=IDENTITY):
    return {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0",
            "model": {"spec": spec, "name": spec, "kind": kind},
            "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": identity},
            "settings": {"n_images": identity["length"], "judge": "groundtruth"}, "seed": 0,
            "metrics": {"clarity": clarity, "l0": 5.0}, "intervals": {"clarity": interval_record((0.1, 0.9), "x")}}


def analysis(spec, kind, steer, n=100, dup=0.25):
    metrics = {"steerability": steer, "ablation_ratio": 2.0, "ablation_win_rate": 0.8, "cluster_ari_mean": 0.31,
               "cluster_nmi_mean": 0.42, "retrieval_p_at_k_codes": 0.777, "retrieval_p_at_k_baseline": 0.7,
               "duplicate_share": dup}
    return {"schema_version": SCHEMA_VERSION, "record_type": "analysis", "interpbench_version": "0.1.0",
            "model": {"spec": spec, "name": spec, "kind": kind},
            "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": {**IDENTITY, "length": n}},
            "settings": {"n_images": n, "analysis": True}, "seed": 0, "metrics": metrics,
            "intervals": {"steerability": interval_record((steer - 0.05, steer + 0.05), "bootstrap-images")},
            "analyses": {}}


def _cells(text):
    """{model: {column header: cell}} of the full table (the first table after "## Full table")."""
    text = text.split("## Full table")[-1].split("## Controls")[0]
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    head = [h.strip() for h in lines[0].strip("|").split(" | ")]
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[1:]]
    return {r[1].strip("`"): dict(zip(head, r, strict=True)) for r in rows}, head


def _col(head, key):
    return next(h for h in head if h.endswith(f"[^{key}]"))


def _value(cell):
    """The number of a cell without bold or an interval's "± half-width"."""
    return cell.replace("**", "").split("±")[0].strip()


def test_analysis_columns_show_the_stored_numbers_with_footnotes(tmp_path):
    res = tmp_path / "results"
    write_result(res, evaluation("shapes:sae", "sae", 0.6))
    write_result(res, evaluation("shapes:dense", "dense", 0.5))
    write_analysis(res, analysis("shapes:sae", "sae", 0.8123, dup=0.0))
    report = build_leaderboard(res, tmp_path / "lb", with_plots=False)
    assert report.skipped == [] and report.n_records == 2  # the analysis joined a row, it is not a row
    text = (tmp_path / "lb" / "shapes-eval.md").read_text()
    cells, head = _cells(text)
    assert set(cells) == {"shapes:sae", "shapes:dense"}
    sae, dense = cells["shapes:sae"], cells["shapes:dense"]
    expected = {"steerability": "0.812", "ablation_win_rate": "0.800", "cluster_ari_mean": "0.310",
                "cluster_nmi_mean": "0.420", "retrieval_p_at_k_codes": "0.777", "duplicate_share": "0.000"}
    assert {c.key for c in ANALYSIS_COLUMNS} == set(expected)
    for key, value in expected.items():
        assert _value(sae[_col(head, key)]) == value
        assert dense[_col(head, key)] == "–"  # no analysis for this model
        col = next(c for c in COLUMNS if c.key == key)
        assert f"[^{key}]: {col.title}: " in text and f"(../docs/metrics.md#{col.anchor})" in text
        assert "interpbench analyze run" in col.note
    assert _value(sae[_col(head, "clarity")]) == "0.600"  # the evaluation's own numbers are untouched
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO((tmp_path / "lb" / "shapes-eval.csv").read_text()))}
    assert float(rows["shapes:sae"]["steerability"]) == 0.8123 and rows["shapes:dense"]["steerability"] == ""


def test_joined_record_carries_the_analysis_intervals(tmp_path):
    res = tmp_path / "results"
    write_result(res, evaluation("shapes:sae", "sae", 0.6))
    write_analysis(res, analysis("shapes:sae", "sae", 0.5))
    [rec], skipped = load_records(res)
    assert skipped == []
    assert rec["intervals"]["steerability"]["lo"] == pytest.approx(0.45)
    assert rec["intervals"]["clarity"]["hi"] == 0.9  # the evaluation's own intervals stay
    assert rec["metrics"]["cluster_ari_mean"] == 0.31 and rec["metrics"]["clarity"] == 0.6
    assert rec["analysis"]["same_images"] is True and rec["analysis"]["path"].endswith(".json")


def test_results_without_analyses_still_render(tmp_path):
    res = tmp_path / "results"
    write_result(res, evaluation("shapes:sae", "sae", 0.6))
    write_result(res, evaluation("shapes:dense", "dense", 0.5))
    build_leaderboard(res, tmp_path / "lb", with_plots=False)
    for page in ("shapes-eval.md", "overall.md"):
        text = (tmp_path / "lb" / page).read_text()
        assert "Analysis columns:" not in text
        cells, head = _cells(text)
        assert {cells[m][_col(head, c.key)] for m in cells for c in ANALYSIS_COLUMNS} == {"–"}


def test_same_images_win_and_the_other_analysis_is_named(tmp_path):
    res = tmp_path / "results"
    write_result(res, evaluation("shapes:sae", "sae", 0.6))
    write_analysis(res, analysis("shapes:sae", "sae", 0.1, n=100))  # the evaluation's images
    other = write_analysis(res, analysis("shapes:sae", "sae", 0.9, n=500))  # more images, other identity
    [rec], skipped = load_records(res)
    assert rec["metrics"]["steerability"] == 0.1
    assert [p for p, _ in skipped] == [other] and "another analysis" in skipped[0][1]


def test_most_images_win_when_none_matches_and_lone_analyses_get_a_row(tmp_path):
    res = tmp_path / "results"
    write_result(res, evaluation("shapes:sae", "sae", 0.6, identity={**IDENTITY, "length": 2000}))
    write_analysis(res, analysis("shapes:sae", "sae", 0.1, n=100))
    write_analysis(res, analysis("shapes:sae", "sae", 0.9, n=500))
    write_analysis(res, analysis("shapes:sparse", "sparse-clip", 0.3))  # no evaluation of this model
    records, skipped = load_records(res)
    by = {r["model"]["spec"]: r for r in records}
    assert by["shapes:sae"]["metrics"]["steerability"] == 0.9 and by["shapes:sae"]["analysis"]["same_images"] is False
    assert by["shapes:sparse"]["metrics"]["steerability"] == 0.3 and len(skipped) == 1
    build_leaderboard(res, tmp_path / "lb", with_plots=False)
    cells, head = _cells((tmp_path / "lb" / "shapes-eval.md").read_text())
    assert _value(cells["shapes:sparse"][_col(head, "steerability")]) == "0.300"
    assert cells["shapes:sparse"][_col(head, "clarity")] == "–"
    # best of two, intervals apart, but no control has the analysis: never bold, and the footnote says why
    assert cells["shapes:sae"][_col(head, "steerability")].startswith("0.900")
    note = next(ln for ln in (tmp_path / "lb" / "shapes-eval.md").read_text().splitlines()
                if ln.startswith("[^steerability]:"))
    assert "**Verdict unknown:** no control of `shapes:sae`, `shapes:sparse` was evaluated" in note
    intro = (tmp_path / "lb" / "shapes-eval.md").read_text()
    assert "on other images than the evaluation for `shapes:sae` (500 images)." in intro
