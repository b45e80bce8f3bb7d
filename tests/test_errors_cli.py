"""Every user mistake ends the CLI with its documented exit code and a message, no traceback.

The command runs through the real entry point (`interpbench.cli.main.main`), in process
for speed, and once as a subprocess to prove what a user's terminal shows.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interpbench import errors
from interpbench.cli.main import main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def run_cli(argv, monkeypatch, capsys):
    """(exit code, stderr) of `interpbench ARGV` through the real entry point."""
    monkeypatch.setattr(sys, "argv", ["interpbench", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def evaluate_args(model, tmp_path, *extra):
    return ["evaluate", "--model", model, "--quiet", "--offline", "--n-images", "4", "--judge", "groundtruth",
            "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), *extra]


def test_every_error_class_has_a_unique_documented_exit_code():
    classes = errors.error_classes()
    codes = [c.exit_code for c in classes]
    assert len(codes) == len(set(codes)), "two error classes share an exit code"
    assert all(c.fix and c.kind for c in classes)
    assert not set(codes) & (set(errors.OTHER_EXIT_CODES) - {1, 2})  # 1 and 2 are shared on purpose


def test_docs_errors_md_is_generated_from_the_classes():
    assert DOCS.read_text() == errors.errors_markdown(), \
        "docs/errors.md is stale: run `python -m interpbench.errors > docs/errors.md`"
    for cls in errors.error_classes():
        assert f"| {cls.exit_code} | `{cls.__name__}` |" in DOCS.read_text()


def _truncated_safetensors(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "truncated.safetensors"
    save_file({"w": torch.zeros(64, 64)}, str(p))
    p.write_bytes(p.read_bytes()[:1000])  # an interrupted download
    return p


def _hostile_pickle(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    p = tmp_path / "hostile.pt"
    torch.save({"visual.proj": Payload()}, p)
    return p


CASES = {  # name: (model spec builder, extra options, expected class, words the message must hold)
    "unknown scheme": (lambda t: "nonsense:x", (), errors.BadSpecError, ["nonsense", "accepted model specs"]),
    "unknown architecture": (lambda t: "openclip:nosucharch/random", (), errors.BadSpecError, ["nosucharch"]),
    "missing checkpoint": (lambda t: f"openclip:shapes-vit-tiny@{t}/absent.pt", (), errors.MissingFileError,
                           ["absent.pt", "check the path"]),
    "truncated checkpoint": (lambda t: f"openclip:shapes-vit-tiny@{_truncated_safetensors(t)}", (),
                             errors.CorruptFileError, ["truncated.safetensors", "truncated"]),
    "hostile pickle": (lambda t: f"openclip:shapes-vit-tiny@{_hostile_pickle(t)}", (), errors.UnsafeFileError,
                       ["hostile.pt", "Nothing from it was executed"]),
    "unknown SAE format": (lambda t: "sae:nosuch:x@openclip:shapes-vit-tiny/random", (),
                           errors.UnknownFormatError, ["nosuch", "known formats"]),
    "offline, not cached": (lambda t: "openclip:ViT-B-32/openai", (), errors.OfflineError,
                            ["ViT-B-32/openai", "not cached"]),
    "bad data spec": (lambda t: "openclip:shapes-vit-tiny/random", ("--dataset", "imagenet-x"),
                      errors.BadSpecError, ["imagenet-x", "accepted data specs"]),
    "vocabulary missing": (lambda t: "openclip:shapes-vit-tiny/random", ("--vocab", "/nonexistent/words.txt",
                                                                         "--no-zeroshot"),
                           errors.VocabularyError, ["/nonexistent/words.txt", "one word or phrase per line"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_mistake_gives_its_exit_code_and_no_traceback(case, tmp_path, monkeypatch, capsys):
    spec, extra, cls, words = CASES[case]
    code, err = run_cli(evaluate_args(spec(tmp_path), tmp_path, *extra), monkeypatch, capsys)
    assert code == cls.exit_code, err
    assert f"error ({cls.kind}):" in err and "Traceback" not in err
    for w in words:
        assert w in err
    assert not (tmp_path / "pwned").exists()  # the hostile payload never ran
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


def test_debug_flag_shows_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["interpbench", "--debug", *evaluate_args("nonsense:x", tmp_path)])
    with pytest.raises(errors.BadSpecError):
        main()


@pytest.mark.slow  # two interpreter starts with torch: ~30 s on a loaded machine
def test_subprocess_prints_one_message_and_exits_with_the_code(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "interpbench", "evaluate", "--model", "nonsense:x", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == errors.BadSpecError.exit_code
    assert done.stderr.startswith("error (bad spec): bad model spec 'nonsense:x'")
    assert "Traceback" not in done.stderr and done.stdout == ""
    debug = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert debug.returncode != 0 and "BadSpecError" in debug.stderr


def test_full_disk_exits_with_the_disk_full_code(tmp_path, monkeypatch, capsys):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here; tests/test_resume.py injects ENOSPC instead")
    try:
        args = evaluate_args("openclip:shapes-vit-tiny/random", tmp_path, "--no-zeroshot")
        args[args.index("--cache-dir") + 1] = str(tiny)  # the activation cache fills the 8 KiB disk
        code, err = run_cli(args, monkeypatch, capsys)
        leftovers = [p.name for p in tiny.rglob("*") if p.is_file() and p.suffix != ".json"]
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
    assert code == errors.DiskFullError.exit_code, err
    assert "error (disk full):" in err and "no space left" in err and "Traceback" not in err
    assert leftovers == []  # no partial chunk, no temporary file


@pytest.mark.parametrize("argv, expected", [
    (["train", "clip", "dense", "--ablation", "x"], "apply to the sparse preset only, not 'dense'"),
    (["train", "clip", "spurious", "--checkpoints", "x"], "apply to the sparse preset only, not 'spurious'"),
    (["train", "clip", "sparse+"], "expected one of ['dense', 'sparse', 'spurious']"),
])
def test_train_clip_refuses_options_of_another_preset(argv, expected, monkeypatch, capsys):
    code, err = run_cli(argv, monkeypatch, capsys)
    assert code == errors.BadSpecError.exit_code and expected in err
