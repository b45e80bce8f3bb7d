import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(2)

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "interpbench", "reference_models")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("INTERPBENCH_CACHE", str(d))
    return d


def reference_available(name: str) -> bool:
    return os.path.isdir(os.path.join(REFERENCE, name))


@pytest.fixture(scope="module")
def base():
    """(folder, model) of the random tiny open_clip base the adapter tests build SAEs on."""
    from test_adapters_support import base_model, shared_base

    folder = shared_base()
    return folder, base_model(folder)
