"""Sparse activations are stored as CSR and read back exactly; the cache is reused."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from interpbench.data import load_source
from interpbench.distributed import Shard
from interpbench.extraction.cache import from_csr
from interpbench.extraction.extract import _ChunkBuffer, extract_images, iter_image_chunks, sparse_rows


def _sparse_batch(rows=7, cols=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(rows, cols, generator=g)
    x[x < 0.9] = 0.0  # ~10% active
    x[3] = 0.0  # an all-zero row
    return x


def test_sparse_rows_round_trip_exact():
    x = _sparse_batch()
    counts, cols, vals = sparse_rows(x)
    assert counts.tolist() == (x != 0).sum(1).tolist()
    assert cols.dtype == torch.int32 and vals.numel() == int((x != 0).sum())
    buf = _ChunkBuffer()
    buf.add(sparse_rows(x[:4]), {"embedding": torch.ones(4, 2)})
    buf.add(sparse_rows(x[4:]), {"embedding": torch.zeros(3, 2)})
    t = buf.tensors()
    assert torch.equal(from_csr(t["row_ptr"], t["col"], t["val"], x.shape[1]), x)
    assert torch.equal(t["embedding"], torch.cat([torch.ones(4, 2), torch.zeros(3, 2)]))


@pytest.fixture(scope="module")
def rep():
    from interpbench.adapters import load_representation

    return load_representation("openclip:shapes-vit-tiny/random")


def test_cached_features_equal_the_forward_pass(rep, tmp_path):
    src = load_source("shapes", n_images=12)
    cache = extract_images(rep, src, tmp_path, batch_size=4, chunk_size=10)
    got = torch.cat([f for f, _ in iter_image_chunks(cache, rep.n_features)])
    images = torch.stack([rep.transform(src.image(i)) for i in range(12)])
    with torch.inference_mode():
        want = torch.cat([rep.encode_image_features(images[i:i + 4]) for i in range(0, 12, 4)]).float()
    assert torch.allclose(got, want, atol=1e-6, rtol=0)
    assert torch.equal(got == 0, want == 0)  # zeros stay zeros: nothing densified or dropped
    with safe_open(str(cache.path(0)), framework="pt") as fh:  # stored as CSR, never [N, F]
        assert {"row_ptr", "col", "val", "index"} <= set(fh.keys())
        assert fh.get_tensor("val").numel() == int((want[:10] != 0).sum())


def test_second_run_reads_the_cache(rep, tmp_path, monkeypatch):
    src = load_source("shapes", n_images=12)
    first = extract_images(rep, src, tmp_path, batch_size=8, chunk_size=5)
    monkeypatch.setattr(rep, "encode_image_features", lambda x: (_ for _ in ()).throw(AssertionError("recomputed")))
    second = extract_images(rep, src, tmp_path, batch_size=8, chunk_size=5)
    assert second.dir == first.dir
    a = [f for f, _ in iter_image_chunks(first, rep.n_features)]
    b = [f for f, _ in iter_image_chunks(second, rep.n_features)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_shards_split_chunks_disjointly(rep, tmp_path):
    src = load_source("shapes", n_images=12)
    parts = [extract_images(rep, src, tmp_path, batch_size=4, chunk_size=1024, shard=Shard(r, 2)) for r in (0, 1)]
    assert parts[0].chunk_size == 6  # shrunk to ceil(N / world) so both ranks get work
    assert parts[0].owned == [0] and parts[1].owned == [1]
    ids = [int(i) for p in parts for _, t in iter_image_chunks(p, rep.n_features) for i in t["index"]]
    assert ids == list(range(12))


def test_a_rank_may_own_no_chunk(rep, tmp_path):
    src = load_source("shapes", n_images=1)
    idle = extract_images(rep, src, tmp_path, batch_size=4, shard=Shard(1, 2))
    assert idle.owned == [] and list(iter_image_chunks(idle, rep.n_features)) == []


def test_sparse_rows_gather_any_rows_and_match_entries():
    """Caption encodings are held as SparseRows: rows gathered in any order (the shuffled
    pairs) equal the dense rows, and to_entries reads the same non-zeros as from dense."""
    from interpbench.extraction.cache import SparseRows, to_csr
    from interpbench.metrics.inputs import to_entries

    x = _sparse_batch()
    rows = SparseRows.concat([to_csr(x[:3]), to_csr(x[3:])], x.shape[1])
    idx = torch.tensor([6, 0, 3, 3, 5])
    assert torch.equal(rows.rows(idx), x[idx])
    assert torch.equal(torch.cat(list(rows.blocks(4))), x)
    a, b = to_entries(rows.to_torch(), "t", x.shape[1]), to_entries(x, "t", x.shape[1])
    assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("rows", "cols", "vals"))
