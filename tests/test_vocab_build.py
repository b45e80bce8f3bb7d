"""`interpbench vocab build` reproduces the committed vocab/ byte for byte; the files obey their rules.

Opening WordNet with nltk's reader takes 10-30 s, so the fast suite rebuilds only `shapes`
and `common-20k`; the full rebuild (and the real lemmatiser) is marked slow.
"""

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.errors import BadSpecError, VocabularyError
from interpbench.vocab import build, wordnet
from interpbench.vocab.normalise import is_word
from interpbench.vocab.stopwords import STOP_WORDS

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "vocab"
NAMES = ("shapes", "wordnet", "common-20k", "default")


def _have_wordfreq() -> bool:
    try:
        importlib.metadata.version("wordfreq")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _have_wordnet() -> bool:
    try:
        wordnet.locate_wordnet_dir()
        return True
    except VocabularyError:
        return False


needs_wordfreq = pytest.mark.skipif(not _have_wordfreq(), reason="wordfreq not installed (pip install wordfreq)")
needs_wordnet = pytest.mark.skipif(
    not _have_wordnet(), reason=f"WordNet database files absent; install them with: {wordnet.APT_HINT}")


def _lines(name: str) -> list[str]:
    data = (COMMITTED / f"{name}.txt").read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data, name
    return data.decode("utf-8").split("\n")[:-1]


def _assert_same_files(built: Path, names) -> None:
    for name in names:
        for ext in ("txt", "json"):
            assert (built / f"{name}.{ext}").read_bytes() == (COMMITTED / f"{name}.{ext}").read_bytes(), \
                f"{name}.{ext} differs from the committed file: rebuild with `interpbench vocab build` and commit"


@needs_wordfreq
def test_cli_rebuilds_shapes_and_common_byte_for_byte(tmp_path):
    result = CliRunner().invoke(app, ["vocab", "build", "--out", str(tmp_path), "--only", "shapes",
                                      "--only", "common-20k"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    _assert_same_files(tmp_path, ("shapes", "common-20k"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["common-20k.json", "common-20k.txt",
                                                          "shapes.json", "shapes.txt"]


@pytest.mark.slow
@needs_wordfreq
@needs_wordnet
def test_full_rebuild_is_byte_identical_under_another_hash_seed_and_locale(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "12345", "LC_ALL": "C", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "interpbench", "vocab", "build", "--out", str(tmp_path)],
                   env=env, check=True, capture_output=True)
    _assert_same_files(tmp_path, NAMES)


@pytest.mark.slow
@needs_wordnet
def test_wordnet_reader_and_lemmatiser_known_answers():
    with wordnet.open_wordnet() as reader:
        assert reader.get_version() == "3.0"
        assert reader.synset("dog.n.01").lexname() == "noun.animal"  # our lexnames file is right
        assert reader.synset("run.v.01").lexname() == "verb.motion"
        lem = wordnet.make_lemmatiser(reader)
        assert [lem(w) for w in ("dogs", "went", "geese", "better", "hot dogs", "zxqv")] == \
               ["dog", "go", "goose", "better", "hot dog", "zxqv"]
        _, counts = wordnet.first_lemmas(reader)
    assert counts == {"n": 82115, "v": 13767, "a": 18156, "r": 3621}  # WordNet 3.0's synset counts


@pytest.mark.parametrize("name", NAMES)
def test_committed_files_are_sorted_unique_nfc_and_match_their_provenance(name):
    words = _lines(name)
    assert words == sorted(set(words))
    assert all(w == unicodedata.normalize("NFC", w) and w == w.strip() and w for w in words)
    meta = json.loads((COMMITTED / f"{name}.json").read_text(encoding="utf-8"))
    assert meta["name"] == name and meta["count"] == len(words)
    assert meta["sha256"] == hashlib.sha256((COMMITTED / f"{name}.txt").read_bytes()).hexdigest()
    assert meta["build_command"] == "interpbench vocab build" and meta["licence"] and meta["source"]


def test_committed_sizes_and_the_default_rules():
    counts = {n: len(_lines(n)) for n in NAMES}
    assert counts["common-20k"] == 20_000 and counts["shapes"] == 48
    assert 80_000 < counts["wordnet"] < 120_000 and 80_000 < counts["default"] < 120_000
    default = _lines("default")
    assert all(w == w.lower() and is_word(w) and w not in STOP_WORDS for w in default)
    for word in ("dog", "red", "circle", "ice cream", "traffic light", "striped", "checkerboard"):
        assert word in default
    for inflected in ("dogs", "circles"):
        assert inflected not in default
    meta = json.loads((COMMITTED / "default.json").read_text(encoding="utf-8"))
    assert meta["paper_reference_size"] == 98_619
    assert meta["size_vs_paper"] == f"{counts['default']} vs 98619 ({counts['default'] - 98619:+d})"
    wn = json.loads((COMMITTED / "wordnet.json").read_text(encoding="utf-8"))
    assert set(wn["parts_of_speech_kept"]) == {"n", "v", "a", "r"}


def test_vocab_folder_stays_small():
    total = sum(p.stat().st_size for p in COMMITTED.iterdir())
    assert total < 4 * 2**20, f"vocab/ is {total / 2**20:.1f} MiB"


def test_missing_wordnet_names_the_apt_line(tmp_path, monkeypatch):
    with pytest.raises(VocabularyError, match=r"--wordnet-dir .* does not exist.*apt-get install -y "
                                              r"--no-install-recommends wordnet-base wordnet-sense-index"):
        build.build_all(tmp_path / "out", wordnet_dir=tmp_path / "nowhere", names=("wordnet",))
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "index.noun").write_text("", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"partial is missing index\.adj.*index\.sense"):
        build.build_all(tmp_path / "out", wordnet_dir=tmp_path / "partial", names=("default",))
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.delenv("WNHOME", raising=False)
    monkeypatch.setattr(wordnet, "CANDIDATE_DIRS", (str(tmp_path / "nowhere"),))
    with pytest.raises(VocabularyError, match=r"WordNet 3\.0 database files not found.*apt-get install"):
        build.build_all(tmp_path / "out", names=("wordnet",))
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_missing_wordfreq_names_the_pip_line_together_with_wordnet(tmp_path, monkeypatch):
    real_version = importlib.metadata.version

    def version(name):
        if name == "wordfreq":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(VocabularyError, match=r"wordfreq package is not installed.*pip install wordfreq"):
        build.build_all(tmp_path, names=("common-20k",))
    with pytest.raises(VocabularyError) as err:
        build.build_all(tmp_path, wordnet_dir=tmp_path / "nowhere", names=("default",))
    assert "wordnet-sense-index" in str(err.value) and "pip install 'interpbench[vocab]'" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(BadSpecError, match=r"unknown vocabulary name\(s\) \['bogus'\]; buildable"):
        build.build_all(tmp_path, names=("shapes", "bogus"))
