"""`interpbench vocab build|list`: rebuild the shipped word lists, or show them.

Errors (InterpbenchError) are left to `interpbench.cli.main.main`, which prints them and
exits with the error's code.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from interpbench.console import output_console

app = typer.Typer(help="Vocabularies for naming features (docs/vocab.md).", no_args_is_help=True)


@app.command("build")
def build(
    out: Path | None = typer.Option(None, "--out", help="Folder to write NAME.txt + NAME.json into "
                                    "(default: the vocab/ folder of this checkout)."),
    wordnet_dir: Path | None = typer.Option(None, "--wordnet-dir", help="Folder with the WordNet 3.0 "
                                            "database files (default: /usr/share/wordnet and other usual places)."),
    only: list[str] | None = typer.Option(None, "--only", help="Build just these (repeatable): "
                                          "shapes, wordnet, common-20k, default."),
) -> None:
    """Regenerate the vocabularies from WordNet (Debian packages) and wordfreq, offline."""
    from interpbench.vocab.build import build_all
    from interpbench.vocab.store import default_build_dir

    target = out if out is not None else default_build_dir()
    built = build_all(target, wordnet_dir=wordnet_dir, names=tuple(only) if only else None)
    table = Table(title=f"built into {target}")
    for col in ("name", "entries", "sha256"):
        table.add_column(col)
    for name, info in built.items():
        table.add_row(name, f"{info['count']:,}", info["sha256"][:16])
    output_console().print(table)


@app.command("list")
def list_(
    folder: Path | None = typer.Option(None, "--dir", help="List the vocabularies in this folder instead."),
) -> None:
    """Show the available vocabularies with their sizes."""
    from interpbench.vocab.store import list_vocabs, read_provenance

    table = Table(title="vocabularies (use a name, or any text file path, with --vocab)")
    for col, justify in (("name", "left"), ("entries", "right"), ("description", "left"), ("path", "left")):
        table.add_column(col, justify=justify)
    for name, count, path in list_vocabs(folder):
        table.add_row(name, f"{count:,}", read_provenance(path).get("description", ""), str(path))
    output_console().print(table)
