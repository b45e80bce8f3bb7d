"""Written files get the mode a plain open() would give them: 0666 minus the umask."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from interpbench.ioutils import atomic_write_text, atomic_writer, current_umask


@pytest.fixture
def umask():
    """Set a known umask for one test and restore the caller's afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_text_file_mode_follows_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    target = tmp_path / "results" / "leaderboard.md"
    atomic_write_text(target, "| a |\n")
    assert _mode(target) == expected
    assert not list(target.parent.glob(".*.tmp"))  # no temporary file left behind


def test_library_written_file_mode_follows_umask(tmp_path, umask):
    """safetensors writes by name into the temporary path; the result still follows the umask."""
    umask(0o027)
    target = tmp_path / "codes.safetensors"
    with atomic_writer(target) as tmp:
        save_file({"w": torch.zeros(2)}, tmp)
    assert _mode(target) == 0o640


def test_overwrite_takes_the_current_umask(tmp_path, umask):
    target = tmp_path / "f.txt"
    umask(0o077)
    atomic_write_text(target, "private")
    assert _mode(target) == 0o600
    umask(0o022)
    atomic_write_text(target, "shared")
    assert _mode(target) == 0o644
