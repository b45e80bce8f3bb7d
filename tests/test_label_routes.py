"""The labelling routes (docs/metrics.md#label-routes) against independent computations:

- decoder route at the last block's class token: ln_post linearised with fixed statistics and
  proj, written out by hand in numpy; and the labels of the exact embedding of inputs built to
  excite one atom, through open_clip's own forward pass;
- image route: brute force over a small case (every image, every word);
- a residual-stream SAE through `evaluate_model`: every route's labels and label metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_adapters_support import EMBED, WIDTH, base_spec, images, shared_base

from interpbench.adapters import load_representation
from interpbench.adapters.direct_path import decoder_directions, direct_path_matrix
from interpbench.adapters.sae_canonical import CanonicalSAE, HookSite, SAESettings, random_unit_rows, save_own
from interpbench.metrics.labels import decoder_labels
from interpbench.metrics.suite import MetricSuite, SuiteConfig

F, V, K = 24, 40, 3
LAST = 3  # the tiny base has 4 blocks


def _write_sae(folder, hook: HookSite, k: int = 4, seed: int = 1):
    w = random_unit_rows(F, WIDTH, seed)  # tied encoder: input t * atom i excites atom i most
    sae = CanonicalSAE(w.t().clone(), torch.zeros(F), w, torch.zeros(WIDTH),
                       SAESettings(activation="topk", k=k, hook=hook, base_model=base_spec(shared_base())))
    save_own(sae, folder)
    return folder


@pytest.fixture(scope="module")
def resid_rep(tmp_path_factory):
    folder = _write_sae(tmp_path_factory.mktemp("resid") / "sae", HookSite("resid_post", LAST, "cls"), k=1)
    rep = load_representation(f"sae:interpbench:{folder}@{base_spec(shared_base())}")
    visual = rep.base.model.visual
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # a LayerNorm with non-trivial weight and bias, so both must be handled
        visual.ln_post.weight.copy_(1 + 0.5 * torch.randn(WIDTH, generator=g))
        visual.ln_post.bias.copy_(0.3 * torch.randn(WIDTH, generator=g))
    return rep


def _brute_top_k(rows: np.ndarray, words: np.ndarray, k: int) -> np.ndarray:
    """Top-k word ids per row by cosine, ties to the lower word id; -1 for zero rows."""
    out = np.full((rows.shape[0], k), -1)
    wn = np.linalg.norm(words, axis=1)
    for f, r in enumerate(rows):
        if not np.linalg.norm(r) > 0:
            continue
        cos = np.where(wn > 0, words @ r / np.maximum(wn, 1e-30) / np.linalg.norm(r), -np.inf)
        order = sorted(range(len(words)), key=lambda j: (-cos[j], j))
        out[f] = order[:k]
    return out


def _words(seed=3):
    return np.random.default_rng(seed).normal(size=(V, 64)).astype(np.float32)  # the tiny joint space: 64


def test_direct_path_matches_a_hand_written_layer_norm_and_projection(resid_rep):
    visual = resid_rep.base.model.visual
    gamma, proj = visual.ln_post.weight.detach().numpy(), visual.proj.detach().numpy()
    atoms = resid_rep.sae.W_dec.detach().numpy().astype(np.float64)
    sigma = 2.7  # a fixed data statistic: scales every atom alike
    want = ((atoms - atoms.mean(axis=1, keepdims=True)) * gamma / sigma) @ proj
    got = decoder_directions(resid_rep, sigma=sigma).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    words = _words()
    expected = _brute_top_k(want, words, K)
    np.testing.assert_array_equal(decoder_labels(words, got, k=K, chunk=7).word_ids, expected)
    # sigma only rescales: the labels are the same without it
    np.testing.assert_array_equal(decoder_labels(words, decoder_directions(resid_rep), k=K).word_ids, expected)


def test_decoder_labels_equal_those_of_the_exact_embedding_of_inputs_that_excite_one_atom(resid_rep):
    from interpbench.adapters import hooks

    model, hook, sae = resid_rep.base.model, resid_rep.sae.settings.hook, resid_rep.sae
    imgs = images(1)
    base_emb = hooks.encode_image_with_replacement(model, imgs, hook, torch.zeros_like)  # ln_post(0) @ proj
    words = _words(4)
    rows = []
    for i in range(F):
        x = 3.0 * sae.W_dec[i].detach()
        code = sae.encode(x[None])
        assert torch.nonzero(code[0]).flatten().tolist() == [i]  # the input excites atom i alone
        emb = hooks.encode_image_with_replacement(model, imgs, hook, lambda t, x=x: x.expand_as(t))
        rows.append((emb - base_emb)[0].double().numpy())  # the atom's part of the exact embedding
    exact = _brute_top_k(np.stack(rows), words, K)
    np.testing.assert_array_equal(decoder_labels(words, decoder_directions(resid_rep), k=K).word_ids, exact)


def test_patch_atoms_take_the_same_map_and_embedding_atoms_none(tmp_path):
    folder = _write_sae(tmp_path / "patch", HookSite("resid_post", 1, "patch"))
    rep = load_representation(f"sae:interpbench:{folder}@{base_spec(shared_base())}")
    want = random_unit_rows(F, WIDTH, 1).numpy() @ direct_path_matrix(rep.base.model).numpy()
    np.testing.assert_allclose(decoder_directions(rep).numpy(), want, rtol=1e-5, atol=1e-6)
    w = random_unit_rows(F, EMBED, 2)
    sae = CanonicalSAE(w.t().clone(), torch.zeros(F), w, torch.zeros(EMBED), SAESettings(activation="topk", k=2))
    save_own(sae, tmp_path / "emb")
    rep = load_representation(f"sae:interpbench:{tmp_path / 'emb'}@{base_spec(shared_base())}")
    np.testing.assert_allclose(decoder_directions(rep).numpy(), w.numpy())  # already in the joint space


def test_image_route_matches_brute_force_over_every_image_and_word():
    rng = np.random.default_rng(0)
    n, d, top_n = 60, 6, 5
    acts = rng.exponential(size=(n, F)) * (rng.random((n, F)) < 0.3)
    acts[:, 0] = 0  # never fires: no label
    acts[:3, 1] = 1.0  # fires on 3 images with one value: ties go to the lower image id
    judge = rng.normal(size=(n, d))
    vocab = rng.normal(size=(V, d))
    vocab[7] = 0  # a word with no judge vector never labels
    cfg = SuiteConfig(top_n=top_n, top_k_words=K)
    suite = MetricSuite(F, d, config=cfg)
    for s in range(0, n, 16):  # streamed in batches
        suite.update_images(torch.from_numpy(acts[s:s + 16]).float(), torch.from_numpy(judge[s:s + 16]).float(),
                            torch.arange(s, min(s + 16, n)))
    suite.finalize()
    got = suite.image_labels(torch.from_numpy(vocab).float()).word_ids
    unit = judge / np.linalg.norm(judge, axis=1, keepdims=True)
    means = np.zeros((F, d))
    for f in range(F):
        fired = [i for i in range(n) if acts[i, f] > cfg.tau]
        top = sorted(fired, key=lambda i: (-acts[i, f], i))[:top_n]
        if len(top) >= cfg.n_min:  # centred: minus the mean unit embedding of every image
            means[f] = unit[top].mean(axis=0) - unit.mean(axis=0)
    np.testing.assert_array_equal(got, _brute_top_k(means, vocab, K))
    assert (got[0] == -1).all() and (got[:, 0] != 7).all()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from interpbench.evaluation.runner import EvalSettings, RunContext, evaluate_model
    from interpbench.results.store import load_labels, read_results, write_result

    root = tmp_path_factory.mktemp("eval")
    folder = _write_sae(root / "sae", HookSite("resid_post", LAST, "cls"))
    spec = f"sae:interpbench:{folder}?hook=resid_post:{LAST}:cls@{base_spec(shared_base())}"
    settings = EvalSettings(n_images=60, zeroshot=False, batch_size=32, bootstrap=20, cf_scenes=6, n_min=2)
    ctx = RunContext(device=torch.device("cpu"), cache_dir=root / "cache")
    record, per_feature, labels = evaluate_model(spec, settings, ctx)
    write_result(root / "results", record, per_feature, labels)
    [stored], _ = read_results(root / "results")
    return stored, {r: load_labels(stored, r) for r in ("decoder", "images")}


def test_a_residual_sae_gets_labels_and_label_metrics_on_every_route(evaluated):
    record, labels = evaluated
    routes = record["label_routes"]
    assert routes["primary"] == "decoder" and set(routes["routes"]) == {"decoder", "images"}
    assert routes["unavailable"]["text"].startswith("image-only")
    for route, info in routes["routes"].items():
        m = info["metrics"]
        assert {"labelled_pct", "label_corr_mean", "gt_label_accuracy", "cf_selectivity"} <= set(m), route
        iv = info["intervals"]["label_corr_mean"]
        assert iv["lo"] <= m["label_corr_mean"] <= iv["hi"] and len(iv["replicates"]) == 20
        assert "cf_selectivity" in info["intervals"] or m["cf_selectivity"] is None
        assert labels[route], route
    # the primary route's numbers are the record's top-level label metrics
    for k in ("label_corr_mean", "labelled_pct", "cf_selectivity"):
        assert record["metrics"][k] == routes["routes"]["decoder"]["metrics"][k]
    assert record["intervals"]["label_corr_mean"]["lo"] == routes["routes"]["decoder"]["intervals"]["label_corr_mean"]["lo"]
    assert set(routes["agreement"]) == {"decoder~images"}


def test_image_only_multimodality_says_why(evaluated):
    from interpbench.leaderboard.columns import COLUMNS
    from interpbench.leaderboard.tables import record_row, value_text

    record, _ = evaluated
    assert record["unavailable"]["paired_multimodality"] == "image-only"
    row = record_row(record)
    for key in ("paired_multimodality", "multimodal_fraction"):  # the leaderboard's and the summary's cell
        col = next(c for c in COLUMNS if c.key == key)
        assert value_text(col, row) == "n/a: image-only"


def test_route_sidecars_hold_the_labels_the_record_points_to(evaluated):
    record, labels = evaluated
    path = record["_path"].replace(".json", ".labels.images.json")
    assert json.loads(open(path).read()).keys() == {str(f) for f in labels["images"]}


def test_shuffled_labels_permute_the_labelled_features_only():
    from interpbench.evaluation.label_routes import shuffled_labels
    from interpbench.metrics.labels import FeatureLabels

    ids = np.array([[3, 1], [-1, -1], [5, 2], [7, 0], [-1, -1], [9, 4]])
    scores = np.arange(12, dtype=np.float32).reshape(6, 2)
    scores[ids < 0] = np.nan
    out = shuffled_labels(FeatureLabels(ids, scores, "images"), seed=4)
    assert (out.word_ids[[1, 4]] == -1).all()  # unlabelled features stay unlabelled
    lab = [0, 2, 3, 5]
    perm = np.random.default_rng(4).permutation(lab)  # the documented seeded permutation
    np.testing.assert_array_equal(out.word_ids[lab], ids[perm])
    np.testing.assert_array_equal(out.scores[lab], scores[perm])
    assert sorted(map(tuple, out.word_ids[lab])) == sorted(map(tuple, ids[lab]))  # the same label lists


def test_every_route_records_its_shuffled_labels_with_paired_intervals(evaluated):
    record, _ = evaluated
    routes = record["label_routes"]
    assert set(routes["shuffled"]) == set(routes["routes"])
    for route, info in routes["shuffled"].items():
        m, iv = info["metrics"], info["intervals"]["label_corr_mean"]
        assert iv["lo"] <= m["label_corr_mean"] <= iv["hi"] and len(iv["replicates"]) == 20
        # same features, same images: the shuffled replicates pair with the route's own
        assert iv["method"] == routes["routes"][route]["intervals"]["label_corr_mean"]["method"]
    assert not any("shuffled" in k for k in record.get("_route_labels", {}))
