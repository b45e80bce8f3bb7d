"""One error type per kind of user mistake. The CLI prints `str(err)` and exits with `err.exit_code`.

Each message names the thing at fault, what was expected, and what to do. docs/errors.md
lists every type with its exit code.
"""

from __future__ import annotations

from pathlib import Path


class InterpbenchError(Exception):
    exit_code = 1
    kind = "error"
    fix = "Read the message: it names the input at fault; run again with --debug for the traceback."


class BadSpecError(InterpbenchError, ValueError):
    exit_code = 2
    kind = "bad spec"
    fix = ("Correct the model, data or option value; the message lists the accepted forms "
           "(`interpbench models` lists the registry).")


class MissingFileError(InterpbenchError, FileNotFoundError):
    exit_code = 3
    kind = "missing file"
    fix = "Check the path (relative paths are from the current folder) or create the file first."

    def __init__(self, path: Path | str, expected: str, fix: str):
        super().__init__(f"{path}: file not found; expected {expected}. {fix}")
        self.path = Path(path)


class CorruptFileError(InterpbenchError, ValueError):
    exit_code = 4
    kind = "corrupt file"
    fix = ("Re-download or re-create the file; a truncated download or an interrupted copy is the "
           "usual cause. Damaged cache chunks are recomputed automatically.")

    def __init__(self, path: Path | str, problem: str, fix: str = "re-download or re-create the file"):
        super().__init__(f"{path}: {problem}. {fix}")
        self.path = Path(path)


class ShapeMismatchError(InterpbenchError, ValueError):
    exit_code = 5
    kind = "shape mismatch"
    fix = ("Pair the checkpoint with the model it was trained on (SAE width vs. base CLIP width, "
           "hook site) or fix the config that declares the shapes.")


class UnknownFormatError(InterpbenchError, ValueError):
    exit_code = 6
    kind = "unknown format"
    fix = "Name one of the supported formats listed in the message (see README, SAE formats)."


class OfflineError(InterpbenchError, RuntimeError):
    exit_code = 7
    kind = "offline and not cached"
    fix = ("Run once with network access (or `hf download REPO`) to fill the cache, or point "
           "the spec at a local file.")


class EmptyDatasetError(InterpbenchError, ValueError):
    exit_code = 8
    kind = "empty data set"
    fix = "Check the data spec and --n-images; the source must hold at least one item."


class VocabularyError(InterpbenchError, FileNotFoundError):
    exit_code = 9
    kind = "vocabulary missing"
    fix = ("Build it with `interpbench vocab build`, list the available ones with "
           "`interpbench vocab list`, or pass a text file with one word per line.")


class ConfigError(InterpbenchError, ValueError):
    exit_code = 10
    kind = "invalid config"
    fix = ("Fix the named key in the named JSON file or option: the message gives the expected "
           "type or range.")


class UnsafeFileError(InterpbenchError, ValueError):
    exit_code = 11
    kind = "unsafe file"
    fix = ("Nothing from the file was executed. Convert it to safetensors with code you trust, or "
           "fix the config so that its paths stay inside its folder.")


class NumericalError(InterpbenchError, ValueError):
    exit_code = 12
    kind = "non-finite or invalid values"
    fix = ("Inspect the named item and the checkpoint: NaN/inf usually means corrupt weights or an "
           "overflow; negative features mean the adapter's activation function is wrong.")


class DiskFullError(InterpbenchError, OSError):
    exit_code = 13
    kind = "disk full"
    fix = "Free disk space or point --cache-dir / --results at another disk, then run again."

    def __init__(self, path: Path | str, problem: str = "no space left on device while writing; nothing was written"):
        super().__init__(f"{path}: {problem}. Free disk space or point --cache-dir/--results elsewhere, "
                         "then run again.")


class NotFoundError(InterpbenchError, LookupError):
    exit_code = 14
    kind = "not found"
    fix = ("Nothing in the results matches what was asked (a word no feature is labelled with, say); "
           "the message lists what exists and how to widen the search.")


class JudgeError(InterpbenchError, ValueError):
    exit_code = 15
    kind = "no usable judge"
    fix = ("Pass --judge MODEL_SPEC: a CLIP that is not among the models being ranked "
           "(docs/metrics.md#judge); on Shapes the default ground-truth judge needs no model.")


# Exit codes that do not come from an error class (documented beside them in docs/errors.md).
OTHER_EXIT_CODES = {
    0: ("success", "-"),
    1: ("unexpected internal error (a bug: the traceback is printed)",
        "Report it with the command line and the traceback."),
    2: ("command-line usage error (unknown option, missing value; reported by click)",
        "Run the command with --help."),
    130: ("interrupted (Ctrl-C)", "Run the same command again: finished cache chunks are reused."),
}


def error_classes() -> list[type[InterpbenchError]]:
    """Every error class of the package, ordered by exit code."""
    seen, todo = [], [InterpbenchError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(seen), key=lambda c: (c.exit_code, c.__name__))


def errors_markdown() -> str:
    """docs/errors.md, generated from the classes so the two cannot drift apart.

    Regenerate with `python -m interpbench.errors > docs/errors.md`.
    """
    lines = ["# Errors and exit codes", "",
             "<!-- generated by `python -m interpbench.errors > docs/errors.md`; do not edit by hand -->", "",
             "Every mistake in the input ends the command with a one-paragraph message on stderr, no traceback,",
             "and the exit code below. The message names the file, field or spec at fault, what was expected",
             "and what to do. Add `--debug` before the command (`interpbench --debug evaluate ...`) to see",
             "the full traceback.", "",
             "| exit code | error class | kind | fix |", "|---|---|---|---|"]
    for cls in error_classes():
        lines.append(f"| {cls.exit_code} | `{cls.__name__}` | {cls.kind} | {cls.fix} |")
    lines += ["", "Other exit codes:", "", "| exit code | meaning | fix |", "|---|---|---|"]
    lines += [f"| {code} | {meaning} | {fix} |" for code, (meaning, fix) in sorted(OTHER_EXIT_CODES.items())]
    lines += ["", "Exit code 2 is shared by `BadSpecError` and click's usage errors: both mean that the",
              "command line itself is wrong.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(errors_markdown(), end="")
