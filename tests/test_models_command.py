"""`interpbench models` fits a 100-column terminal and a pipe, and lists without loading torch."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.cli.models import MODELS_PIPE_WIDTH, model_tables
from interpbench.registry import known_checkpoints


def _notes_words(max_len: int) -> set[str]:
    return {w for e in known_checkpoints().values() for w in e["note"].split() if len(w) < max_len}


def _check_fits(text: str, width: int) -> None:
    lines = text.splitlines()
    assert max(map(len, lines)) <= width, max(lines, key=len)
    words_per_line = {w for line in lines for w in line.split()}
    # every word of every note is printed whole (a squeezed table cut them into pieces)
    assert _notes_words(width - 8) <= words_per_line
    for name in known_checkpoints():
        assert name in [line.strip() for line in lines], name  # each name on a line of its own


def test_models_piped_lines_fit_100_columns():
    out = CliRunner().invoke(app, ["models"])  # stdout is not a terminal here
    assert out.exit_code == 0, out.output
    assert MODELS_PIPE_WIDTH == 100
    _check_fits(out.output, 100)
    for word in ("WolodjaZ/MSAE", "osunlp/SAE_CLIP_24K_ViT-B-16_IN1K", "overcomplete", "control:"):
        assert word in out.output


def test_models_fit_a_100_column_terminal_with_notes_wrapped_by_phrase():
    buf = io.StringIO()
    console = Console(file=buf, width=100, force_terminal=True, color_system=None)
    for renderable in model_tables():
        console.print(renderable)
    text = buf.getvalue()
    _check_fits(text, 100)
    registry = text[text.index("registry (usable as --model NAME)"):].splitlines()[1:]
    # lines of prose, not a word per line: 10 entries fit in a few dozen lines
    assert len(registry) < 6 * len(known_checkpoints())
    assert sum(len(line.split()) for line in registry) / len(registry) > 4


def test_models_does_not_import_torch():
    """Listing names and descriptions needs no model code (torch + open_clip took seconds)."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom interpbench.cli.main import app\n"
            "r = CliRunner().invoke(app, ['models'])\nassert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_format_descriptions_match_the_modules():
    """describe_formats reads DESCRIPTION from the source; it must equal the imported constant."""
    import importlib

    from interpbench.adapters.sae_formats import _MODULES, describe_formats

    got = describe_formats()
    for name, module in _MODULES.items():
        assert got[name] == importlib.import_module(f"interpbench.adapters.sae_formats.{module}").DESCRIPTION
