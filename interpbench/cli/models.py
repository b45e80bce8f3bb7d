"""`interpbench models`: adapters, SAE formats, reference models and the curated registry."""

from __future__ import annotations

# Lines are at most this wide when stdout is not a terminal (a pipe, a file, CI logs).
MODELS_PIPE_WIDTH = 100


def models():
    """List adapters (spec schemes), SAE checkpoint formats, shipped reference models and the
    curated registry of public checkpoints (each usable as --model NAME)."""
    from interpbench.console import output_console
    from interpbench.specs import GRAMMAR

    console = output_console(pipe_width=MODELS_PIPE_WIDTH)
    for table in model_tables():
        console.print(table)
    console.print(GRAMMAR)


def _name_column(table, title: str, names) -> None:
    """A column of names a user types: never wrapped or cut, whatever the console width."""
    table.add_column(title, no_wrap=True, min_width=max(map(len, names), default=len(title)))


def _table(title: str, name_title: str, rows: list[tuple[str, str]], value_title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    _name_column(t, name_title, [name for name, _ in rows])
    t.add_column(value_title, overflow="fold")
    for row in rows:
        t.add_row(*row)
    return t


class RegistryListing:
    """One block per registry entry rather than a six-column table: repo paths and notes are
    long (up to 250 characters), and a table either cuts them or squeezes them to a word per
    line. Wrapped to the console's width when printed; no line is padded with spaces."""

    INDENT = "    "

    def __init__(self, entries: dict[str, dict]):
        self.entries = sorted(entries.items())

    def __rich_console__(self, console, options):
        import textwrap

        from rich.text import Text

        width = max(options.max_width - len(self.INDENT), 20)
        yield Text("registry (usable as --model NAME)", style="italic")
        for name, e in self.entries:
            yield Text(name, style="bold")  # never wrapped: a user types it
            facts = (f"format: {e.get('format', '?')} · base: {e.get('base_model', '?')} · "
                     f"verified: {e.get('verified', '')}")
            where = " : ".join(x for x in (e.get("repo"), e.get("file")) if x) or e.get("spec", "")
            note = e.get("note", "") if e.get("spec") else f"(not loadable yet) {e.get('note', '')}"
            for i, paragraph in enumerate((facts, where, note)):
                # hub paths have no spaces: break them anywhere rather than overflow the line
                for line in textwrap.wrap(paragraph, width, break_on_hyphens=False):
                    yield Text(self.INDENT + line, style="dim" if i == 0 else "")


def model_tables() -> list:
    """The renderables `interpbench models` prints (separate so tests can render them narrow)."""
    from interpbench.adapters import ADAPTERS
    from interpbench.adapters.sae_formats import describe_formats
    from interpbench.registry import known_checkpoints
    from interpbench.specs import REFERENCE_DIR, REFERENCE_MODELS

    adapters = _table("adapters (spec schemes)", "scheme", [(f"{k}:", v) for k, v in ADAPTERS.items()], "what")
    formats = _table("SAE formats (sae:FORMAT:LOCATION[?opts]@BASE)", "format",
                     list(describe_formats().items()), "files")
    reference = _table("reference models (shipped)", "spec",
                       [(f"shapes:{n}", "installed" if (REFERENCE_DIR / n).is_dir() else "not built yet")
                        for n in REFERENCE_MODELS], "status")
    return [adapters, formats, reference, RegistryListing(known_checkpoints())]
