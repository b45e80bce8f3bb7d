"""Verdicts that follow the evidence, on hand-written results with known answers: the
direction of separation, the rank rule (and the page without a single rank), the headline
table's size, one row per contestant, decomposition records kept out, unknown verdicts that
say how to get the controls, and `evaluate --controls`' spec list."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interpbench.errors import BadSpecError
from interpbench.leaderboard.build import _ranked, build_leaderboard, load_records
from interpbench.leaderboard.columns import COLUMNS, MAX_HEADLINE_METRICS
from interpbench.leaderboard.records import select
from interpbench.leaderboard.tables import markdown_table
from interpbench.leaderboard.validity import markdown_report, validity_report
from interpbench.leaderboard.verdicts import (
    CONTROL_BETTER,
    NO_SEPARATION,
    SEPARATES,
    UNKNOWN,
    gap,
    gap_verdict,
)
from interpbench.results.store import SCHEMA_VERSION, read_results, write_result
from interpbench.specs import with_controls

COL = {c.key: c for c in COLUMNS}
KIND_OF = {"shapes:dense": "dense", "shapes:sparse": "sparse-clip", "shapes:sae": "sae"}


def _iv(v, h):
    return {"lo": v - h, "hi": v + h, "level": 0.95, "method": "bootstrap-images", "b": 200, "seed": 0}


def rec(spec, metrics, half=0.01, kind=None, control=None, fingerprint=None, **model):
    """A results record whose every metric has the interval value ± half."""
    m = {"spec": spec, "name": spec, "kind": kind or KIND_OF.get(spec, "sae"), **model}
    if control:
        m["control"] = {"of": control[1], "kind": control[0], "seed": 0}
    if fingerprint:
        m["fingerprint"] = fingerprint
    return {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0", "model": m,
            "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": {"seed": 0}},
            "settings": {"n_images": 100, "judge": "groundtruth", "dataset": "shapes", "seed": 0},
            "seed": 0, "metrics": metrics, "intervals": {k: _iv(v, half) for k, v in metrics.items()},
            "timing": {"wall_time_s": 1.0}}


def write(folder, *records):
    for r in records:
        write_result(folder, r)
    return folder


# --- 1. direction-aware separation -------------------------------------------------------

@pytest.mark.parametrize(("better", "lo", "hi", "expected"), [
    ("max", 0.01, 0.05, SEPARATES), ("max", -0.05, -0.01, CONTROL_BETTER), ("max", -0.01, 0.02, NO_SEPARATION),
    ("min", -0.05, -0.01, SEPARATES), ("min", 0.01, 0.05, CONTROL_BETTER), ("min", -0.01, 0.02, NO_SEPARATION),
    ("max", None, None, UNKNOWN), (None, 0.01, 0.05, None)])
def test_gap_verdict_follows_the_columns_direction(better, lo, hi, expected):
    assert gap_verdict(better, 0.03 if lo is None else (lo + hi) / 2, lo, hi) == expected


def test_a_better_control_is_its_own_verdict_not_separation():
    """shapes:sae's paired multimodality 0.141 vs its random codes 0.177 (the issue's case, half-widths
    0.005 and 0.006): gap -0.036 +- hypot(0.005, 0.006) lies below 0 -> "control better"; FVU (lower is
    better) 0.04 vs 0.99 -> "separates"."""
    t = rec("shapes:sae", {"paired_multimodality": 0.141, "fvu": 0.04}, half=0.005)
    c = rec("control:random-decoder@shapes:sae", {"paired_multimodality": 0.177, "fvu": 0.99}, half=0.006,
            control=("random-decoder", "shapes:sae"))
    g = gap(t, c, COL["paired_multimodality"])
    h = (0.005 ** 2 + 0.006 ** 2) ** 0.5
    assert g["gap"] == pytest.approx(-0.036) and [g["lo"], g["hi"]] == pytest.approx([-0.036 - h, -0.036 + h])
    assert g["verdict"] == CONTROL_BETTER and g["separates"] is False
    assert gap(t, c, COL["fvu"])["verdict"] == SEPARATES


def test_rows_whose_intervals_overlap_share_a_rank():
    from interpbench.leaderboard.tables import _rank_cells

    col = COL["label_corr_matched"]
    rows = [{col.key: v, f"{col.key}_lo": v - h, f"{col.key}_hi": v + h}
            for v, h in ((0.469, 0.08), (0.446, 0.08), (0.294, 0.033), (0.224, 0.025), (0.2, 0.0))]
    rows[4][f"{col.key}_lo"] = rows[4][f"{col.key}_hi"] = None  # no interval: compared by value
    rows.append({col.key: None})
    # 1 and 2 overlap; 3 is below both; 4 below 1-3 (0.249 < 0.261); 5 (no interval) below everything
    assert _rank_cells(rows, col) == ["1", "1", "3", "4", "5", "–"]


def test_label_columns_compare_the_same_labelling_route():
    """A residual SAE labelled through its decoder (label corr. 0.30) against a random-codes control
    (primary route: images, 0.40; no decoder route) has no label gap; against a random-decoder control
    whose primary route is images (0.50) but which also has decoder labels (0.10), the gap is taken
    on the decoder route: +0.20."""
    def routes(primary, **values):
        return {"primary": primary, "routes": {r: {"metrics": {"label_corr_mean": v},
                                                   "intervals": {"label_corr_mean": _iv(v, 0.01)}}
                                               for r, v in values.items()}}
    t = rec("sae:resid", {"label_corr_mean": 0.30, "fvu": 0.05}) | {"label_routes": routes("decoder", decoder=0.30,
                                                                                           images=0.2)}
    codes = rec("control:random-codes@sae:resid", {"label_corr_mean": 0.40, "fvu": 0.5},
                control=("random-codes", "sae:resid")) | {"label_routes": routes("images", images=0.40)}
    dec = rec("control:random-decoder@sae:resid", {"label_corr_mean": 0.50, "fvu": 0.9},
              control=("random-decoder", "sae:resid")) | {"label_routes": routes("images", decoder=0.10, images=0.5)}
    col = COL["label_correlation_mean"]  # reads label_corr_mean
    assert gap(t, codes, col) is None and gap(t, codes, COL["fvu"]) is not None
    g = gap(t, dec, col)
    assert g["gap"] == pytest.approx(0.20) and g["verdict"] == SEPARATES


def test_control_better_shows_in_validity_footnote_and_blocks_bold(tmp_path):
    folder = write(tmp_path / "r",
                   rec("shapes:sae", {"paired_multimodality": 0.141, "label_correlation_mean": 0.3}),
                   rec("control:random-codes@shapes:sae", {"paired_multimodality": 0.177,
                                                           "label_correlation_mean": 0.03},
                       kind="control", control=("random-codes", "shapes:sae")))
    records = read_results(folder)[0]
    report = validity_report(records)
    paired = next(m for m in report["metrics"] if m["key"] == "paired_multimodality")
    assert paired["verdict"] == CONTROL_BETTER and paired["separates"] is False
    text = markdown_report(report)
    assert "random-codes: -0.036 [-0.050, -0.022] ▼ control better" in text
    assert "- **A control is better (the gap's interval lies on the wrong side)**: paired multimodal (" in text
    build_leaderboard(folder, tmp_path / "lb", with_plots=False)
    page = (tmp_path / "lb" / "shapes-eval.md").read_text()
    note = next(ln for ln in page.splitlines() if ln.startswith("[^paired_multimodality]:"))
    assert "**Control is better:** a control scores better (trained − control, 95% interval) for " \
           "`shapes:sae` vs its random-codes -0.036" in note


# --- 2. the rank rule --------------------------------------------------------------------

def _two_models_with_controls(label_corr_ctl_sparse=0.1, paired_ctl_sparse=0.2):
    """Two contestants, each with random codes; label correlation and paired multimodality chosen
    so that the test decides which separates."""
    out = [rec("shapes:sparse", {"label_correlation_mean": 0.4, "paired_multimodality": 0.5, "clarity": 0.5}),
           rec("shapes:dense", {"label_correlation_mean": 0.2, "paired_multimodality": 0.35, "clarity": 0.4}),
           rec("control:random-codes@shapes:sparse", {"label_correlation_mean": label_corr_ctl_sparse,
                                                      "paired_multimodality": paired_ctl_sparse, "clarity": 0.5},
               kind="control", control=("random-codes", "shapes:sparse")),
           rec("control:random-codes@shapes:dense", {"label_correlation_mean": 0.05, "paired_multimodality": 0.2,
                                                     "clarity": 0.37},
               kind="control", control=("random-codes", "shapes:dense"))]
    return out


def _page(tmp_path, records, rank_by=None):
    folder = write(tmp_path / "r", *records)
    rows, controls, verdicts, rank = _ranked(select(read_results(folder)[0]), None, rank_by)
    return rows, verdicts, rank, markdown_table("t", rows, ("model",), controls=controls, verdicts=verdicts, rank=rank)


def _ranks(text):
    full = text.split("## Full table")[1].split("## Controls")[0]
    rows = [ln.strip("|").split(" | ") for ln in full.splitlines() if ln.startswith("| ")][1:]
    return [(r[1].strip(" `"), r[0].strip()) for r in rows]


def test_rank_uses_the_first_separating_column_of_the_documented_order(tmp_path):
    rows, verdicts, rank, text = _page(tmp_path, _two_models_with_controls())
    assert verdicts["clarity"].verdict == NO_SEPARATION  # sparse = its random codes
    assert rank.col.key == "label_correlation_mean"  # first in the order, separates both
    assert _ranks(text) == [("shapes:sparse", "1"), ("shapes:dense", "2")]
    assert "**Rank (`#`): by label corr. ↑**, the first column in the documented order" in text
    assert "--rank-by COLUMN`" in text


def test_rank_skips_a_column_where_a_control_is_better(tmp_path):
    # sparse's random codes: label correlation 0.6 > 0.4 (control better) -> the next column, paired
    rows, verdicts, rank, text = _page(tmp_path, _two_models_with_controls(label_corr_ctl_sparse=0.6))
    assert verdicts["label_correlation_mean"].verdict == CONTROL_BETTER
    assert rank.col.key == "paired_multimodality"
    assert "**Rank (`#`): by paired multimodal ↑**" in text


def test_no_single_rank_when_no_column_separates(tmp_path):
    rows, verdicts, rank, text = _page(tmp_path, _two_models_with_controls(label_corr_ctl_sparse=0.4,
                                                                           paired_ctl_sparse=0.5))
    assert rank.col is None
    assert "**No single rank**" in text and "label corr.: does not separate for `shapes:sparse`" in text
    assert _ranks(text) == [("shapes:dense", "–"), ("shapes:sparse", "–")]  # alphabetical, no number
    assert "**" not in text.split("## Full table")[1].split("Values are")[0]


def test_rank_by_names_the_users_column_and_warns_when_it_does_not_separate(tmp_path):
    rows, verdicts, rank, text = _page(tmp_path, _two_models_with_controls(), rank_by="Clarity")
    assert rank.col.key == "clarity" and _ranks(text) == [("shapes:sparse", "1"), ("shapes:dense", "2")]
    assert "**Rank (`#`): by Clarity ↑**, chosen with `--rank-by clarity`; rows share a rank unless another row's " \
           "95% interval lies wholly on the better side of theirs. Caution: on this page Clarity has " \
           "the verdict *does not separate* (does not separate for `shapes:sparse`)" in text
    with pytest.raises(BadSpecError, match="not a ranked leaderboard column"):
        _page(tmp_path / "x", _two_models_with_controls(), rank_by="baseline")


# --- 3. controls on demand, unknown verdicts -------------------------------------------

def test_evaluate_controls_adds_the_matching_controls_of_every_model():
    assert with_controls(["shapes:sae", "shapes:dense", "control:random-codes@shapes:sae"]) == [
        "shapes:sae", "control:random-codes@shapes:sae", "control:random-decoder@shapes:sae",
        "shapes:dense", "control:random-codes@shapes:dense", "control:untrained@shapes:dense"]


def test_no_controls_means_unknown_and_the_command_that_produces_them(tmp_path):
    from interpbench.cli.main import app

    rows = [rec("shapes:sae", {"label_correlation_mean": 0.3, "clarity": 0.5, "steerability": 1.0}),
            rec("shapes:dense", {"label_correlation_mean": 0.2, "clarity": 0.4, "steerability": 0.6})]
    rows[0]["settings"]["n_images"] = 500
    rows[1]["settings"]["n_images"] = 500
    folder = write(tmp_path / "results", *rows)
    out = tmp_path / "v.md"
    res = CliRunner().invoke(app, ["validate-metrics", "--results", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "none" not in text.lower().replace("none of", "")
    assert "- **Verdict unknown (no control result, or no interval)**: Clarity (no control of `shapes:dense`, " \
           "`shapes:sae` was evaluated" in text
    assert "no control evaluated: verdict unknown" in text
    assert "- **Separates trained from random (every contestant, right direction)**: no metric." in text
    command = ("interpbench evaluate --model control:random-codes@shapes:dense --model control:untrained@shapes:dense "
               "--model control:random-codes@shapes:sae --model control:random-decoder@shapes:sae --n-images 500 "
               "--results RESULTS")  # the folder is absolute: not named
    assert f"    {command}" in text
    assert "Clarity: unknown" in res.output
    build_leaderboard(folder, tmp_path / "lb", with_plots=False)
    page = (tmp_path / "lb" / "shapes-eval.md").read_text()
    assert "## Missing controls" in page and f"    {command}" in page
    assert "interpbench analyze run control:random-codes@shapes:dense" in page
    assert "**" not in page.split("## Full table")[1].split("Values are")[0]  # steer. 1.000 is not bold
    steer = next(ln for ln in page.splitlines() if ln.startswith("[^steerability]:"))
    assert "**Verdict unknown:**" in steer and "Never bold." in steer


def test_analysis_column_is_bold_only_where_the_same_analysis_ran_on_a_control(tmp_path):
    base = [rec("shapes:sparse", {"steerability": 0.9, "label_correlation_mean": 0.4}),
            rec("shapes:dense", {"steerability": 0.6, "label_correlation_mean": 0.2}),
            rec("control:untrained@shapes:sparse", {"label_correlation_mean": 0.0}, kind="sparse-clip",
                control=("untrained", "shapes:sparse")),
            rec("control:untrained@shapes:dense", {"label_correlation_mean": 0.0}, kind="dense",
                control=("untrained", "shapes:dense"))]
    _, verdicts, _, text = _page(tmp_path / "a", base)
    assert verdicts["steerability"].verdict == UNKNOWN and "**0.900" not in text
    assert "the same analysis has not run on a control of `shapes:dense`, `shapes:sparse`" in text
    base[2]["metrics"]["steerability"], base[2]["intervals"]["steerability"] = 0.1, _iv(0.1, 0.01)
    base[3]["metrics"]["steerability"], base[3]["intervals"]["steerability"] = 0.2, _iv(0.2, 0.01)
    _, verdicts, _, text = _page(tmp_path / "b", base)
    assert verdicts["steerability"].verdict == SEPARATES and "**0.900 ± 0.010**" in text


# --- 6. headline table ---------------------------------------------------------------------

def test_headline_has_at_most_ten_columns_the_separating_ones_first(tmp_path):
    every = {c.key: 0.5 for c in COLUMNS}
    ctl = {c.key: 0.1 for c in COLUMNS}  # every column separates (higher is better) ...
    for key in ("l0", "fvu", "fvu_msae", "duplicate_share"):  # ... and lower is better
        every[key], ctl[key] = 0.1, 0.5
    records = [rec("shapes:sparse", every), rec("control:untrained@shapes:sparse", ctl, kind="sparse-clip",
                                                control=("untrained", "shapes:sparse"))]
    _, verdicts, rank, text = _page(tmp_path, records)
    head = next(ln for ln in text.split("## Headline")[1].splitlines() if ln.startswith("| #"))
    cells = head.strip("|").split(" | ")
    assert len(cells) == 2 + MAX_HEADLINE_METRICS == 10
    titles = [c.split("[^")[1].rstrip("] ") for c in cells[2:]]
    assert {"zeroshot_mean", "l0", "fvu"} <= set(titles)
    # the rank order's columns come next: label corr., label corr.@n, paired, CF, GT label acc.
    assert {"label_correlation_mean", "label_corr_matched", "paired_multimodality", "cf_selectivity",
            "gt_label_accuracy"} == set(titles) - {"zeroshot_mean", "l0", "fvu"}
    full = next(ln for ln in text.split("## Full table")[1].splitlines() if ln.startswith("| #"))
    assert len(full.strip("|").split(" | ")) == 2 + len(COLUMNS)


def test_only_one_column_is_called_multimodal():
    assert [c.key for c in COLUMNS if "multimodal" in c.title] == ["paired_multimodality"]
    assert COL["multimodal_fraction"].title == "band fraction"


# --- 7. one row per contestant ----------------------------------------------------------

def test_the_same_weights_under_two_specs_are_one_row(tmp_path):
    same = {"clarity": 0.5, "l0": 16.0}
    records = [rec("shapes:sae", same, fingerprint="abc+def"),
               rec("sae:interpbench:./runs/sae-seed0@shapes:dense", same, fingerprint="abc+def"),
               rec("sae:interpbench:./other@shapes:dense", {"clarity": 0.4, "l0": 16.0}, fingerprint="abc+def"),
               rec("sae:interpbench:./third@shapes:dense", same, fingerprint="zzz+def")]
    sel = select(records)
    assert [r["model"]["spec"] for r in sel.contestants] == [
        "shapes:sae", "sae:interpbench:./other@shapes:dense", "sae:interpbench:./third@shapes:dense"]
    [(dup, shown)] = sel.duplicates  # same fingerprint and numbers; other numbers or weights stay
    assert dup["model"]["spec"].startswith("sae:interpbench:./runs") and shown["model"]["spec"] == "shapes:sae"
    assert "shown once" in sel.notes() and "./runs" not in sel.notes()


def test_reseed_runs_are_not_contestants_and_no_path_reaches_the_page(tmp_path):
    records = [rec("shapes:sae", {"clarity": 0.5}, fingerprint="a")]
    records += [rec(f"sae:interpbench:./runs/sae-seed{s}@shapes:dense", {"clarity": 0.5 + s / 100},
                    fingerprint=f"s{s}", recipe="shapes:sae", train_seed=s) for s in (0, 1, 2)]
    folder = write(tmp_path / "r", *records)
    build_leaderboard(folder, tmp_path / "lb", with_plots=False)
    for page in ("shapes-eval.md", "shapes-eval.csv", "overall.md", "overall.csv", "shapes-eval-reseed.md"):
        assert "./runs" not in (tmp_path / "lb" / page).read_text(), page
    assert "3 reseed runs (recipe `shapes:sae`) are in the reseed view" in (tmp_path / "lb" / "shapes-eval.md").read_text()


def test_decomposition_records_enter_no_evaluation_table(tmp_path):
    folder = write(tmp_path / "r", rec("shapes:sparse", {"clarity": 0.5}),
                   rec("control:random-codes@shapes:sparse", {"clarity": 0.4}, kind="control",
                       control=("random-codes", "shapes:sparse")))
    decomposition = {"schema_version": 1, "interpbench_version": "0.1.0", "kind": "decomposition",
                     "model": {"spec": "shapes:sparse", "name": "shapes:sparse", "kind": "sparse-clip"},
                     "dataset": {"name": "shapes-decomposition", "source": "shapes"}, "settings": {},
                     "seed": 0, "metrics": {"head_role_agreement": 0.125}, "results": {}}
    path = folder / "decomposition" / "shapes_sparse.json"
    path.parent.mkdir()
    path.write_text(json.dumps(decomposition))
    records, skipped = load_records(folder)
    assert [r["dataset"]["name"] for r in records] == ["shapes-eval", "shapes-eval"]
    assert [(p, why.split(" (")[0]) for p, why in skipped] == [(path, "a decomposition record")]
    build_leaderboard(folder, tmp_path / "lb", with_plots=False)
    assert not (tmp_path / "lb" / "shapes-decomposition.md").exists()
    overall = (tmp_path / "lb" / "overall.md").read_text()
    assert "| `shapes:sparse` | sparse-clip | 1 |" in overall
    report = validity_report(read_results(folder)[0])
    assert all(row["dataset"] == "shapes-eval" for m in report["metrics"] for row in m["models"])
    assert len(next(m for m in report["metrics"] if m["key"] == "clarity")["models"]) == 1


def test_rank_by_on_the_command_line(tmp_path, monkeypatch, capsys):
    import sys

    from interpbench.cli.main import app, main

    folder = write(tmp_path / "r", *_two_models_with_controls())
    ok = CliRunner().invoke(app, ["leaderboard", "--results", str(folder), "--out", str(tmp_path / "lb"),
                                  "--no-plots", "--rank-by", "paired_multimodality"])
    assert ok.exit_code == 0, ok.output
    assert "shapes-eval: ranked by paired multimodal" in ok.output
    assert "chosen with `--rank-by paired_multimodality`" in (tmp_path / "lb" / "shapes-eval.md").read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["interpbench", "leaderboard", "--results", str(folder), "--rank-by", "nonsense"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == BadSpecError.exit_code and "not a ranked leaderboard column" in err
    assert "Traceback" not in err and not (tmp_path / "leaderboards").exists()  # refused before any work
