"""Leaderboard tables and plots from constructed results, checked against hand computations."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from interpbench.leaderboard import plots
from interpbench.leaderboard.build import build_leaderboard
from interpbench.leaderboard.columns import COLUMNS
from interpbench.leaderboard.tables import markdown_table, overall_rows, record_row
from interpbench.results.store import SCHEMA_VERSION, read_results, write_result

MODELS = {  # spec: (kind, clarity, l0, zero-shot, fvu)
    "shapes:dense": ("dense", 0.50, 64.0, 0.60, None),
    "shapes:sparse": ("sparse-clip", 0.70, 5.0, 0.55, None),
    "shapes:sae": ("sae", 0.60, 5.0, 0.40, 0.12),
}


def record(spec, kind, clarity, l0, zs, fvu, dataset="shapes-eval"):
    metrics = {"clarity": clarity, "clarity_baseline": 0.45, "l0": l0, "zeroshot_mean": zs,
               "gt_coverage": 0.5, "label_corr_mean": None}
    if fvu is not None:
        metrics["fvu"] = fvu
    return {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0",
            "model": {"spec": spec, "name": spec, "kind": kind},
            "dataset": {"name": dataset, "spec": "shapes", "identity": {"seed": 0}},
            "settings": {"n_images": 100, "judge": "groundtruth"}, "seed": 0, "metrics": metrics,
            "timing": {"wall_time_s": 1.0}, "device": "cpu"}


def per_feature(seed, n=12):
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.001, 0.5, n)
    density[0] = 0.0  # never active: not drawn
    modality = rng.uniform(0, 1, n)
    modality[1] = np.nan  # undefined: not drawn
    clarity = rng.uniform(0.3, 0.9, n)
    clarity[2] = np.nan
    return {"clarity": clarity, "modality_score": modality, "density": density}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    for seed, (spec, values) in enumerate(MODELS.items()):
        write_result(folder, record(spec, *values), per_feature(seed), {"0": [["red", 0.5]]})
    return folder


def _full(text):
    """The page's full table section (the headline table comes first)."""
    return text.split("## Full table")[1].split("## Controls")[0]


def _table_rows(text):
    """Markdown body rows of the first table, as lists of cells."""
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:]]


CONTROL_OF = {"shapes:dense": "untrained", "shapes:sparse": "untrained", "shapes:sae": "random-decoder"}


def test_bold_needs_separation_and_an_interval_clear_of_the_runner_up(tmp_path):
    from interpbench.leaderboard.build import _ranked
    from interpbench.leaderboard.records import select

    folder = tmp_path / "results"
    half = {"clarity": 0.02, "l0": 0.5, "zeroshot_mean": 0.04}  # zero-shot: 0.60 +- 0.04 overlaps 0.55 +- 0.04
    for spec, values in MODELS.items():
        rec = record(spec, *values)
        # each model's control: Clarity and zero-shot 0.2 lower (both separate), L0 50 higher
        ctl = record(f"control:{CONTROL_OF[spec]}@{spec}", values[0], values[1] - 0.2, values[2] + 50,
                     values[3] - 0.2, None)
        ctl["model"]["control"] = {"of": spec, "kind": CONTROL_OF[spec], "seed": 0}
        for r in (rec, ctl):
            r["intervals"] = {k: {"lo": r["metrics"][k] - h, "hi": r["metrics"][k] + h, "level": 0.95,
                                  "method": "bootstrap-images", "b": 200, "seed": 0} for k, h in half.items()}
            write_result(folder, r)
    rows, _, verdicts, rank = _ranked(select(read_results(folder)[0]), None, None)
    text = markdown_table("t", rows, ("model", "kind"), verdicts=verdicts, rank=rank)
    full = _full(text)
    header = [line for line in full.splitlines() if line.startswith("| #")][0].strip("|").split(" | ")
    cells = {r[1].strip("`"): dict(zip([h.strip() for h in header], r, strict=True)) for r in _table_rows(full)}
    col = {c.key: next(h.strip() for h in header if h.strip().startswith(c.title)) for c in COLUMNS}
    # Clarity separates every model from its control, and sparse 0.70 [0.68, 0.72] is clear of sae 0.60
    # [0.58, 0.62] -> bold, with its half-width; the rank uses it (the only separating rank-order column)
    assert verdicts["clarity"].verdict == "separates" and rank.col.key == "clarity"
    assert cells["shapes:sparse"][col["clarity"]] == "**0.700 ± 0.020**"
    assert cells["shapes:sae"][col["clarity"]] == "0.600 ± 0.020"
    assert "**Rank (`#`): by Clarity ↑**" in text
    # L0: the SAE's random decoder keeps k (copied by construction): verdict unknown, never bold
    assert verdicts["l0"].verdict == "unknown"
    assert {cells[m][col["l0"]] for m in ("shapes:sparse", "shapes:sae")} == {"5.0 ± 0.5"}
    # zero-shot separates, but dense is best inside the runner-up's interval
    assert verdicts["zeroshot_mean"].verdict == "separates"
    assert cells["shapes:dense"][col["zeroshot_mean"]] == "0.600 ± 0.040"
    # no interval (gt coverage, FVU) or reference (baseline): nothing bold, bare values
    assert all("**" not in c[col[k]] for c in cells.values() for k in ("gt_coverage", "fvu", "clarity_baseline"))
    assert cells["shapes:sae"][col["fvu"]] == "0.120" and cells["shapes:dense"][col["fvu"]] == "–"
    # label correlation stored as null everywhere -> dash
    assert {c[col["label_correlation_mean"]] for c in cells.values()} == {"–"}
    assert [r["model"] for r in rows] == ["shapes:sparse", "shapes:sae", "shapes:dense"]
    assert [r[0] for r in _table_rows(full)] == ["1", "2", "3"]
    # every metric has a footnote linking its docs anchor, and says how its interval was made
    for c in COLUMNS:
        assert f"[^{c.key}]: " in text and f"../docs/metrics.md#{c.anchor})" in text
    assert "over images (bootstrap-images, percentile, B=200, seed 0)" in text.split("[^clarity]:")[1].splitlines()[0]
    assert "No interval." in text.split("[^fvu]:")[1].splitlines()[0]


def test_overall_is_the_mean_over_datasets(tmp_path):
    folder = tmp_path / "r"
    write_result(folder, record("m", "sae", 0.2, 10.0, 0.5, 0.1, dataset="a"))
    write_result(folder, record("m", "sae", 0.6, 30.0, None, 0.3, dataset="b"))
    write_result(folder, record("n", "dense", 0.3, 40.0, 0.7, None, dataset="a"))
    rows = {r["model"]: r for r in overall_rows([record_row(r) for r in read_results(folder)[0]])}
    assert rows["m"]["clarity"] == pytest.approx(0.4) and rows["m"]["l0"] == pytest.approx(20.0)
    assert rows["m"]["zeroshot_mean"] == pytest.approx(0.5)  # mean over the results that have it
    assert rows["m"]["datasets"] == 2 and rows["n"]["datasets"] == 1


def _build_twice(results, tmp_path, with_plots):
    (results / "shapes-eval" / "corrupt.json").write_text('{"schema_version": 1, ')
    (results / "notes.json").write_text(json.dumps({"author": "someone else"}))
    a = build_leaderboard(results, tmp_path / "a", with_plots=with_plots)
    b = build_leaderboard(results, tmp_path / "b", with_plots=with_plots)
    assert {p.name for p, _ in a.skipped} == {"corrupt.json", "notes.json"}
    names = sorted(p.name for p in a.written)
    assert names == sorted(p.name for p in b.written)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    return names


def test_tables_are_byte_identical_and_skip_bad_files(results, tmp_path):
    names = _build_twice(results, tmp_path, with_plots=False)
    assert names == sorted(["overall.md", "overall.csv", "shapes-eval.md", "shapes-eval.csv", "README.md"])
    table = (tmp_path / "a" / "shapes-eval.md").read_text()
    assert len(_table_rows(_full(table))) == 3 and "corrupt" not in table
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a" / "shapes-eval.csv").read_text())))
    assert {r["model"]: float(r["clarity"]) for r in rows} == {k: v[1] for k, v in MODELS.items()}


def test_saved_plot_is_deterministic_png_and_svg(results, tmp_path):
    rows = [record_row(r) for r in read_results(results)[0]]
    for name in ("a", "b"):
        plots.save_figure(plots.plot_clarity_vs_l0(rows)[0], tmp_path / name)
    for ext in ("png", "svg"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()
    png = Image.open(tmp_path / "a.png")
    assert png.format == "PNG" and png.size == (750, 450)
    svg = (tmp_path / "a.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<dc:date>" not in svg


@pytest.mark.slow
def test_full_leaderboard_with_plots_is_byte_identical(results, tmp_path):
    names = _build_twice(results, tmp_path, with_plots=True)
    assert {"shapes-eval-modality-density.png", "shapes-eval-clarity-distribution.svg",
            "shapes-eval-zeroshot-vs-sparsity.png", "shapes-eval-clarity-vs-l0.svg"} <= set(names)


def test_cli_names_skipped_files(results, tmp_path):
    from interpbench.cli.main import app

    (results / "bad.json").write_text("nope")
    out = CliRunner().invoke(app, ["leaderboard", "--results", str(results), "--out", str(tmp_path / "lb"),
                                   "--no-plots"])
    assert out.exit_code == 0, out.output
    assert "bad.json" in out.output and "not valid JSON" in out.output
    assert (tmp_path / "lb" / "shapes-eval.md").is_file()
    empty = CliRunner().invoke(app, ["leaderboard", "--results", str(tmp_path / "none")])
    assert empty.exit_code != 0


def _points(ax):
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_model_level_plots_have_one_point_per_model_with_its_interval(results):
    rows = [record_row(r) for r in read_results(results)[0]]
    rows[0]["l0_lo"], rows[0]["l0_hi"] = rows[0]["l0"] - 1, rows[0]["l0"] + 2
    for fn, y in ((plots.plot_clarity_vs_l0, "clarity"), (plots.plot_zeroshot_vs_sparsity, "zeroshot_mean")):
        fig, data = fn(rows, "shapes-eval")
        ax = fig.axes[0]
        assert len(data) == 3 and sorted(data["model"]) == sorted(MODELS)
        markers = [c.lines[0] for c in ax.containers if c.get_label() in MODELS]  # errorbar containers
        drawn = sorted((float(m.get_xdata()[0]), float(m.get_ydata()[0])) for m in markers)
        assert drawn == sorted((MODELS[m][2], MODELS[m][1 if y == "clarity" else 3]) for m in MODELS)
        assert "shapes-eval" in ax.get_title() and ax.get_legend() is not None
        # the data set's own Clarity is a line on the Clarity plot only
        baseline = [line for line in ax.lines if "baseline" in line.get_label()]
        assert ([line.get_ydata()[0] for line in baseline] == [0.45]) == (y == "clarity")
        # error bars from the intervals: the first row's L0 bar spans [l0 - 1, l0 + 2]
        segs = [seg for c in ax.collections for seg in c.get_segments()]
        x0 = rows[0]["l0"]
        assert any(np.allclose(sorted(seg[:, 0]), [x0 - 1, x0 + 2]) for seg in segs)


def test_feature_level_plots_draw_the_defined_features():
    arrays = {m: per_feature(i) for i, m in enumerate(MODELS)}
    fig, data = plots.plot_modality_density(arrays)
    assert len(fig.axes) == 3
    for ax, (model, a) in zip(fig.axes, arrays.items(), strict=True):
        expected = np.isfinite(a["modality_score"]) & (a["density"] > 0)
        assert _points(ax) == expected.sum() == (data["model"] == model).sum()
        assert ax.get_xscale() == "log"
    fig, data = plots.plot_clarity_distribution(arrays)
    for model, a in arrays.items():
        got = np.sort(data.loc[data["model"] == model, "clarity"].to_numpy())
        np.testing.assert_allclose(got, np.sort(a["clarity"][np.isfinite(a["clarity"])]))


def test_csv_has_each_stage_seconds_from_the_results(tmp_path):
    from interpbench.leaderboard.tables import csv_text
    from interpbench.results.store import STAGES

    rec = record("m", "sae", 0.2, 10.0, 0.5, 0.1)
    rec["timings"] = dict(zip(STAGES, [1.5, 0.25, 0.0, 3.0, 2.0, 0.5, 7.75], strict=True))
    rows = list(csv.DictReader(io.StringIO(csv_text([record_row(rec), record_row(record("n", "sae", 0.1, 1, 0.1, 0.1))],
                                                    ("model",)))))
    assert {s: float(rows[0][f"seconds_{s}"]) for s in STAGES} == rec["timings"]
    assert all(rows[1][f"seconds_{s}"] == "" for s in STAGES)  # older results: no timings, empty cells
