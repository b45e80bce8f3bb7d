"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"  # temporary files are ".NAME.RANDOM.tmp" beside their target


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb"):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    The block writes the temporary file itself (by path), so libraries that want a file
    name (safetensors, torch) work too. On any error the temporary file is removed, and a
    full disk becomes DiskFullError whichever library hit it.
    """
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        yield tmp
        # mkstemp makes the file 0600 whatever the umask; give the result the mode a plain
        # open() would have (0666 minus the umask), after the block in case a library recreated it
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as fh:  # flush to disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        if tmp is not None:
            _remove(tmp)
        if is_disk_full(exc):
            from interpbench.errors import DiskFullError

            raise DiskFullError(path) from exc
        raise


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (/proc), so that
    no other thread can create a file under a temporarily altered umask."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it
    os.umask(mask)
    return mask


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library wrapped it (safetensors raises SafetensorError
    'No space left on device (os error 28)', torch a RuntimeError)."""
    from interpbench.errors import DiskFullError

    seen = 0
    while exc is not None and seen < 8:  # follow the cause chain, bounded
        if isinstance(exc, DiskFullError):
            return False  # already classified; re-raise as is
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_stale_tmp(folder: Path, older_than_s: float = 600.0) -> int:
    """Delete temporary files a killed writer left in `folder`; returns how many.

    A temporary file lives only while one file is written (seconds), so one older than
    `older_than_s` belongs to a dead process; younger ones may be a live writer's and stay.
    """
    import time

    now, removed = time.time(), 0
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
                removed += 1
    return removed


def check_writable_dir(folder: Path, option: str) -> Path:
    """Create `folder` if needed and prove it writable, before any long work starts.

    Checks os.access and then writes and removes a real probe file: root passes os.access
    for any folder, and some file systems (read-only mounts, ACLs) refuse what it allows.
    Raises ConfigError naming the option, the path and the reason; returns the folder."""
    from interpbench.errors import ConfigError

    folder = Path(folder)
    fix = f"pass {option} a folder you can write to"
    existing = folder
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except PermissionError as exc:  # a parent folder that this user may not enter
        raise ConfigError(f"{option} {folder}: no permission to reach {existing}; {fix}.") from exc
    if not existing.is_dir():
        raise ConfigError(f"{option} {folder}: {existing} is a file, not a folder, so nothing can be written "
                          f"under it; {fix}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {folder}: no permission to write in {existing}; {fix}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {folder}: cannot write there ({exc.strerror or exc}); {fix}.") from exc
    return folder
