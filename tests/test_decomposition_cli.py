"""`interpbench decompose ...` end to end on small model folders: results JSON (one record per
model, strict JSON the results store accepts) and PNG figures."""

import json

import pytest
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.clipmodels import create_random, save_model_folder

runner = CliRunner()
SMALL = ["--n-images", "24", "--texts-per-head", "3", "--last-layers", "1"]


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model_folder(folder, create_random("shapes-vit-tiny", seed=0), "shapes-vit-tiny")
    return folder


def _invoke(*args):
    result = runner.invoke(app, ["decompose", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_heads_and_segment_fill_one_record(random_folder, tmp_path):
    from interpbench.decomposition.record import result_path, summary_markdown
    from interpbench.results.store import read_results

    out = tmp_path / "results" / "decomposition"
    text = _invoke("heads", "--model", random_folder, "--out", out, *SMALL)
    assert "textspan" in text
    _invoke("segment", "--model", random_folder, "--out", out, "--n-images", "24")
    path = result_path(out, str(random_folder))
    record = json.loads(path.read_text())  # strict JSON: NaN would not parse back as a number
    assert record["kind"] == "decomposition" and set(record["results"]) == {"heads", "segment"}
    assert record["seed"] == 0 and record["settings"]["heads"]["n_texts"] == 3
    heads = record["results"]["heads"]
    assert heads["layers"] == [3] and len(heads["heads"]) == 4
    assert all(len(h["texts"]) <= 3 for h in heads["heads"].values())
    assert 0 <= record["metrics"]["seg_decomposition_miou"] <= 1
    assert "seg_raw_attention_map" in record["metrics"] and "textspan_acc_shape" in record["metrics"]
    for png in ("heads.png", "segment.png"):
        assert (path.with_suffix("") / png).read_bytes()[:4] == b"\x89PNG"
    md = summary_markdown(record)
    assert "| decomposition |" in md and "| raw_attention |" in md and "## TextSpan" in md
    records, skipped = read_results(tmp_path / "results")
    assert [r["kind"] for r in records] == ["decomposition"] and not skipped


def test_missing_model_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["decompose", "segment", "--model", str(tmp_path / "nope"), "--n-images", "24"])
    assert result.exit_code != 0
    assert "open_clip_config.json" in result.output or "open_clip_config.json" in str(result.exception)


@pytest.mark.slow
def test_all_commands_on_a_trained_model(tmp_path):
    from interpbench.decomposition.record import result_path
    from interpbench.training.clip import ClipTrainCfg, train_clip

    folder = tmp_path / "trained"
    train_clip(ClipTrainCfg(steps=30, batch_size=16, warmup=5), out_dir=folder, log_every=0)
    out = tmp_path / "out"
    text = _invoke("all", "--model", folder, "--out", out, "--n-images", "60", "--texts-per-head", "4",
                   "--n-heads", "2", "--n-random", "2")
    assert "agreement" in text
    record = json.loads(result_path(out, str(folder)).read_text())
    assert set(record["results"]) == {"heads", "roles", "segment", "ablate", "spurious"}
    assert len(record["results"]["spurious"]["ablated_heads"]) == 2
    assert record["metrics"]["spurious_n_heads"] == 2
