"""`interpbench analyze` end to end on real (random-weight) open_clip models and a real SAE folder."""

import json

import pytest
import torch
from typer.testing import CliRunner

from interpbench.adapters.sae_canonical import HookSite, save_own
from interpbench.clipmodels import SparseCLIP, SparseHeadCfg, create_random, save_model_folder
from interpbench.data.shapes import concept_words
from interpbench.training.sae import SAETrainCfg, init_sae


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis_models")
    save_model_folder(root / "dense", create_random("shapes-vit-tiny", 0), "shapes-vit-tiny")
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    dense = f"openclip:local-dir:{root / 'dense'}"
    save_own(init_sae(x, SAETrainCfg(expansion=4, k=8), HookSite(), dense), root / "sae")
    (root / "vocab.txt").write_text("\n".join(concept_words()) + "\n")
    return {"root": root, "dense": dense, "sae": f"sae:interpbench:{root / 'sae'}@{dense}",
            "vocab": str(root / "vocab.txt")}


def _run(args):
    from interpbench.cli.main import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_analyze_sae_end_to_end(models, tmp_path):
    res_dir = tmp_path / "results"
    out = _run(["analyze", "run", models["sae"], "--n-images", "40", "--vocab", models["vocab"],
                "--strengths", "0,2", "--ks", "1,2", "--results", str(res_dir),
                "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])
    assert out.exit_code == 0, out.output
    [path] = list(res_dir.glob("*/analysis/*.json"))
    rec = json.loads(path.read_text())
    from interpbench.results.store import validate_record

    assert validate_record(rec) is None and rec["record_type"] == "analysis"
    assert rec["seed"] == 0 and rec["settings"]["strengths"] == [0.0, 2.0]
    color = rec["analyses"]["steering"]["per_attribute"]["color"]["label"]
    assert color["base_accuracy"] == pytest.approx(_independent_color_accuracy(models, 40))
    lat = rec["analyses"]["latent"]
    assert lat["baseline"].startswith(models["sae"])  # the SAE's own base CLIP embedding
    assert set(lat["clustering"]["per_attribute"]) == {"shape", "color", "size", "position", "count", "background"}
    from interpbench.analysis.report import markdown, read_analyses

    text = markdown(read_analyses(res_dir))
    assert f"| {rec['metrics']['steerability']:.3f} |" in text and "## " + rec["model"]["name"] in text
    _check_stored_latent_numbers(models, rec, tmp_path / "cache")
    from interpbench.leaderboard.build import build_leaderboard

    build_leaderboard(res_dir, tmp_path / "lb", with_plots=False)  # no evaluation: the analysis is its own row
    board = (tmp_path / "lb" / "shapes-eval.md").read_text()
    assert f"| {rec['metrics']['retrieval_p_at_k_codes']:.3f}" in board and "[^steerability]: steer.:" in board


def _check_stored_latent_numbers(models, rec, cache):
    """ARI, precision@10 and the latter's interval recomputed here from the cached codes."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from interpbench.adapters import load_representation
    from interpbench.analysis.codes import collect_codes
    from interpbench.data import load_source
    from interpbench.metrics.bootstrap import resample_indices

    codes = collect_codes(load_representation(models["sae"]), load_source("shapes", 40, 0), cache)
    z = codes.features.double().numpy()
    u = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-38)
    aris, prec = [], np.full((6, 40), np.nan)
    for a, truth in enumerate(codes.attributes.values()):
        rows = [i for i, t in enumerate(truth) if t is not None]
        y = np.array([truth[i] for i in rows])
        pred = KMeans(n_clusters=len(set(y)), n_init=4, random_state=0).fit_predict(u[rows])
        aris.append(adjusted_rand_score(y, pred))
        sim = u[rows] @ u[rows].T
        np.fill_diagonal(sim, -np.inf)
        for q, i in enumerate(rows):
            prec[a, i] = np.mean(y[np.argsort(-sim[q], kind="stable")[:10]] == y[q])
    assert rec["metrics"]["cluster_ari_mean"] == pytest.approx(np.mean(aris), abs=1e-9)
    assert rec["metrics"]["retrieval_p_at_k_codes"] == pytest.approx(np.mean(np.nanmean(prec, axis=1)), abs=1e-9)
    stats = [np.mean([np.mean([prec[a, i] for i in idx if prec[a, i] == prec[a, i]]) for a in range(6)])
             for idx in resample_indices(40, 200, 0)]
    ci = rec["intervals"]["retrieval_p_at_k_codes"]
    centred = np.array(stats) - np.mean(stats) + np.mean(np.nanmean(prec, axis=1))  # bias removed
    assert (ci["lo"], ci["hi"]) == pytest.approx(tuple(np.quantile(centred, [0.025, 0.975])), abs=1e-6)
    assert ci["method"] == "bootstrap-images" and ci["b"] == 200 and ci["seed"] == 0
    assert set(rec["intervals"]) >= {"steerability", "ablation_win_rate", "cluster_ari_mean", "cluster_nmi_mean",
                                     "retrieval_p_at_k_codes", "duplicate_share"}


def _independent_color_accuracy(models, n):
    """Zero-shot colour accuracy of the SAE reconstruction, computed here without the analysis code."""
    from interpbench.adapters import load_representation
    from interpbench.data import load_source
    from interpbench.data.shapes import COLORS, ZEROSHOT_TEMPLATES

    rep = load_representation(models["sae"])
    src = load_source("shapes", n, 0)
    names = list(COLORS)
    with torch.inference_mode():
        w = torch.stack([torch.nn.functional.normalize(
            torch.nn.functional.normalize(rep.encode_text_embedding([t.format(c=c) for t in ZEROSHOT_TEMPLATES["color"]]),
                                          dim=-1).mean(0), dim=0) for c in names], 1)
        rows = [i for i in range(n) if src.world[i].attributes["color"] is not None]
        imgs = torch.stack([rep.transform(src.image(i)) for i in rows])
        pred = (rep.encode_image_reconstructed(imgs) @ w).argmax(1)
    truth = torch.tensor([names.index(src.world[i].attributes["color"]) for i in rows])
    return float((pred == truth).float().mean())


def test_analyze_rejects_a_non_shapes_dataset(models, tmp_path):
    from interpbench.errors import BadSpecError

    with pytest.raises(BadSpecError, match="unknown source"):
        _run(["analyze", "run", models["dense"], "--dataset", "imagenet", "--n-images", "10",
              "--cache-dir", str(tmp_path / "c"), "--device", "cpu"])


def test_analyze_rejects_bad_reference_point(models):
    from interpbench.errors import BadSpecError

    with pytest.raises(BadSpecError, match="k_ref"):
        _run(["analyze", "run", models["dense"], "--ks", "1", "--k-ref", "2"])


@pytest.mark.slow
def test_analyze_sparse_and_dense(models, tmp_path):
    root = models["root"]
    save_model_folder(root / "sparse", SparseCLIP(create_random("shapes-vit-tiny-sparse", 0)),
                      "shapes-vit-tiny-sparse", sparse=SparseHeadCfg())
    fig_dir = tmp_path / "figs"
    out = _run(["analyze", "run", models["dense"], f"sparseclip:{root / 'sparse'}", "--n-images", "60",
                "--vocab", models["vocab"], "--baseline", models["dense"], "--results", str(tmp_path / "r"),
                "--figures", str(fig_dir), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])
    assert out.exit_code == 0, out.output
    assert {p.suffix for p in fig_dir.iterdir()} == {".png"} and len(list(fig_dir.iterdir())) == 8
    out = _run(["analyze", "report", "--results", str(tmp_path / "r"), "--out", str(fig_dir)])
    assert out.exit_code == 0, out.output
    text = (fig_dir / "README.md").read_text()
    assert "(steering-vs-strength.png)" in text and text.count("-retrieval.png)") == 2
    recs = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("*/analysis/*.json")]
    assert sorted(r["model"]["kind"] for r in recs) == ["dense", "sparse-clip"]
    for r in recs:
        assert 0.0 <= r["analyses"]["steering"]["mean_curves"]["label_steering_k2"][-1] <= 1.0
