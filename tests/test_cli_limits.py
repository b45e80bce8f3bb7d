"""Every numeric option has a range; a value outside it is a usage error naming the option."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from interpbench.cli.limits import LIMITS
from interpbench.cli.main import app


def _numeric_options(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _numeric_options(sub, (*path, name))
        return
    for p in command.params:
        if p.bare_type() in ("int", "float", "list[int]", "list[float]"):
            yield " ".join(path), p


def test_every_numeric_option_has_a_range():
    options = list(_numeric_options(typer.main.get_command(app)))
    assert len(options) > 40  # evaluate, explore, search, decompose, analyze, train...
    missing = [f"{cmd} --{p.name}" for cmd, p in options if p.min is None and p.max is None]
    assert not missing, f"add these to interpbench/cli/limits.py LIMITS: {missing}"
    for cmd, p in options:
        assert (p.min, p.max) == LIMITS[p.name], (cmd, p.name)


@pytest.mark.parametrize("args, option, bound", [
    (["evaluate", "--batch-size", "0"], "'--batch-size'", "greater than or equal to 1"),
    (["evaluate", "--n-images", "0"], "'--n-images'", "greater than or equal to 1"),
    (["evaluate", "--seed", "-1"], "'--seed'", "greater than or equal to 0"),
    (["evaluate", "--bootstrap", "-5"], "'--bootstrap'", "greater than or equal to 0"),
    (["search", "cat", "--model", "shapes:sparse", "--depth", "0"], "'--depth'", "greater than or equal to 1"),
    (["explore", "--model", "shapes:sparse", "--feature", "-1"], "'--feature'", "greater than or equal to 0"),
    (["analyze", "run", "shapes:sparse", "--jaccard", "1.5"], "'--jaccard'", "less than or equal to 1"),
    (["decompose", "heads", "--model", "shapes:dense", "--rank", "0"], "'--rank'", "greater than or equal to 1"),
])
def test_out_of_range_value_is_a_usage_error(args, option, bound):
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", out.output).split())  # rich's error box may wrap the line
    assert option in text and bound in text


def test_console_script_prints_usage_errors_without_traceback():
    """main() handles the exceptions of typer's own copy of click too (it printed a traceback)."""
    for args in (["evaluate", "--batch-size", "0"], ["evaluate", "--no-such-option"]):
        done = subprocess.run([sys.executable, "-m", "interpbench", *args], capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "Error:" in done.stderr
    assert "'--batch-size'" in subprocess.run([sys.executable, "-m", "interpbench", "evaluate", "--batch-size", "0"],
                                              capture_output=True, text=True).stderr
