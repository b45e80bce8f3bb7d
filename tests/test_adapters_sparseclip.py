"""Natively sparse CLIP folders (save_model_folder with a sparse head) through `sparseclip:DIR`."""

from __future__ import annotations

import pytest
import torch
from test_adapters_support import EMBED, images, make_base_folder

from interpbench.adapters import load_representation
from interpbench.errors import BadSpecError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse")
    return make_base_folder(root / "sparse", sparse=True), make_base_folder(root / "dense")


def test_sparseclip_features_are_relu_of_the_embedding(folders):
    sparse, _ = folders
    from interpbench.clipmodels import create_random

    rep = load_representation(f"sparseclip:{sparse}")
    assert rep.meta.kind == "sparse-clip" and rep.n_features == EMBED and rep.meta.nonnegative
    imgs = images()
    clip = create_random("shapes-vit-tiny", seed=0).eval()  # the same seed wrote the folder
    with torch.no_grad():
        want = torch.relu(clip.encode_image(imgs))
        want_t = torch.relu(clip.encode_text(rep.tokenizer(["a blue triangle"])))
    torch.testing.assert_close(rep.encode_image_features(imgs), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rep.encode_text_features(["a blue triangle"]), want_t, atol=1e-5, rtol=1e-5)
    assert (rep.encode_image_features(imgs) >= 0).all() and rep.reconstruct(want) is None


def test_wrong_loader_for_folder_is_explained(folders):
    sparse, dense = folders
    with pytest.raises(BadSpecError, match="no sparse_config.json.*openclip:local-dir"):
        load_representation(f"sparseclip:{dense}")
    with pytest.raises(BadSpecError, match="natively sparse CLIP folder; load it with sparseclip:"):
        load_representation(f"openclip:local-dir:{sparse}")
