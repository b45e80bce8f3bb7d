"""Nothing foreign runs: no code path unpickles with code execution, hostile pickles are
refused before their payload runs, JSON configs are validated, and names read from
files cannot reach outside their folder."""

import ast
import dataclasses
import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest
import torch

import interpbench
from interpbench.adapters.safe_load import load_pickle_weights
from interpbench.errors import ConfigError, CorruptFileError, UnsafeFileError
from interpbench.validation import contained_path, from_dict, load_json_config, read_json

PACKAGE = Path(interpbench.__file__).parent


def _dangerous(call: ast.Call) -> str | None:
    """Why this call could run code from a file, or None."""
    f = call.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    owner = ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""
    kw = {k.arg: k.value for k in call.keywords}
    if owner in ("pickle", "cPickle", "dill", "joblib", "marshal", "cloudpickle", "shelve") and \
            name in ("load", "loads", "open", "Unpickler"):
        return f"{owner}.{name}"
    if name == "Unpickler":
        return "Unpickler"
    if owner == "torch" and name == "load":
        w = kw.get("weights_only")
        if not (isinstance(w, ast.Constant) and w.value is True):
            return "torch.load without weights_only=True"
    if owner in ("torch.jit", "jit") and name == "load":
        return "torch.jit.load (TorchScript runs code)"
    if owner in ("np", "numpy") and name == "load":
        a = kw.get("allow_pickle")
        if a is not None and not (isinstance(a, ast.Constant) and a.value is False):
            return "np.load with allow_pickle"
    if owner == "yaml" and name in ("load", "unsafe_load", "full_load"):
        return f"yaml.{name}"
    if isinstance(f, ast.Name) and name in ("eval", "exec"):
        return name
    return None


def test_no_code_path_unpickles_with_code_execution():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and (why := _dangerous(node)):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {why}")
    assert found == [], "\n".join(found)
    n_loads = sum("torch.load(" in p.read_text() for p in PACKAGE.rglob("*.py"))
    assert n_loads >= 1  # the scan does see the one restricted torch.load (safe_load.py)


def test_the_scanner_itself_flags_what_it_should():
    bad = ["pickle.load(f)", "pickle.loads(b)", "torch.load(p)", "torch.load(p, weights_only=False)",
           "np.load(p, allow_pickle=True)", "torch.jit.load(p)", "eval(s)", "yaml.load(s)"]
    good = ["torch.load(p, weights_only=True)", "np.load(p)", "np.load(p, allow_pickle=False)", "json.loads(s)",
            "model.eval()"]
    for src in bad:
        assert _dangerous(ast.parse(src).body[0].value), src
    for src in good:
        assert _dangerous(ast.parse(src).body[0].value) is None, src


class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Popen:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (subprocess.Popen, ((["sh", "-c", self.cmd]),))


class _Eval:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (eval, (f"__import__('os').system({self.cmd!r})",))


def _write(kind, payload, path):
    if kind == "torch.save":  # the zip format torch writes today
        torch.save({"W_enc": torch.zeros(2, 2), "cfg": payload}, path)
    else:  # a legacy raw pickle, as old checkpoints are
        path.write_bytes(pickle.dumps({"W_enc": torch.zeros(2, 2), "cfg": payload}, protocol=2))


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle"])
@pytest.mark.parametrize("payload", [_System, _Popen, _Eval])
def test_hostile_pickle_is_refused_and_its_payload_never_runs(kind, payload, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt.pt"
    _write(kind, payload(f"touch {marker}"), path)
    with pytest.raises(UnsafeFileError) as err:
        load_pickle_weights(path)
    assert str(path) in str(err.value) and "Nothing from it was executed" in str(err.value)
    assert not marker.exists()


def test_plain_state_dict_pickle_still_loads(tmp_path):
    torch.save({"W_enc": torch.arange(4.0).reshape(2, 2)}, tmp_path / "ok.pt")
    assert torch.equal(load_pickle_weights(tmp_path / "ok.pt")["W_enc"], torch.arange(4.0).reshape(2, 2))


@pytest.mark.parametrize("fmt,name", [("msae", "16_8_TopKReLU_4_RW_False_False_0.0_x.pth"),
                                      ("overcomplete", "sae.pt")])
def test_hostile_pickle_through_an_sae_format_loader_is_refused(fmt, name, tmp_path):
    from interpbench.adapters.sae_formats import load_sae

    marker = tmp_path / "pwned"
    _write("torch.save", _System(f"touch {marker}"), tmp_path / name)
    with pytest.raises(UnsafeFileError):
        load_sae(fmt, str(tmp_path / name), offline=True)
    assert not marker.exists()


# ---- JSON configs ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Cfg:
    steps: int
    lr: float = 1e-3
    name: str = "x"
    sparse: bool = False

    def __post_init__(self):
        if self.steps < 1 or not 0 < self.lr < 1:
            raise ValueError(f"need steps >= 1 and 0 < lr < 1, got steps={self.steps}, lr={self.lr}")


@pytest.mark.parametrize("data,words", [
    ({"steps": "10"}, ["'steps'", "int", "'10'"]),
    ({"steps": True}, ["'steps'", "True"]),  # a bool is not an int here
    ({"steps": 10, "lr": "fast"}, ["'lr'", "float"]),
    ({"steps": 10, "sparse": 1}, ["'sparse'", "bool"]),
    ({"steps": 10, "stepz": 3}, ["unknown key", "stepz"]),
    ({}, ["missing required key 'steps'"]),
    ({"steps": 0}, ["steps >= 1"]),
    ({"steps": 10, "lr": 5}, ["0 < lr < 1"]),
])
def test_config_values_are_checked_before_use(data, words, tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_json_config(path, _Cfg)
    assert str(path) in str(err.value)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("text", ['{"steps": NaN}', '{"steps": 1, "lr": Infinity}', "{steps: 1}", "\xff\xfe",
                                  "[" * 100_000])
def test_malformed_json_is_a_corrupt_file_error(text, tmp_path):
    path = tmp_path / "cfg.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        read_json(path)


def test_top_level_must_be_an_object(tmp_path):
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        read_json(tmp_path / "c.json")
    assert from_dict(_Cfg, {"steps": 3, "lr": 0.5}, "inline") == _Cfg(steps=3, lr=0.5)


# ---- paths from files stay in their folder -----------------------------------------------

@pytest.mark.parametrize("name", ["../secret", "a/../../secret", "/etc/passwd", "sub/../../secret"])
def test_names_that_leave_the_folder_are_refused(name, tmp_path):
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    with pytest.raises(UnsafeFileError, match="points outside"):
        contained_path(folder, name, "r.json", "per_feature_file")


def test_symlink_out_of_the_folder_is_refused_and_inside_names_resolve(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (tmp_path / "secret").write_text("s")
    (folder / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafeFileError):
        contained_path(folder, "link", "r.json")
    assert contained_path(folder, "a/b.json", "r.json") == (folder / "a" / "b.json").resolve()
    for bad in ("", None, 3, "a\x00b"):
        with pytest.raises(ConfigError):
            contained_path(folder, bad, "r.json")


def test_results_sidecar_names_cannot_escape(tmp_path):
    from interpbench.results.store import load_labels, load_per_feature

    (tmp_path / "secret.json").write_text('{"0": [["password", 1.0]]}')
    record = {"_path": str(tmp_path / "results" / "shapes" / "m.json"), "model": {"spec": "x"},
              "per_feature_file": "../../secret.safetensors", "labels_file": "../../secret.json"}
    with pytest.raises(UnsafeFileError):
        load_labels(record)
    with pytest.raises(UnsafeFileError):
        load_per_feature(record)
