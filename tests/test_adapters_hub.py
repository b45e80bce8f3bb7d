"""Hub locations: offline and not cached is a clear error naming repo and file; offline and
cached loads from huggingface_hub's own cache layout (no network in either case)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from interpbench.adapters.sae_formats import load_sae, sae_fingerprint
from interpbench.errors import OfflineError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_offline_not_cached_names_repo_and_file(hub_cache):
    with pytest.raises(OfflineError) as err:
        load_sae("saelens", "someorg/clip-sae:blocks.1", offline=True)
    msg = str(err.value)
    assert "'someorg/clip-sae'" in msg and "'blocks.1/cfg.json'" in msg
    assert "hf download someorg/clip-sae blocks.1/cfg.json" in msg and str(hub_cache) in msg


def test_offline_cached_file_loads_from_snapshot(hub_cache):
    snap = hub_cache / "models--someorg--clip-sae" / "snapshots" / COMMIT / "blocks.1"
    snap.mkdir(parents=True)
    (hub_cache / "models--someorg--clip-sae" / "refs").mkdir()
    (hub_cache / "models--someorg--clip-sae" / "refs" / "main").write_text(COMMIT)
    g = torch.Generator().manual_seed(0)
    t = {"W_enc": torch.randn(8, 16, generator=g), "b_enc": torch.zeros(16), "W_dec": torch.randn(16, 8, generator=g),
         "b_dec": torch.zeros(8)}
    save_file(t, str(snap / "sae_weights.safetensors"))
    (snap / "cfg.json").write_text(json.dumps({"d_in": 8, "d_sae": 16, "architecture": "standard",
                                               "metadata": {"hook_name": "blocks.1.hook_resid_post"}}))
    for loc in ("someorg/clip-sae:blocks.1", "hf://someorg/clip-sae/blocks.1"):
        sae = load_sae("saelens", loc, offline=True)
        x = torch.randn(3, 8, generator=g)
        torch.testing.assert_close(sae.encode(x), torch.relu(x @ t["W_enc"]), atol=1e-5, rtol=1e-5)
        assert str(snap) in sae.provenance["files"][0]
    assert sae_fingerprint("saelens", "someorg/clip-sae:blocks.1", offline=True) == sae.provenance["fingerprint"]
