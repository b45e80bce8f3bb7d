"""Finding and reading vocabularies: shipped names, user files, installed copies, the CLI."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.data.shapes import concept_words
from interpbench.errors import CorruptFileError, VocabularyError
from interpbench.vocab import list_vocabs, load_vocab, vocab_dir
from interpbench.vocab.store import VOCAB_DIR_ENV, package_vocab_dirs

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {"default", "wordnet", "common-20k", "shapes"}


def test_shipped_vocabularies_are_found_in_the_checkout():
    folder = vocab_dir()
    assert folder.resolve() == (REPO / "vocab").resolve()
    names = {name for name, _, _ in list_vocabs()}
    assert SHIPPED <= names


def test_shipped_shapes_vocabulary_is_the_worlds_concept_words():
    vocab = load_vocab("shapes")
    assert set(vocab.words) == set(concept_words())
    assert list(vocab.words) == sorted(vocab.words) and vocab.n_duplicates == 0
    assert vocab.provenance["count"] == len(vocab) == len(set(concept_words()))


def test_list_counts_are_the_line_counts_of_the_files():
    for name, count, path in list_vocabs():
        lines = path.read_bytes().decode("utf-8").split("\n")
        assert lines[-1] == "" and count == len(lines) - 1, name


def test_a_user_file_keeps_order_and_case_and_drops_blank_and_repeated_lines(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes("Red Car\n\n  blue   sky \nred car\nRed Car\ncafe\u0301\r\ncaf\u00e9\n".encode())
    vocab = load_vocab(str(path))
    assert vocab.words == ("Red Car", "blue sky", "red car", "caf\u00e9")
    assert vocab.n_duplicates == 2 and vocab.name == "mine" and vocab.path == path
    assert load_vocab(path).words == vocab.words  # a Path works too


def test_a_user_file_without_txt_suffix_is_read_as_a_path(tmp_path, monkeypatch):
    (tmp_path / "words").write_text("apple\npear\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_vocab("words").words == ("apple", "pear")


def test_a_non_utf8_file_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(CorruptFileError, match="latin1.txt.*not UTF-8.*save the vocabulary as UTF-8"):
        load_vocab(path)


def test_empty_or_missing_files_and_unknown_names_are_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="empty.txt: the vocabulary has no entries"):
        load_vocab(tmp_path / "empty.txt")
    with pytest.raises(VocabularyError, match="nope.txt: vocabulary file not found"):
        load_vocab(str(tmp_path / "nope.txt"))
    with pytest.raises(VocabularyError, match=r"unknown vocabulary 'nope'; available: .*shapes \(48 words\)"):
        load_vocab("nope")


def test_the_environment_variable_comes_first(tmp_path, monkeypatch):
    (tmp_path / "shapes.txt").write_text("only\n", encoding="utf-8")
    monkeypatch.setenv(VOCAB_DIR_ENV, str(tmp_path))
    assert package_vocab_dirs()[0] == tmp_path and vocab_dir() == tmp_path
    assert load_vocab("shapes").words == ("only",)


def test_an_installed_copy_finds_its_packed_vocabularies(tmp_path):
    """The wheel layout: interpbench/vocab/data/ holds copies (pyproject package-data), no repo vocab/."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "interpbench", site / "interpbench", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "reference_models"))
    assert (site / "interpbench" / "vocab" / "data" / "shapes.txt").is_file()  # the symlink was followed
    code = ("from interpbench.vocab import vocab_dir, load_vocab; "
            "print(vocab_dir()); print(len(load_vocab('default')))")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == str(site / "interpbench" / "vocab" / "data")
    assert int(out[1]) == len(load_vocab("default"))


def test_cli_list_shows_names_and_counts():
    result = CliRunner().invoke(app, ["vocab", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, count, _ in list_vocabs():
        assert name in result.output and f"{count:,}" in result.output


def test_cli_list_of_a_missing_folder_is_a_vocabulary_error(tmp_path):
    result = CliRunner().invoke(app, ["vocab", "list", "--dir", str(tmp_path / "none")])
    assert isinstance(result.exception, VocabularyError)
    assert "vocabulary folder not found" in str(result.exception)


def test_build_without_out_outside_a_checkout_asks_for_a_folder(monkeypatch):
    from interpbench.vocab import store

    assert store.default_build_dir().resolve() == (REPO / "vocab").resolve()
    monkeypatch.setattr(store, "_checkout_vocab_dir", lambda: None)
    result = CliRunner().invoke(app, ["vocab", "build", "--only", "shapes"])
    assert isinstance(result.exception, VocabularyError)
    assert "pass --out DIR" in str(result.exception)
