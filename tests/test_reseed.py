"""Reseed stability: per-seed SAEs carry their recipe and seed; the leaderboard reports each metric's spread."""

from __future__ import annotations

import csv
import statistics

import pytest
import torch
from test_adapters_support import EMBED, base_spec, shared_base

from interpbench.adapters import load_representation
from interpbench.adapters.sae_canonical import HookSite
from interpbench.leaderboard.reseed import reseed_groups, spread_rows, write_reseed
from interpbench.results.store import read_results, write_result

SETTINGS = {"dataset": "shapes", "n_images": 16, "seed": 0, "judge": "groundtruth"}


def _record(spec, metrics, recipe=None, seed=None, settings=SETTINGS):
    model = {"spec": spec, "name": spec, "kind": "sae"}
    if recipe is not None:
        model.update(recipe=recipe, train_seed=seed)
    return {"schema_version": 1, "interpbench_version": "0", "model": model, "seed": 0, "settings": dict(settings),
            "dataset": {"name": "shapes-eval", "spec": "shapes", "identity": {}}, "metrics": metrics}


RECORDS = [_record("a0", {"clarity": 0.40, "l0": 16.0, "fvu": 0.05, "label_corr_mean": 0.2, "n_images": 16}, "r", 0),
           _record("a1", {"clarity": 0.46, "l0": 16.0, "fvu": 0.04, "label_corr_mean": 0.1, "n_images": 16}, "r", 1),
           _record("a2", {"clarity": 0.43, "l0": 16.0, "fvu": None, "label_corr_mean": 0.3, "n_images": 16}, "r", 2),
           _record("lonely", {"clarity": 0.1}, "q", 0),  # one seed: no spread
           _record("shapes:sae", {"clarity": 0.44})]  # no recipe: not a reseed run


def test_spread_known_answer():
    groups = reseed_groups(RECORDS)
    assert [k[0] for k in groups] == ["r"]
    rows = {r["metric"]: r for r in spread_rows(next(iter(groups.values())))}
    c = [0.40, 0.46, 0.43]
    assert rows["clarity"]["mean"] == pytest.approx(statistics.mean(c))
    assert rows["clarity"]["std"] == pytest.approx(statistics.stdev(c))
    assert (rows["clarity"]["min"], rows["clarity"]["max"]) == (0.40, 0.46)
    assert rows["clarity"]["range"] == pytest.approx(0.06) and rows["clarity"]["seeds"] == "0 1 2"
    assert rows["l0"]["std"] == 0 and rows["fvu"]["n_seeds"] == 2  # a missing value is left out, not zero
    assert rows["fvu"]["mean"] == pytest.approx(0.045)
    # leaderboard columns first, under the key the records use; sizes of the run are not metrics
    assert list(rows) == ["clarity", "l0", "label_corr_mean", "fvu"]


def test_other_settings_form_their_own_group():
    other = [_record(f"b{s}", {"clarity": 0.1 * s}, "r", s, settings={**SETTINGS, "n_images": 32}) for s in (0, 1)]
    assert len(reseed_groups(RECORDS + other)) == 2


def test_leaderboard_writes_the_reseed_page(tmp_path):
    from interpbench.leaderboard.build import build_leaderboard

    for r in RECORDS:
        write_result(tmp_path / "res", r)
    report = build_leaderboard(tmp_path / "res", tmp_path / "lb", with_plots=False)
    assert tmp_path / "lb" / "shapes-eval-reseed.md" in report.written
    rows = {r["metric"]: r for r in csv.DictReader((tmp_path / "lb" / "shapes-eval-reseed.csv").open())}
    assert float(rows["clarity"]["std"]) == pytest.approx(statistics.stdev([0.40, 0.46, 0.43]))
    page = (tmp_path / "lb" / "shapes-eval-reseed.md").read_text()
    assert "recipe `r` (seeds 0, 1, 2" in page and "| Clarity (`clarity`) | 0.430 |" in page
    assert "| label corr. (`label_corr_mean`) | 0.200 | 0.100 | 0.100 | 0.300 | 0.200 |" in page
    assert "shapes-eval-reseed.md" in (tmp_path / "lb" / "README.md").read_text()
    records, _ = read_results(tmp_path / "res")
    assert write_reseed(tmp_path / "none", "x", "x", [r for r in records if r["model"]["spec"] == "shapes:sae"]) == []


def test_reseeded_sae_carries_recipe_and_seed(tmp_path):
    from interpbench.training.sae import SAETrainCfg, train_sae

    x = torch.randn(64, EMBED, generator=torch.Generator().manual_seed(1))
    for seed, recipe in ((3, "tiny"), (4, None)):
        train_sae(x, SAETrainCfg(expansion=2, k=4, epochs=1, batch_size=32, seed=seed), hook=HookSite("image_embed"),
                  out_dir=tmp_path / f"s{seed}", recipe=recipe)
    base = base_spec(shared_base())
    meta = load_representation(f"sae:interpbench:{tmp_path / 's3'}@{base}").meta.to_dict()
    assert (meta["recipe"], meta["train_seed"]) == ("tiny", 3)
    plain = load_representation(f"sae:interpbench:{tmp_path / 's4'}@{base}").meta.to_dict()
    assert "recipe" not in plain and "train_seed" not in plain and "control" not in plain


def test_build_sae_seeds_trains_one_sae_per_seed(tmp_path, monkeypatch):
    """The CLI's recipe on a few images: one folder per seed, same data, different initialisation."""
    from interpbench.adapters.sae_canonical import load_own
    from interpbench.training import reference

    monkeypatch.setattr(reference, "SAE_TRAIN_IMAGES", 64)
    monkeypatch.setattr(reference, "EVAL_IMAGES", 8)
    built = reference.build_sae_seeds([0, 1], out_root=tmp_path)
    assert [f for f, _ in built] == [tmp_path / "sae-seed0", tmp_path / "sae-seed1"]
    saes = [load_own(f) for f, _ in built]
    assert [s.provenance["train_seed"] for s in saes] == [0, 1]
    assert {s.provenance["recipe"] for s in saes} == {reference.RESEED_RECIPE}
    torch.testing.assert_close(saes[0].input_mean, saes[1].input_mean)  # same training data
    assert not torch.equal(saes[0].W_dec, saes[1].W_dec)
    assert built[0][1]["n_train"] == 64 and built[1][1]["config"]["seed"] == 1


def test_bad_seed_list_is_a_clear_error():
    from typer.testing import CliRunner

    from interpbench.cli.main import app

    out = CliRunner().invoke(app, ["train", "sae", "--seeds", "0,x"])
    assert out.exit_code != 0 and "distinct non-negative integers" in str(out.exception or out.output)
