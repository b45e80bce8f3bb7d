"""The one-way flow docs/architecture.md promises, checked on the source: every import
statement of every module (also those inside functions) is parsed with ast.

data -> adapters -> extraction -> metrics -> results -> leaderboard: a package may not
import from a package downstream of it, and no module imports another package's private
(`_name`) functions or modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "interpbench"

# package -> packages it must never import (the ones the flow puts after it, or beside it)
FORBIDDEN = {
    "data": {"adapters", "extraction", "metrics", "evaluation", "results", "leaderboard"},
    "metrics": {"data", "adapters", "extraction", "evaluation", "results", "leaderboard"},
    "results": {"adapters", "extraction", "metrics", "evaluation", "leaderboard"},
    "leaderboard": {"adapters", "extraction", "evaluation"},
}


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem  # top-level modules count as their own


def _module(path: Path) -> list[str]:
    parts = ["interpbench", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) for every import in the file; relative ones resolved."""
    out = []
    package = _module(path) if path.name == "__init__.py" else _module(path)[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [a.name for a in node.names]))
    return [(m, names) for m, names in out if m == "interpbench" or m.startswith("interpbench.")]


def edges():
    for path in sorted(ROOT.rglob("*.py")):
        for module, names in imports(path):
            yield path, module, names


def test_the_parser_sees_known_imports():
    found = {(p.relative_to(ROOT).as_posix(), m) for p, m, _ in edges()}
    assert ("evaluation/runner.py", "interpbench.adapters") in found  # inside a function
    assert ("metrics/topn.py", "interpbench.metrics.inputs") in found  # relative import resolved


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_flow(package):
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p, m, _ in edges()
           if _package(p) == package and m.count(".") >= 1 and m.split(".")[1] in FORBIDDEN[package]]
    assert bad == []


def test_no_private_names_across_packages():
    bad = []
    for path, module, names in edges():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] == _package(path):
            continue
        private = [n for n in names if n.startswith("_")] + [p for p in parts[1:] if p.startswith("_")]
        if private:
            bad.append(f"{path.relative_to(ROOT)} imports {private} from {module}")
    assert bad == []


def test_evaluation_steps_do_not_import_the_runner():
    """runner.py drives the steps; steps.py importing runner back made an import cycle."""
    imported = {m for m, _ in imports(ROOT / "evaluation" / "steps.py")}
    imported |= {f"{m}.{n}" for m, names in imports(ROOT / "evaluation" / "steps.py") for n in names}
    assert "interpbench.evaluation.runner" not in imported
    assert "interpbench.evaluation.steps" in {m for m, _ in imports(ROOT / "evaluation" / "runner.py")} | {
        f"{m}.{n}" for m, names in imports(ROOT / "evaluation" / "runner.py") for n in names}
