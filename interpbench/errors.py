"""One error type per kind of user mistake. The CLI prints `str(err)` and exits with `err.exit_code`.

Each message names the thing at fault, what was expected, and what to do. docs/errors.md
lists every type with its exit code.
"""

from __future__ import annotations

from pathlib import Path


class InterpbenchError(Exception):
    exit_code = 1
    kind = "error"


class BadSpecError(InterpbenchError, ValueError):
    exit_code = 2
    kind = "bad spec"


class MissingFileError(InterpbenchError, FileNotFoundError):
    exit_code = 3
    kind = "missing file"

    def __init__(self, path: Path | str, expected: str, fix: str):
        super().__init__(f"{path}: file not found; expected {expected}. {fix}")
        self.path = Path(path)


class CorruptFileError(InterpbenchError, ValueError):
    exit_code = 4
    kind = "corrupt file"

    def __init__(self, path: Path | str, problem: str, fix: str = "re-download or re-create the file"):
        super().__init__(f"{path}: {problem}. {fix}")
        self.path = Path(path)


class ShapeMismatchError(InterpbenchError, ValueError):
    exit_code = 5
    kind = "shape mismatch"


class UnknownFormatError(InterpbenchError, ValueError):
    exit_code = 6
    kind = "unknown format"


class OfflineError(InterpbenchError, RuntimeError):
    exit_code = 7
    kind = "offline and not cached"


class EmptyDatasetError(InterpbenchError, ValueError):
    exit_code = 8
    kind = "empty data set"


class VocabularyError(InterpbenchError, FileNotFoundError):
    exit_code = 9
    kind = "vocabulary missing"


class ConfigError(InterpbenchError, ValueError):
    exit_code = 10
    kind = "invalid config"


class UnsafeFileError(InterpbenchError, ValueError):
    exit_code = 11
    kind = "unsafe file"


class NumericalError(InterpbenchError, ValueError):
    exit_code = 12
    kind = "non-finite or invalid values"


class DiskFullError(InterpbenchError, OSError):
    exit_code = 13
    kind = "disk full"

    def __init__(self, path: Path | str):
        super().__init__(f"{path}: no space left on device while writing; nothing was written. "
                         "Free disk space or point --cache-dir/--results elsewhere, then run again.")
