"""Validate JSON configs against dataclasses before use: types, unknown keys, ranges."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

from interpbench.errors import ConfigError, CorruptFileError, MissingFileError, UnsafeFileError


def _no_constant(name: str):
    # Python's json accepts NaN/Infinity, which are not JSON and would slip past range checks.
    raise ValueError(f"{name} is not a valid JSON number")


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "a JSON config file", "check the path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptFileError(path, f"not valid JSON ({str(exc)[:200]})",
                               "fix or re-create the file (NaN and Infinity are not allowed)") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def from_dict(cls, data: dict, source: str, *, ignore_unknown: bool = False):
    """Build dataclass `cls` from `data`, naming `source` and the field in every error."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown and not ignore_unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; expected keys from {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing required key {name!r} ({hints[name]})")
            continue
        if not _type_ok(data[name], hints[name]):
            raise ConfigError(f"{source}: key {name!r} must be {hints[name]}, got {data[name]!r}")
        kwargs[name] = data[name]
    try:
        return cls(**kwargs)
    except ValueError as exc:  # range checks in __post_init__
        raise ConfigError(f"{source}: {exc}") from exc


def load_json_config(path: Path, cls, *, ignore_unknown: bool = False):
    return from_dict(cls, read_json(path), str(path), ignore_unknown=ignore_unknown)


def contained_path(folder: Path, name, source: str, what: str = "file name") -> Path:
    """`folder / name` for a name read from a config, refusing any that leaves `folder`.

    A config is data from whoever wrote it: "../../.ssh/id_rsa", an absolute path or a
    symlink pointing outside must not make us read (or write) elsewhere.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ConfigError(f"{source}: {what} must be a non-empty file name, got {name!r}")
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(root):
        raise UnsafeFileError(f"{source}: {what} {name!r} points outside {root}; expected a file inside that "
                              "folder. Nothing was read. Fix the config, or move the file into the folder.")
    return target
