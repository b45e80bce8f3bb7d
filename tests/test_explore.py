"""Feature cards and word search on a real (random, tiny) open_clip model, against a direct computation.

The evaluation side stores what cards need with the results; the leaderboard side renders
from the results folder alone (the activation cache may be gone)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from interpbench.adapters import load_representation
from interpbench.errors import BadSpecError, NotFoundError
from interpbench.evaluation.cards import evaluated_record
from interpbench.evaluation.runner import EvalSettings, RunContext
from interpbench.leaderboard import explore as ex
from interpbench.leaderboard import render
from interpbench.results.store import load_labels, read_results

SPEC = "openclip:shapes-vit-tiny/random"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    settings = EvalSettings(n_images=24, judge="groundtruth", zeroshot=False, batch_size=64, seed=3)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=root / "cache")
    record = evaluated_record(SPEC, settings, ctx, root / "results")
    shutil.rmtree(root / "cache")  # cards and search read the results folder only
    return ex.open_session(record), settings, ctx, root


@pytest.fixture(scope="module")
def direct(session):
    """Features of every image computed straight from the model, in one batch like the pipeline."""
    s = session[0]
    rep = load_representation(SPEC)
    images = torch.stack([rep.transform(s.source.image(i)) for i in range(len(s.source))])
    with torch.inference_mode():
        return rep.encode_image_features(images).float().numpy()


def test_session_evaluates_once_and_reuses_the_record(session):
    s, settings, ctx, root = session
    (record,), skipped = read_results(root / "results")
    assert skipped == [] and record["model"]["spec"] == SPEC and record["seed"] == 3
    assert record["cards_file"] == s.record["cards_file"]
    again = evaluated_record(SPEC, settings, ctx, root / "results")
    assert again["_path"] == record["_path"] and not (root / "cache").exists()  # nothing recomputed
    assert len(read_results(root / "results")[0]) == 1


def test_cards_show_top_images_words_and_metrics(session, direct):
    s = session[0]
    np.testing.assert_allclose(s.mean_act, direct.mean(0), rtol=1e-5, atol=1e-7)
    ranked = ex.rank_features(s, "active", 3)
    assert ranked == [int(f) for f in np.argsort(-direct.mean(0), kind="stable")[:3]]
    (info,) = ex.cards(s, [ranked[0]], n_images=5)
    f = ranked[0]
    col = direct[:, f]
    got = np.array([a for _, a in info["top_images"]])
    np.testing.assert_allclose(got, np.sort(col[col > 0])[::-1][:5], rtol=1e-5)
    for i, a in info["top_images"]:
        assert col[i] == pytest.approx(a, rel=1e-5)
    assert info["top_words"] == load_labels(s.record).get(f, [])
    clarity = s.per_feature["clarity"][f]
    assert info["clarity"] == (None if np.isnan(clarity) else pytest.approx(float(clarity)))
    assert info["n_active_images"] == int((col > settings_tau(session)).sum())
    with pytest.raises(BadSpecError, match="has features 0.."):
        ex.cards(s, [s.n_features + 5])


def settings_tau(session):
    return session[1].tau


def test_card_png_and_html_index(session, tmp_path):
    s = session[0]
    (info,) = ex.cards(s, [ex.rank_features(s, "active", 1)[0]], n_images=4)
    folder = tmp_path / "cards" / "model"
    path = render.save_card(render.draw_card(SPEC, s.source, info), folder / "feature_000001.png")
    assert Image.open(path).format == "PNG"
    assert f"feature {info['feature']}" in render.card_text(SPEC, info)
    index = render.write_index(tmp_path / "cards", "cards").read_text()
    assert "href='model/feature_000001.png'" in index


def test_search_finds_images_of_features_labelled_word(session, direct):
    s = session[0]
    labels = load_labels(s.record)
    word = next(pairs[0][0] for f, pairs in sorted(labels.items()) if pairs)
    result = ex.search(s, word.upper(), n_images=4)  # matching ignores case
    matched = sorted(f for f, pairs in labels.items() if pairs and pairs[0][0] == word)
    assert result["features"] == matched
    score = direct[:, matched].sum(1)
    np.testing.assert_allclose([h["score"] for h in result["images"]], np.sort(score)[::-1][:4], rtol=1e-5)
    for hit in result["images"]:
        row = direct[hit["image"]]
        assert 0 < len(hit["concepts"]) <= 10
        acts = [a for _, a in hit["concepts"]]
        assert acts == sorted(acts, reverse=True)
        first = max((f for f in labels if labels[f]), key=lambda f: (row[f], -f))
        assert hit["concepts"][0][0] == labels[first][0][0]
    with pytest.raises(NotFoundError, match="no feature of .* has 'no-such-word-xyz'"):
        ex.search(s, "no-such-word-xyz")


def test_a_broken_or_missing_card_sidecar_is_a_clear_error(session, tmp_path):
    from interpbench.errors import CorruptFileError
    from interpbench.results.store import write_cards

    root = session[3]
    shutil.copytree(root / "results", tmp_path / "results")
    (record,), _ = read_results(tmp_path / "results")
    bad = write_cards(record, {"indptr": np.zeros(3, np.int64), "values": np.zeros(0, np.float32)})
    with pytest.raises(CorruptFileError, match=r"cards\.safetensors.*not a feature-card sidecar"):
        ex.open_session(bad)
    without = {k: v for k, v in record.items() if k != "cards_file"}
    with pytest.raises(BadSpecError, match="no feature-card sidecar.*interpbench explore"):
        ex.open_session(without)
