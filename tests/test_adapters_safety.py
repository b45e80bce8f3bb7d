"""Safe loading: code-executing pickles are refused before they run; broken files give errors
that name the file and what is wrong."""

from __future__ import annotations

import io
import json
import os

import pytest
import torch

from interpbench.adapters.sae_formats import load_sae
from interpbench.errors import CorruptFileError, UnsafeFileError

MSAE_NAME = "8_4_TopKReLU_2_RW_False_False_0.0_cc3m.pth"


class Payload:
    """Unpickling this calls open(marker, 'w'): a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_bytes(marker) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": {"encoder": Payload(marker)}, "W_enc": Payload(marker)}, buf)
    return buf.getvalue()


def test_payload_is_live_when_unpickled_unsafely(tmp_path):
    """Control: the same bytes *do* run their payload under an unsafe load (it only creates an
    empty file in tmp_path), so the refusal tests below prove something."""
    marker = tmp_path / "pwned_control"
    torch.load(io.BytesIO(malicious_bytes(marker)), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("fmt,name,header", [
    ("msae", MSAE_NAME, None), ("prisma", "n_images_1.pt", None), ("overcomplete", "sae.pt", None),
    ("saev", "sae.pt", {"schema": 2, "cfg": {"d_vit": 4, "activation": {"cls": "Relu", "params": {}}}}),
])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, fmt, name, header):
    marker = tmp_path / "pwned"
    data = malicious_bytes(marker)
    if header is not None:
        data = (json.dumps(header) + "\n").encode() + data
    (tmp_path / name).write_bytes(data)
    if fmt == "prisma":
        (tmp_path / "config.json").write_text(json.dumps({"d_in": 4, "expansion_factor": 2}))
    with pytest.raises(UnsafeFileError) as err:
        load_sae(fmt, str(tmp_path / name), hook="image_embed")
    msg = str(err.value)
    assert str(tmp_path / name) in msg and "refused to unpickle" in msg and "Nothing from it was executed" in msg
    assert not marker.exists()
    assert not os.path.exists("pwned")


@pytest.mark.parametrize("fmt,name", [("msae", MSAE_NAME), ("overcomplete", "sae.pt")])
def test_truncated_pickle_is_corrupt_not_unsafe(tmp_path, fmt, name):
    buf = io.BytesIO()
    torch.save({"model": {"encoder": torch.zeros(4, 8)}}, buf)
    (tmp_path / name).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(CorruptFileError, match=rf"{name}: cannot be read as a torch checkpoint.*truncated"):
        load_sae(fmt, str(tmp_path / name), hook="image_embed")


def test_numpy_scalars_are_allowed(tmp_path):
    """MSAE files hold target_norm as numpy float64: allow-listed, loads under weights_only."""
    import numpy as np

    sd = {"pre_bias": torch.zeros(4), "encoder": torch.randn(4, 8), "latent_bias": torch.zeros(8),
          "decoder": torch.randn(8, 4)}
    torch.save({"model": sd, "mean_center": torch.zeros(4), "scaling_factor": np.float64(2.0),
                "target_norm": np.float64(2.0)}, tmp_path / MSAE_NAME)
    sae = load_sae("msae", str(tmp_path / MSAE_NAME))
    assert sae.input_scale == 2.0 and sae.provenance["target_norm"] == 2.0
