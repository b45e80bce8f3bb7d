"""Interrupt and resume: a killed extraction restarts, recomputes only missing chunks and
ends with results identical to an uninterrupted run. A full disk leaves no partial file.

The representation and source here are built for the test (the Representation and
ImageSource protocols), so runs are fast and their outputs are known exactly.
"""

import errno
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from interpbench.adapters.base import RepresentationMeta
from interpbench.errors import DiskFullError
from interpbench.extraction import cache as cache_mod
from interpbench.extraction.cache import ChunkedCache
from interpbench.extraction.extract import extract_images, iter_image_chunks
from interpbench.ioutils import TMP_SUFFIX, remove_stale_tmp
from interpbench.results.store import ROUTE_LABELS


class ToyImages:
    """n random 4x4 RGB images (values 1..254); `black` lists indices that are all zeros."""

    name = "toy"

    def __init__(self, n: int, seed: int = 0, black: tuple[int, ...] = ()):
        self.n, self.seed, self.black = n, seed, set(black)
        self.identity = {"toy": n, "seed": seed, "black": sorted(black)}

    def __len__(self):
        return self.n

    def image(self, i):
        if i in self.black:
            return Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8))
        rng = np.random.default_rng(self.seed * 100_003 + i)
        return Image.fromarray(rng.integers(1, 255, size=(4, 4, 3), dtype=np.uint8))

    def captions(self, i):
        return None

    def concepts(self, i):
        return None

    @property
    def concept_names(self):
        return None


def to_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


class ToyRep:
    """ReLU features of a fixed random projection; black images can be made to misbehave.

    poison: None, or (output name, value) written into the rows of black images, e.g.
    ("features", nan) or ("embedding", inf) or ("features", -1.0).
    """

    def __init__(self, n_features=24, dim=8, poison=None, delay=0.0, nonnegative=True, zeros=False):
        g = torch.Generator().manual_seed(1)
        self.w_feat, self.w_emb = torch.randn(48, n_features, generator=g), torch.randn(48, dim, generator=g)
        self.poison, self.delay, self.zeros, self.calls = poison, delay, zeros, 0
        self.transform = to_tensor
        self.meta = RepresentationMeta(name="toy", spec="toy:test", kind="dense", source="test", base_model="toy",
                                       sparsity="relu", n_features=n_features, embed_dim=dim,
                                       nonnegative=nonnegative, fingerprint=f"toy-{n_features}-{dim}-{poison}")

    @property
    def n_features(self):
        return self.meta.n_features

    def to(self, device):
        return self

    def _poisoned(self, name, x, out):
        if self.poison and self.poison[0] == name:
            out = out.clone()
            out[x.flatten(1).abs().sum(1) == 0] = self.poison[1]
        return out

    def encode_image_features(self, x):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = torch.relu(x.flatten(1) @ self.w_feat - 3.0) * (0.0 if self.zeros else 1.0)
        return self._poisoned("features", x, out)

    def encode_image_embedding(self, x):
        return self._poisoned("embedding", x, x.flatten(1) @ self.w_emb)

    def encode_text_features(self, texts):
        raise NotImplementedError

    def encode_text_embedding(self, texts):
        return None

    def reconstruct(self, features):
        return None


N, CHUNK, BATCH = 48, 4, 2  # 12 chunks of 4 images, 2 batches each


def extract(root, rep=None, source=None):
    return extract_images(rep or ToyRep(), source or ToyImages(N), root, batch_size=BATCH, chunk_size=CHUNK,
                          num_workers=0)


def chunk_files(cache_root) -> dict[str, tuple[int, int]]:
    """chunk file name -> (inode, mtime_ns): a rewritten chunk gets a new inode (atomic rename)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in Path(cache_root).rglob("chunk_*.safetensors")}


def all_tensors(cache) -> dict[str, torch.Tensor]:
    out = {}
    for c in range(cache.n_chunks):
        for k, v in cache.read(c).tensors.items():
            out[f"{c}/{k}"] = v
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    root = tmp_path_factory.mktemp("uninterrupted")
    cache = extract(root)
    return all_tensors(cache), [f for f, _ in iter_image_chunks(cache, 24)]


def _child(root: str, delay: float) -> None:
    torch.set_num_threads(1)
    extract(Path(root), rep=ToyRep(delay=delay))
    os._exit(0)


def _kill_when(proc, root: Path, n_chunks_done: int, extra_s: float, timeout: float = 30.0) -> None:
    """SIGKILL `proc` `extra_s` seconds after `n_chunks_done` chunk files exist (or it ends)."""
    end = time.time() + timeout
    while len(chunk_files(root)) < n_chunks_done and proc.is_alive() and time.time() < end:
        time.sleep(0.002)
    time.sleep(extra_s)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path, reference):
    ref_tensors, ref_feats = reference
    rng = random.Random(20261127)  # seeded kill points
    ctx = multiprocessing.get_context("fork")  # no re-import of torch per run; the child is a real process
    kills = []
    for target in sorted(rng.sample(range(1, 11), 4)):
        proc = ctx.Process(target=_child, args=(str(tmp_path), 0.004))
        proc.start()
        _kill_when(proc, tmp_path, target, rng.uniform(0.0, 0.012))
        kills.append((target, proc.exitcode, len(chunk_files(tmp_path))))
    assert all(code == -signal.SIGKILL for _, code, _ in kills), kills
    before = chunk_files(tmp_path)
    assert 0 < len(before) < N // CHUNK, kills  # killed mid-way: some chunks done, some not
    rep = ToyRep()
    cache = extract(tmp_path, rep=rep)
    after = chunk_files(tmp_path)
    recomputed = [n for n in after if before.get(n) != after[n]]
    assert sorted(set(after) - set(before)) == sorted(recomputed)  # finished chunks were not rewritten
    assert rep.calls == len(recomputed) * CHUNK // BATCH  # and not even recomputed
    got = all_tensors(cache)
    assert got.keys() == ref_tensors.keys()
    assert all(torch.equal(got[k], ref_tensors[k]) for k in got)
    streamed = [f for f, _ in iter_image_chunks(cache, 24)]
    assert all(torch.equal(a, b) for a, b in zip(streamed, ref_feats, strict=True))
    print(f"kills (target chunks, exit code, chunks on disk): {kills}; recomputed {len(recomputed)} of "
          f"{N // CHUNK} chunks on resume")


def _die_at(point: str, root: str) -> None:
    """Child: SIGKILL itself at a named point inside the third chunk write."""
    torch.set_num_threads(1)
    real_replace, real_save, writes = os.replace, cache_mod.save_file, []

    def save(tensors, path, metadata=None):
        writes.append(path)
        if len(writes) == 3 and point == "mid-write":
            Path(path).write_bytes(b"\x00" * 100)  # half a file in the temporary name
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(tensors, path, metadata=metadata)

    def replace(src, dst):
        if len(writes) == 3 and point == "before-rename":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
        if len(writes) == 3 and point == "after-rename":
            os.kill(os.getpid(), signal.SIGKILL)

    cache_mod.save_file, os.replace = save, replace
    extract(Path(root))
    os._exit(0)


@pytest.mark.parametrize("point", ["mid-write", "before-rename", "after-rename"])
def test_kill_inside_a_chunk_write_leaves_it_complete_or_absent(point, tmp_path, reference):
    proc = multiprocessing.get_context("fork").Process(target=_die_at, args=(point, str(tmp_path)))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    done = 3 if point == "after-rename" else 2
    assert len(chunk_files(tmp_path)) == done
    entry = next(Path(tmp_path).rglob("key.json")).parent
    leftovers = list(entry.glob(f".*{TMP_SUFFIX}"))
    assert len(leftovers) == (0 if point == "after-rename" else 1)  # the killed writer's temporary file
    rep = ToyRep()
    cache = extract(tmp_path, rep=rep)
    assert rep.calls == (N // CHUNK - done) * CHUNK // BATCH
    got = all_tensors(cache)
    assert all(torch.equal(got[k], reference[0][k]) for k in reference[0])
    for p in leftovers:  # swept once old enough to be certainly dead
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_tmp(entry) == len(leftovers) and not list(entry.glob(f".*{TMP_SUFFIX}"))


def test_damaged_chunks_are_recomputed(tmp_path, reference):
    cache = extract(tmp_path)
    files = sorted(Path(cache.dir).glob("chunk_*.safetensors"))
    files[1].write_bytes(files[1].read_bytes()[:-7])  # truncated
    data = bytearray(files[5].read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the values: still parses, fails the checksum
    files[5].write_bytes(bytes(data))
    files[8].write_bytes(b"")  # empty
    assert cache.missing() == [1, 5, 8]
    rep = ToyRep()
    cache = extract(tmp_path, rep=rep)
    assert rep.calls == 3 * CHUNK // BATCH and cache.missing() == []
    got = all_tensors(cache)
    assert all(torch.equal(got[k], reference[0][k]) for k in reference[0])


class _FullDisk:
    """A file object whose writes fail with ENOSPC after `room` bytes, like a full disk."""

    def __init__(self, path, room):
        self.fh, self.room = open(path, "wb"), room

    def write(self, data):
        if len(data) > self.room:
            self.fh.write(data[: self.room])
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def close(self):
        self.fh.close()


def test_enospc_during_a_chunk_write_is_disk_full_and_leaves_nothing(tmp_path, monkeypatch):
    from safetensors.torch import save

    def save_file(tensors, path, metadata=None):  # serialise, then write through the full disk
        fh = _FullDisk(path, room=200)
        try:
            fh.write(save(tensors, metadata=metadata))
        finally:
            fh.close()

    monkeypatch.setattr(cache_mod, "save_file", save_file)
    with pytest.raises(DiskFullError) as err:
        extract(tmp_path)
    assert "chunk_000000.safetensors" in str(err.value) and "no space left" in str(err.value)
    entry = next(Path(tmp_path).rglob("key.json")).parent
    assert sorted(p.name for p in entry.iterdir()) == ["key.json"]  # no chunk, no temporary file


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the injected ENOSPC test "
                    "covers the same path")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_real_full_disk_gives_disk_full_error_and_no_partial_file(tiny_tmpfs):
    rep = ToyRep(n_features=4096, dim=8)  # 4 x 4096 float32 rows per chunk: above 64 KiB once dense
    rep.w_feat = torch.full_like(rep.w_feat, 1.0)  # every feature active: CSR is ~96 KiB per chunk
    with pytest.raises(DiskFullError):
        extract_images(rep, ToyImages(8), tiny_tmpfs, batch_size=4, chunk_size=4, num_workers=0)
    leftovers = [p.name for p in tiny_tmpfs.rglob("*") if p.is_file() and p.name != "key.json"]
    assert leftovers == []
    assert ChunkedCache(tiny_tmpfs / "activations", {}, 1, 1).missing() == [0]  # the cache is still usable


def test_a_cache_that_cannot_fit_stops_after_its_first_chunk(tiny_tmpfs):
    """64 KiB of disk: the first ~17 KiB chunk fits, the projected ten do not; the run stops
    there with DiskFullError instead of filling the disk, and the chunk it wrote is kept."""
    rep = ToyRep(n_features=512, dim=8)
    rep.w_feat = torch.full_like(rep.w_feat, 1.0)  # every feature active
    with pytest.raises(DiskFullError, match="needs about .* GB more, but the disk has"):
        extract_images(rep, ToyImages(40), tiny_tmpfs, batch_size=4, chunk_size=4, num_workers=0)
    assert [p.name for p in tiny_tmpfs.rglob("chunk_*")] == ["chunk_000000.safetensors"]


_KILL_AT_STAGE = """
import os, signal, sys
from interpbench.evaluation import runner
stop, argv = sys.argv[1], sys.argv[2:]
run_stage = runner.StageTimer.__call__
def kill_at(self, name, fn, *args):
    if name == stop:  # the previous stages are done: die here, as a kill -9 would
        os.kill(os.getpid(), signal.SIGKILL)
    return run_stage(self, name, fn, *args)
runner.StageTimer.__call__ = kill_at
sys.argv = ["interpbench", *argv]
from interpbench.cli.main import main
main()
"""


def _numbers(results: Path) -> dict:
    """The results file without its timings: what a resumed run must reproduce exactly."""
    import json

    [path] = [p for p in results.rglob("*.json") if not ROUTE_LABELS.search(p.name)]
    record = json.loads(path.read_text())
    for key in ("timing", "timings"):
        record.pop(key)
    return record


@pytest.mark.slow
def test_sigkill_at_each_stage_boundary_then_resume_equals_uninterrupted(tmp_path):
    """kill -9 as the captions, metrics, counterfactual and interval stages start, each time
    on the cache the previous killed run left; the final run equals an uninterrupted one."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}

    def evaluate(stop: str, name: str):
        args = ["evaluate", "--model", "shapes:sae", "--n-images", "96", "--bootstrap", "20", "--cf-scenes", "4",
                "--quiet", "--offline", "--results", str(tmp_path / name), "--cache-dir", str(tmp_path / f"cache-{name}")]
        return subprocess.run([sys.executable, "-c", _KILL_AT_STAGE, stop, *args], env=env, capture_output=True,
                              text=True, timeout=1200)

    reference = evaluate("none", "reference")
    assert reference.returncode == 0, reference.stderr
    for stage in ("captions", "metrics", "counterfactual", "intervals"):
        killed = evaluate(stage, "resumed")
        assert killed.returncode == -signal.SIGKILL, (stage, killed.stderr)
        assert not list((tmp_path / "resumed").rglob("*.json")), stage  # nothing half-written
    resumed = evaluate("none", "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert _numbers(tmp_path / "resumed") == _numbers(tmp_path / "reference")
