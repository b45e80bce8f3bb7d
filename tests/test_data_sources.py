"""Every data source on small files written here, in the public formats they read."""

from __future__ import annotations

import csv
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from interpbench.data import load_source
from interpbench.errors import (
    BadSpecError,
    CorruptFileError,
    EmptyDatasetError,
    MissingFileError,
    OfflineError,
)


def _png(color, size=8) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), color, dtype=np.uint8))


def _png_bytes(color) -> bytes:
    buf = io.BytesIO()
    _png(color).save(buf, format="PNG")
    return buf.getvalue()


def _pixel(img: Image.Image):
    return tuple(np.asarray(img)[0, 0].tolist())


# ---- folder: ------------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "imgs"
    for cls, color in [("red_thing", (255, 0, 0)), ("blue_thing", (0, 0, 255))]:
        (root / cls).mkdir(parents=True)
        for k in range(3):
            _png((color[0], k * 10, color[2])).save(root / cls / f"{k}.png")
    return root


def test_folder_classes_labels_and_pixels(image_folder):
    src = load_source(f"folder:{image_folder}", n_images=100)
    assert len(src) == 6
    assert src.classes == ["blue thing", "red thing"]  # sorted folder names, "_" read as space
    assert [src.label(i) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    assert _pixel(src.image(0)) == (0, 0, 255) and _pixel(src.image(4)) == (255, 10, 0)
    assert src.captions(0) is None and src.concepts(0) is None
    assert "{c}" in src.templates[0]


def test_folder_subset_is_seeded_and_in_file_order(image_folder):
    a = load_source(f"folder:{image_folder}", n_images=4, seed=3)
    b = load_source(f"folder:{image_folder}", n_images=4, seed=3)
    want = np.sort(np.random.default_rng(3).choice(6, size=4, replace=False))
    assert [str(it.where) for it in a.items] == [str(it.where) for it in b.items]
    assert [it.where.name for it in a.items] == [f"{k % 3}.png" for k in want]
    assert a.identity["n_images"] == 4 and a.identity["n_total"] == 6 and a.identity["seed"] == 3


def test_folder_errors(tmp_path):
    with pytest.raises(MissingFileError, match="one sub-folder"):
        load_source(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(EmptyDatasetError, match="empty"):
        load_source(f"folder:{tmp_path / 'empty'}")


# ---- table: -------------------------------------------------------------------------
def _table_images(tmp_path):
    (tmp_path / "img").mkdir()
    for k in range(3):
        _png((k * 50, 0, 0)).save(tmp_path / "img" / f"{k}.png")


def test_csv_table_relative_paths_and_caption_columns(tmp_path):
    _table_images(tmp_path)
    with open(tmp_path / "t.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "caption", "caption_2"])
        for k in range(3):
            w.writerow([f"img/{k}.png", f"red {k}", f"second {k}" if k else ""])
    src = load_source(f"table:{tmp_path / 't.csv'}")
    assert len(src) == 3
    assert src.captions(0) == ["red 0"] and src.captions(2) == ["red 2", "second 2"]
    assert _pixel(src.image(2)) == (100, 0, 0)
    assert src.classes is None


def test_jsonl_table_with_labels_and_absolute_path(tmp_path):
    _table_images(tmp_path)
    rows = [{"image": "img/0.png", "captions": ["a", "b"], "label": "zebra"},
            {"image": str(tmp_path / "img" / "1.png"), "caption": "c", "label": "ant"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    src = load_source(f"table:{tmp_path / 't.jsonl'}")
    assert src.classes == ["ant", "zebra"] and [src.label(0), src.label(1)] == [1, 0]
    assert src.captions(0) == ["a", "b"] and src.captions(1) == ["c"]
    assert _pixel(src.image(1)) == (50, 0, 0)


def test_table_path_may_not_escape_its_folder(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    _png((1, 2, 3)).save(tmp_path / "outside.png")
    (sub / "t.jsonl").write_text(json.dumps({"image": "../outside.png", "caption": "x"}) + "\n")
    with pytest.raises(CorruptFileError, match=r"t\.jsonl:1.*leaves the folder"):
        load_source(f"table:{sub / 't.jsonl'}")


def test_table_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png"}\nnot json\n')
    with pytest.raises(CorruptFileError, match=r"bad\.jsonl:2"):
        load_source(f"table:{tmp_path / 'bad.jsonl'}")
    (tmp_path / "nohead.csv").write_text("path,caption\na.png,x\n")
    with pytest.raises(CorruptFileError, match="no `image` column"):
        load_source(f"table:{tmp_path / 'nohead.csv'}")
    (tmp_path / "missing.csv").write_text("image,caption\nnope.png,x\n")
    with pytest.raises(MissingFileError, match="nope.png"):
        load_source(f"table:{tmp_path / 'missing.csv'}")


# ---- coco: --------------------------------------------------------------------------
def test_coco_captions(tmp_path):
    (tmp_path / "val").mkdir()
    _png((10, 20, 30)).save(tmp_path / "val" / "000007.png")
    _png((40, 50, 60)).save(tmp_path / "val" / "000003.png")
    ann = {"images": [{"id": 7, "file_name": "000007.png"}, {"id": 3, "file_name": "000003.png"},
                      {"id": 9, "file_name": "uncaptioned.png"}],
           "annotations": [{"id": 1, "image_id": 7, "caption": "a cat "}, {"id": 2, "image_id": 3, "caption": "dog"},
                           {"id": 3, "image_id": 7, "caption": "feline"}]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions.json").write_text(json.dumps(ann))
    src = load_source(f"coco:{tmp_path / 'annotations' / 'captions.json'}?images=../val")
    assert len(src) == 2  # image 9 has no caption: skipped
    assert src.captions(0) == ["dog"] and src.captions(1) == ["a cat", "feline"]  # by image id
    assert _pixel(src.image(0)) == (40, 50, 60)
    with pytest.raises(CorruptFileError, match="COCO captions format"):
        (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
        load_source(f"coco:{tmp_path / 'bad.json'}")


# ---- wds: ---------------------------------------------------------------------------
def _write_shard(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, color, caption in samples:
            for name, data in ((f"{key}.png", _png_bytes(color)), (f"{key}.txt", caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def shards(tmp_path):
    d = tmp_path / "wds"
    d.mkdir()
    _write_shard(d / "shard-000000.tar", [(f"s{k:03d}", (k, 0, 0), f"caption {k}") for k in range(3)])
    _write_shard(d / "shard-000001.tar", [(f"s{k:03d}", (k, 0, 0), f"caption {k}") for k in range(3, 5)])
    return d


def test_webdataset_two_shards(shards):
    for spec in (f"wds:{shards}/shard-{{000000..000001}}.tar", f"wds:{shards}", f"wds:{shards}/*.tar"):
        src = load_source(spec)
        assert len(src) == 5
        assert [src.captions(i) for i in range(5)] == [[f"caption {k}"] for k in range(5)]
        assert [_pixel(src.image(i)) for i in range(5)] == [(k, 0, 0) for k in range(5)]


def test_webdataset_errors(tmp_path, shards):
    import gzip

    (tmp_path / "z.tar").write_bytes(gzip.compress((shards / "shard-000000.tar").read_bytes()))
    with pytest.raises(CorruptFileError, match="uncompressed tar"):
        load_source(f"wds:{tmp_path / 'z.tar'}")
    with pytest.raises(EmptyDatasetError, match="no .tar shards"):
        load_source(f"wds:{tmp_path}/none-*.tar")


# ---- clip_benchmark: and the grammar -----------------------------------------------
def test_clip_benchmark_dummy_through_build_dataset():
    src = load_source("clip_benchmark:dummy")
    assert len(src) == 1 and src.classes == ["blank image", "noisy image"]
    assert src.label(0) == 0 and src.image(0).size == (224, 224) and _pixel(src.image(0)) == (0, 0, 0)


def test_clip_benchmark_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"cifar10.*not under"):
        load_source(f"clip_benchmark:cifar10?root={tmp_path}")
    with pytest.raises(BadSpecError, match="does not know"):
        load_source("cb:no-such-set")


def test_spec_grammar_errors():
    with pytest.raises(BadSpecError, match="accepted data specs"):
        load_source("imagenet:/x")
    with pytest.raises(BadSpecError, match="unknown option"):
        load_source("coco:/x.json?imgs=y")
    with pytest.raises(BadSpecError, match="needs a path"):
        load_source("table:")


def test_table_without_captions_is_refused_naming_file_and_columns(tmp_path):
    _table_images(tmp_path)
    (tmp_path / "nocap.csv").write_text("image,label\nimg/0.png,dog\nimg/1.png,cat\n")
    with pytest.raises(CorruptFileError, match=r"nocap\.csv: header \['image', 'label'\] has no caption column"):
        load_source(f"table:{tmp_path / 'nocap.csv'}")
    (tmp_path / "gap.csv").write_text("image,caption\nimg/0.png,a dog\nimg/1.png,\n")
    with pytest.raises(CorruptFileError, match=r"gap\.csv:3: this row has no caption"):
        load_source(f"table:{tmp_path / 'gap.csv'}")
    rows = [{"image": "img/0.png", "caption": "a"}, {"image": "img/1.png", "label": "cat"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorruptFileError, match=r"t\.jsonl:2: this row has no caption \(fields found: \['image', "
                                               r"'label'\]\).*folder:DIR"):
        load_source(f"table:{tmp_path / 't.jsonl'}")
