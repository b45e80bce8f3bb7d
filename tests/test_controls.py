"""Controls as ordinary specs (control:KIND[?seed=N]@SPEC): known answers on real tiny models."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_adapters_support import ARCH, EMBED, base_spec, images, shared_base

from interpbench.adapters import load_representation
from interpbench.adapters.controls import random_codes
from interpbench.adapters.sae_canonical import HookSite
from interpbench.errors import BadSpecError
from interpbench.results.store import ROUTE_LABELS
from interpbench.specs import parse_spec

TAU = 1e-3
TEXTS = ["a red circle", "two blue squares on grass", "a small green triangle"]


@pytest.fixture(scope="module")
def sae_dir(tmp_path_factory):
    from interpbench.training.sae import SAETrainCfg, train_sae

    root = tmp_path_factory.mktemp("ctl")
    x = torch.randn(128, EMBED, generator=torch.Generator().manual_seed(1))
    train_sae(x, SAETrainCfg(expansion=2, k=4, epochs=2, batch_size=32), hook=HookSite("image_embed"),
              out_dir=root / "sae")
    return root / "sae"


def _l0(t: torch.Tensor) -> list[int]:
    return (t > TAU).sum(1).tolist()


# --- spec grammar -------------------------------------------------------------------------

@pytest.mark.parametrize("spec,kind,seed,target", [
    ("control:random@shapes:sparse", "random-codes", 0, "shapes:sparse"),
    ("control:random-codes?seed=7@shapes:dense", "random-codes", 7, "shapes:dense"),
    ("control:random-decoder@sae:interpbench:./x@shapes:dense", "random-decoder", 0, "sae:interpbench:./x@shapes:dense"),
    ("control:untrained?seed=2@openclip:ViT-B-32@./w.pt", "untrained", 2, "openclip:ViT-B-32@./w.pt"),
])
def test_control_specs_parse(spec, kind, seed, target):
    ms = parse_spec(spec)
    assert (ms.scheme, ms.name, ms.options, ms.base.raw) == ("control", kind, {"seed": seed}, target)


@pytest.mark.parametrize("spec,expected", [
    ("control:random", "needs the model it controls after '@'"),
    ("control:noise@shapes:dense", "unknown control kind 'noise'"),
    ("control:random-decoder@shapes:dense", "random-decoder controls an SAE"),
    ("control:untrained@shapes:sae", "untrained controls a CLIP"),
    ("control:untrained@shapes:sae-resid", "untrained controls a CLIP"),
    ("control:random@control:untrained@shapes:dense", "cannot itself be a control"),
    ("control:random?seed=-1@shapes:dense", "non-negative integer"),
    ("control:random?sed=1@shapes:dense", "the only option is seed=N"),
    ("sae:interpbench:./x@control:untrained@shapes:dense", "cannot be a control"),
])
def test_bad_control_specs_say_what_is_expected(spec, expected):
    with pytest.raises(BadSpecError) as err:
        parse_spec(spec)
    assert expected in str(err.value) and "control:random-codes[?seed=N]@SPEC" in str(err.value)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(list(":@?&=-") + ["control", "random", "random-codes", "random-decoder", "untrained",
                                                   "seed", "1", "²", "shapes", "dense", "sae", "x"]),
                max_size=12).map("".join))
def test_any_control_text_parses_or_is_a_bad_spec(tail):
    try:
        ms = parse_spec("control:" + tail)
    except BadSpecError as err:
        assert "accepted model specs" in str(err)
        return
    assert ms.name in ("random-codes", "random-decoder", "untrained") and ms.base.scheme != "control"


# --- random codes -------------------------------------------------------------------------

def test_random_codes_known_answer():
    """Brute force: row i's values, sorted, go to the features in order of |W e_i|."""
    g = np.random.default_rng(0)
    emb, w = g.normal(size=(5, 6)), g.normal(size=(10, 6))
    feats = np.maximum(g.normal(size=(5, 10)), 0)
    got = random_codes(torch.tensor(emb), torch.tensor(feats), torch.tensor(w)).numpy()
    want = np.zeros_like(feats)
    for i in range(5):
        order = np.argsort(-np.abs(w @ emb[i]), kind="stable")
        want[i, order] = np.sort(feats[i])[::-1]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_random_codes_control_matches_width_and_per_input_l0():
    target_spec = base_spec(shared_base())
    target = load_representation(target_spec)
    rep = load_representation(f"control:random?seed=3@{target_spec}")
    imgs = images(4)
    f, t = rep.encode_image_features(imgs), target.encode_image_features(imgs)
    assert rep.n_features == target.n_features == 2 * EMBED
    assert _l0(f) == _l0(t) and _l0(rep.encode_text_features(TEXTS)) == _l0(target.encode_text_features(TEXTS))
    # same values per image, on other features; the embedding (zero-shot) is the target's
    torch.testing.assert_close(f.sort(1).values, t.sort(1).values)
    assert not torch.equal(f, t)
    torch.testing.assert_close(rep.encode_image_embedding(imgs), target.encode_image_embedding(imgs))
    assert rep.meta.spec == f"control:random-codes?seed=3@{target_spec}" and rep.meta.kind == "control"
    assert rep.meta.to_dict()["control"] == {"of": target_spec, "kind": "random-codes", "seed": 3}
    again = load_representation(f"control:random-codes?seed=3@{target_spec}")
    other = load_representation(f"control:random-codes?seed=4@{target_spec}")
    assert torch.equal(again.encode_image_features(imgs), f)
    assert not torch.equal(other.encode_image_features(imgs), f)
    assert rep.meta.fingerprint != other.meta.fingerprint != target.meta.fingerprint


# --- random-decoder SAE -------------------------------------------------------------------

def test_random_decoder_has_the_sae_shape_and_k_and_a_random_decoder(sae_dir):
    target_spec = f"sae:interpbench:{sae_dir}@{base_spec(shared_base())}"
    target = load_representation(target_spec)
    rep = load_representation(f"control:random-decoder?seed=5@{target_spec}")
    ctl, sae = rep.sae, target.sae
    assert (ctl.d_in, ctl.n_latents, ctl.settings) == (sae.d_in, sae.n_latents, sae.settings)
    assert ctl.settings.k == 4 and rep.meta.kind == "sae" and rep.meta.has_text
    # independent: the trainer's initialisation under the seed, written out here
    w = torch.randn(sae.n_latents, sae.d_in, generator=torch.Generator().manual_seed(5))
    w = w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(ctl.W_dec.detach(), w)
    torch.testing.assert_close(ctl.W_enc.detach(), w.t())
    assert float(ctl.b_enc.detach().abs().max()) == 0 and float(ctl.b_dec.detach().abs().max()) == 0
    torch.testing.assert_close(ctl.input_mean, sae.input_mean)
    assert ctl.input_scale == sae.input_scale and not torch.equal(ctl.W_dec, sae.W_dec)
    assert _l0(rep.encode_image_features(images(3))) == [4, 4, 4]
    assert rep.meta.to_dict()["control"] == {"of": target_spec, "kind": "random-decoder", "seed": 5}
    again = load_representation(f"control:random-decoder?seed=5@{target_spec}")
    assert torch.equal(again.sae.W_dec, ctl.W_dec)


# --- untrained CLIP -----------------------------------------------------------------------

@pytest.mark.parametrize("sparse", [False, True])
def test_untrained_clip_has_the_architecture_and_other_weights(sparse):
    from interpbench.clipmodels import SparseCLIP

    folder = shared_base(sparse=sparse)
    target_spec = f"sparseclip:{folder}" if sparse else base_spec(folder)
    target = load_representation(target_spec)
    rep = load_representation(f"control:untrained?seed=1@{target_spec}")
    n_params = sum(p.numel() for p in rep.model.parameters())
    torch.manual_seed(123)
    assert n_params == sum(p.numel() for p in open_clip.create_model(ARCH).parameters())
    assert isinstance(rep.model, SparseCLIP) == sparse and rep.meta.kind == target.meta.kind
    if sparse:
        assert rep.model.cfg == target.model.cfg
    trained, untrained = target.model.state_dict(), rep.model.state_dict()
    assert trained.keys() == untrained.keys()
    assert any(not torch.equal(trained[k], untrained[k]) for k in trained)
    assert rep.meta.extra["parameters"] == n_params
    assert rep.meta.to_dict()["control"] == {"of": target_spec, "kind": "untrained", "seed": 1}
    same = load_representation(f"control:untrained?seed=1@{target_spec}").model.state_dict()
    other = load_representation(f"control:untrained?seed=2@{target_spec}").model.state_dict()
    assert all(torch.equal(same[k], untrained[k]) for k in same)
    assert any(not torch.equal(other[k], untrained[k]) for k in other)


def test_untrained_of_the_shipped_dense_model():
    target = load_representation("shapes:dense")
    rep = load_representation("control:untrained@shapes:dense")
    assert rep.meta.extra["parameters"] == sum(p.numel() for p in target.model.parameters())
    assert rep.meta.spec == "control:untrained@shapes:dense" and rep.meta.control["of"] == "shapes:dense"
    assert not torch.equal(rep.model.visual.proj, target.model.visual.proj)


# --- end to end ---------------------------------------------------------------------------

def test_evaluate_a_control_end_to_end(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from interpbench.cli.main import app

    monkeypatch.setenv("INTERPBENCH_CACHE", str(tmp_path / "cache"))
    out = CliRunner().invoke(app, ["evaluate", "--model", "control:random@shapes:sae", "--n-images", "16",
                                   "--judge", "groundtruth", "--no-zeroshot", "--results", str(tmp_path / "res"),
                                   "--quiet", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    (path,) = [p for p in (tmp_path / "res").rglob("*.json") if not ROUTE_LABELS.search(p.name)]
    record = json.loads(path.read_text())
    assert record["model"]["control"] == {"of": "shapes:sae", "kind": "random-codes", "seed": 0}
    assert record["model"]["n_features"] == 512 and record["metrics"]["l0"] == 16.0
