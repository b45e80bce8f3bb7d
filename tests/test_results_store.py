"""The results store: concurrent writers, re-runs, bad files in the folder, sidecars."""

from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pytest

from interpbench.errors import CorruptFileError
from interpbench.results.store import (
    SCHEMA_VERSION,
    load_labels,
    load_per_feature,
    read_results,
    result_stem,
    write_result,
)


def record(spec: str, clarity: float = 0.5, dataset: str = "shapes-eval", n_images: int = 100) -> dict:
    return {"schema_version": SCHEMA_VERSION, "interpbench_version": "0.1.0",
            "model": {"spec": spec, "name": spec, "kind": "sparse-clip"},
            "dataset": {"name": dataset, "spec": "shapes", "identity": {"seed": 0}},
            "settings": {"n_images": n_images, "judge": "groundtruth", "seed": 0}, "seed": 0,
            "metrics": {"clarity": clarity, "l0": 3.0}, "timing": {"wall_time_s": 0.1}, "device": "cpu"}


def _writer(args):
    folder, worker, n = args
    for i in range(n):
        write_result(folder, record(f"m{worker}-{i}", clarity=worker + i / 100),
                     per_feature={"clarity": np.full(4, worker + i, np.float32)},
                     labels={"0": [["red", 0.5]]})
        # every worker also rewrites one shared result: last writer wins, nobody sees half a file
        write_result(folder, record("shared", clarity=0.25))
    return worker


def test_concurrent_writers_lose_nothing(tmp_path):
    workers, n = 4, 6
    with mp.get_context("fork").Pool(workers) as pool:
        assert sorted(pool.map(_writer, [(tmp_path, w, n) for w in range(workers)])) == list(range(workers))
    records, skipped = read_results(tmp_path)
    assert skipped == []
    by_spec = {r["model"]["spec"]: r for r in records}
    assert len(records) == workers * n + 1
    for w in range(workers):
        for i in range(n):
            r = by_spec[f"m{w}-{i}"]
            assert r["metrics"]["clarity"] == pytest.approx(w + i / 100)
            np.testing.assert_array_equal(load_per_feature(r)["clarity"], np.full(4, w + i, np.float32))
    assert by_spec["shared"]["metrics"]["clarity"] == 0.25
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_rerun_replaces_only_its_own_file(tmp_path):
    a = write_result(tmp_path, record("openclip:a/b", clarity=0.1))
    b = write_result(tmp_path, record("openclip:a_b", clarity=0.2))  # same slug, different model
    assert a != b
    b_bytes = b.read_bytes()
    assert write_result(tmp_path, record("openclip:a/b", clarity=0.9)) == a
    assert json.loads(a.read_text())["metrics"]["clarity"] == 0.9
    assert b.read_bytes() == b_bytes
    other = write_result(tmp_path, record("openclip:a/b", n_images=50))  # other settings: own file
    assert other not in (a, b)
    assert len(read_results(tmp_path)[0]) == 3


def test_bad_files_are_reported_by_name_and_skipped(tmp_path):
    good = write_result(tmp_path, record("good"))
    folder = good.parent
    (folder / "broken.json").write_text("{not json")
    (folder / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (folder / "future.json").write_text(json.dumps({**record("future"), "schema_version": 99}))
    (folder / "wrongtype.json").write_text(json.dumps({**record("wt"), "metrics": [1, 2]}))
    (folder / "list.json").write_text("[1, 2]")
    records, skipped = read_results(tmp_path)
    assert [r["model"]["spec"] for r in records] == ["good"]
    reasons = {p.name: why for p, why in skipped}
    assert set(reasons) == {"broken.json", "foreign.json", "future.json", "wrongtype.json", "list.json"}
    assert "not valid JSON" in reasons["broken.json"]
    assert "lacks keys" in reasons["foreign.json"]
    assert "schema_version 99" in reasons["future.json"]
    assert "metrics" in reasons["wrongtype.json"]


def test_malformed_record_is_not_written(tmp_path):
    bad = record("x")
    del bad["metrics"]
    with pytest.raises(ValueError, match="metrics"):
        write_result(tmp_path, bad)
    assert not list(tmp_path.rglob("*.json"))


def test_sidecars_round_trip_and_corruption_is_named(tmp_path):
    path = write_result(tmp_path, record("m", clarity=float("nan")),
                        per_feature={"clarity": [0.5, np.nan], "modality_score": [1.0, 0.0]},
                        labels={"0": [["red", 0.75], ["blue", 0.5]], "1": []})
    assert path.name == result_stem(record("m")) + ".json"
    (r,), _ = read_results(tmp_path)
    assert r["metrics"]["clarity"] is None  # NaN is stored as null, never as an invalid token
    arrays = load_per_feature(r)
    np.testing.assert_array_equal(arrays["modality_score"], [1.0, 0.0])
    assert np.isnan(arrays["clarity"][1])
    assert load_labels(r) == {0: [("red", 0.75), ("blue", 0.5)], 1: []}
    sidecar = path.with_name(r["per_feature_file"])
    sidecar.write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match=sidecar.name):
        load_per_feature(r)
