"""Long runs fail in seconds, not after the evaluation: unwritable output folders are found
before the first forward pass; a cache folder without room for the projected cache is
refused after the first chunk; unreadable images can be skipped and are recorded."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_errors_cli import evaluate_args, run_cli

from interpbench.errors import ConfigError
from interpbench.ioutils import check_writable_dir
from interpbench.results.store import ROUTE_LABELS

ROOT = Path(__file__).resolve().parents[1]


def _chunks(folder: Path) -> list[Path]:
    return sorted(folder.rglob("chunk_*.safetensors"))


def test_results_under_a_regular_file_fails_before_any_extraction(tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").write_text("a file where a folder should be\n")
    args = evaluate_args("shapes:sae", tmp_path)
    args[args.index("--results") + 1] = str(tmp_path / "taken" / "results")
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == ConfigError.exit_code
    assert "--results" in err and "is a file, not a folder" in err and "Traceback" not in err
    assert _chunks(tmp_path / "cache") == []  # nothing was extracted


def test_cache_dir_under_a_regular_file_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="--cache-dir .*is a file, not a folder"):
        check_writable_dir(tmp_path / "f" / "cache", "--cache-dir")
    assert check_writable_dir(tmp_path / "new" / "deep", "--results").is_dir()  # created when possible
    assert list((tmp_path / "new" / "deep").iterdir()) == []  # the probe file is gone


_PROBE = """
import os, sys
from interpbench.errors import ConfigError
from interpbench.ioutils import check_writable_dir
if os.geteuid() == 0:
    os.setgid(65534); os.setuid(65534)  # a non-root user: root ignores permission bits
try:
    check_writable_dir(sys.argv[1], "--results")
except ConfigError as err:
    print("ERR", err)
else:
    print("OK")
"""


@pytest.mark.parametrize("where", ["results", "."])
def test_folder_without_write_permission_is_refused_for_a_non_root_user(where):
    with tempfile.TemporaryDirectory() as d:  # not pytest's tmp_path: its parents are private to root
        locked = Path(d) / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        Path(d).chmod(0o755)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            out = subprocess.run([sys.executable, "-c", _PROBE, str(locked / where)], capture_output=True,
                                 text=True, env=env, timeout=120)
        finally:
            locked.chmod(0o755)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("ERR") and "no permission to write" in out.stdout, out.stdout
        assert list(locked.iterdir()) == []


def test_real_probe_catches_what_os_access_allows(tmp_path):
    """Root passes os.access on a read-only folder; the probe file still proves the folder
    writable (root can write), and a folder removed under us is an error, not a traceback."""
    ok = tmp_path / "ro"
    ok.mkdir()
    ok.chmod(0o555)
    try:
        if os.geteuid() == 0:
            assert check_writable_dir(ok, "--results") == ok  # root really can write there
        else:
            with pytest.raises(ConfigError, match="no permission"):
                check_writable_dir(ok, "--results")
    finally:
        ok.chmod(0o755)


def _folder_with_bad_images(root: Path) -> Path:
    """Two classes of readable PNGs, plus a truncated PNG and a text file named .jpg."""
    import numpy as np
    from PIL import Image

    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * k + (0 if cls == "a" else 120), dtype=np.uint8)).save(
                root / cls / f"{k}.png")
    (root / "a" / "1.png").write_bytes((root / "a" / "1.png").read_bytes()[:30])  # cut mid-header
    (root / "b" / "notes.jpg").write_text("not an image\n")
    return root


def test_skip_unreadable_leaves_out_and_names_the_bad_images(tmp_path):
    from interpbench.data import load_source
    from interpbench.errors import CorruptFileError

    root = _folder_with_bad_images(tmp_path / "imgs")
    plain = load_source(f"folder:{root}", n_images=100)
    with pytest.raises(CorruptFileError, match="--skip-unreadable"):
        [plain.image(i) for i in range(len(plain))]  # without the flag: today's clear error
    src = load_source(f"folder:{root}", n_images=100, skip_unreadable=True)
    assert sorted(Path(p).relative_to(root).as_posix() for p in src.skipped) == ["a/1.png", "b/notes.jpg"]
    assert len(src) == 5 and [src.label(i) for i in range(5)] == [0, 0, 1, 1, 1]
    assert all(src.image(i).size == (8, 8) for i in range(5))
    assert src.identity != plain.identity  # caches never mix runs with different skips


def test_evaluate_records_the_skipped_images(tmp_path, monkeypatch, capsys):
    import json

    root = _folder_with_bad_images(tmp_path / "imgs")
    args = ["evaluate", "--model", "shapes:sae", "--dataset", f"folder:{root}", "--judge", "shapes:dense",
            "--quiet", "--offline", "--bootstrap", "0", "--results", str(tmp_path / "results"),
            "--cache-dir", str(tmp_path / "cache")]
    code, err = run_cli(args, monkeypatch, capsys)
    assert code == 4 and "not a readable image" in err and "--skip-unreadable" in err  # CorruptFileError
    monkeypatch.setattr(sys, "argv", ["interpbench", *args, "--skip-unreadable"])
    from interpbench.cli.main import main

    main()
    [path] = [p for p in (tmp_path / "results").rglob("*.json") if not ROUTE_LABELS.search(p.name)]
    record = json.loads(path.read_text())
    assert record["dataset"]["skipped_unreadable"]["count"] == 2
    assert {Path(p).name for p in record["dataset"]["skipped_unreadable"]["names"]} == {"1.png", "notes.jpg"}
    assert record["metrics"]["n_images"] == 5 and record["settings"]["skip_unreadable"] is True


def test_cache_projection_scales_the_first_chunk_and_refuses_a_full_disk(tmp_path):
    """The projection is the first chunk's file size per item times the pending items; a
    need beyond the disk's real free space is DiskFullError, one within it passes."""
    import shutil

    from test_resume import ToyImages, ToyRep

    from interpbench.errors import DiskFullError
    from interpbench.extraction.extract import check_room, extract_images, projected_cache

    notes = []
    cache = extract_images(ToyRep(), ToyImages(80), tmp_path, batch_size=4, chunk_size=8, num_workers=0,
                           on_estimate=notes.append)
    size0 = cache.path(0).stat().st_size
    need, eta = projected_cache(cache, 0, list(range(1, 10)), seconds=2.0)
    assert need == int(size0 / 8 * 72) and eta == pytest.approx(2.0 / 8 * 72)
    assert len(notes) == 1 and "extracting 80 items" in notes[0] and "GB" in notes[0]  # 9 chunks pending >= 8
    free = shutil.disk_usage(tmp_path).free
    check_room(tmp_path, free // 2, "test")
    with pytest.raises(DiskFullError, match="needs about .* GB more, but the disk has"):
        check_room(tmp_path, free + 10**12, "the activation cache")
