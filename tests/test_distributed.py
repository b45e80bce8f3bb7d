"""Distributed evaluation: sharding, the merge glue, and torchrun on CPU (gloo) = one process."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from interpbench.distributed import Shard, all_gather_objects, gather_rows, merge_across_ranks
from interpbench.results.store import ROUTE_LABELS


def test_shards_partition_the_chunks():
    for world in (1, 2, 3, 5):
        owners = [[c for c in range(17) if Shard(r, world).owns(c)] for r in range(world)]
        assert sorted(c for o in owners for c in o) == list(range(17))
        assert Shard(0, world).is_main and not Shard(world - 1, world).is_main or world == 1


def test_single_process_is_a_no_op():
    class Acc:
        def merge(self, other):
            raise AssertionError("no merge in a single process")

    acc = Acc()
    assert merge_across_ranks(acc) is acc
    assert all_gather_objects(3) == [3]
    rows = {4: torch.ones(2, 3), 0: torch.zeros(4, 3)}
    assert torch.equal(gather_rows(rows), torch.cat([torch.zeros(4, 3), torch.ones(2, 3)]))


def _torchrun(args, env=None, timeout=600):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


MERGE_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    import torch.distributed as dist
    from interpbench.distributed import init_from_env, merge_across_ranks, shutdown
    from interpbench.metrics.inputs import to_entries
    from interpbench.metrics.multimodality import MultimodalityAccumulator

    shard, _ = init_from_env("cpu")
    assert dist.get_backend() == "gloo"
    g = torch.Generator().manual_seed(0)
    img, txt = torch.rand(40, 16, generator=g), torch.rand(40, 16, generator=g)
    img[img < 0.7] = 0
    txt[txt < 0.7] = 0
    acc = MultimodalityAccumulator(16)
    for b in range(shard.rank, 4, shard.world):  # this rank's batches of 10
        s = slice(10 * b, 10 * b + 10)
        acc.update(to_entries(img[s], "i", 16), to_entries(txt[s], "t", 16))
    acc = merge_across_ranks(acc)
    if shard.is_main:
        r = acc.result()
        json.dump({"score": r.modality_score.tolist(), "density": r.density.tolist(), "n": r.n_pairs},
                  open(sys.argv[1], "w"))
    shutdown()
""")


@pytest.mark.slow
def test_torchrun_merges_real_accumulators_with_gloo(tmp_path):
    import numpy as np

    from interpbench.metrics.multimodality import modality_scores

    script = tmp_path / "merge.py"
    script.write_text(MERGE_SCRIPT)
    _torchrun([str(script), str(tmp_path / "out.json")])
    got = json.loads((tmp_path / "out.json").read_text())
    g = torch.Generator().manual_seed(0)
    img, txt = torch.rand(40, 16, generator=g), torch.rand(40, 16, generator=g)
    img[img < 0.7] = 0
    txt[txt < 0.7] = 0
    want = modality_scores(img, txt)  # one pass in one process
    assert got["n"] == 40
    np.testing.assert_allclose(got["score"], want.modality_score, atol=1e-12)
    np.testing.assert_allclose(got["density"], want.density, atol=1e-12)


def _record(folder):
    files = [f for f in glob.glob(f"{folder}/*/*.json") if not ROUTE_LABELS.search(f)]
    assert len(files) == 1, files
    return json.loads(open(files[0]).read())


def _one_and_two_processes(args, tmp_path) -> tuple[dict, dict]:
    """The results record of `interpbench ARGS` in one process and under torchrun (2 ranks)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    one = subprocess.run([sys.executable, "-m", "interpbench", *args, "--results", str(tmp_path / "r1"),
                          "--cache-dir", str(tmp_path / "c1")], capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    _torchrun(["-m", "interpbench", *args, "--results", str(tmp_path / "r2"), "--cache-dir", str(tmp_path / "c2")])
    return _record(tmp_path / "r1"), _record(tmp_path / "r2")


@pytest.mark.slow
def test_torchrun_evaluate_equals_one_process(tmp_path):
    """200 Shapes images, a random tiny CLIP judged by the ground truth (a model may not judge
    itself): same metrics to 1e-5."""
    model = "openclip:shapes-vit-tiny/random"
    args = ["evaluate", "-m", model, "--n-images", "200", "--device", "cpu", "-q"]
    a, b = (r["metrics"] for r in _one_and_two_processes(args, tmp_path))
    assert set(a) == set(b) and "clarity" in a and "multimodal_fraction" in a and "zeroshot_mean" in a
    for k, v in a.items():
        if isinstance(v, float):
            assert b[k] == pytest.approx(v, abs=1e-5), k
        else:
            assert b[k] == v, k


# fields that name where or when a run happened, not what it measured
_NOT_NUMBERS = {"timing", "timings", "environment", "device", "host", "path", "paths", "cache_dir", "results_path"}


def _numeric_fields(obj, prefix=""):
    """{json path: value} of every number (bool and None included) in a results record."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in _NOT_NUMBERS:
                out.update(_numeric_fields(v, f"{prefix}/{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_numeric_fields(v, f"{prefix}[{i}]"))
    elif obj is None or isinstance(obj, (int, float)):
        out[prefix] = obj
    return out


@pytest.mark.slow
def test_torchrun_shapes_sparse_equals_one_process_in_every_number(tmp_path):
    """shapes:sparse, ground-truth judge, 300 images: every numeric field of the two results
    files (metrics, intervals and their replicates, controls, settings) agrees to 1e-5."""
    args = ["evaluate", "-m", "shapes:sparse", "--n-images", "300", "--device", "cpu", "-q"]
    a, b = _one_and_two_processes(args, tmp_path)
    fa, fb = _numeric_fields(a), _numeric_fields(b)
    assert set(fa) == set(fb), sorted(set(fa) ^ set(fb))[:20]
    assert any(k.startswith("/intervals/clarity/") for k in fa) and any("/replicates[" in k for k in fa)
    assert len([k for k in fa if k.startswith("/intervals/") and k.endswith("/lo")]) >= 15
    bad = [(k, fa[k], fb[k]) for k in fa
           if not (fa[k] == fb[k] or (isinstance(fa[k], float) and isinstance(fb[k], float)
                                      and abs(fa[k] - fb[k]) <= 1e-5))]
    assert not bad, bad[:20]
