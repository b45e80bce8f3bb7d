"""`interpbench models`: adapters, SAE formats, reference models and the curated registry."""

from __future__ import annotations


def models():
    """List adapters (spec schemes), SAE checkpoint formats, shipped reference models and the
    curated registry of public checkpoints (each usable as --model NAME)."""
    from interpbench.console import output_console
    from interpbench.specs import GRAMMAR

    console = output_console()
    for table in model_tables():
        console.print(table)
    console.print(GRAMMAR)


def _name_column(table, title: str, names) -> None:
    """A column of names a user types: never wrapped or cut, whatever the console width."""
    table.add_column(title, no_wrap=True, min_width=max(map(len, names), default=len(title)))


def model_tables() -> list:
    """The four rich tables `interpbench models` prints (separate so tests can render them narrow)."""
    from rich.table import Table

    from interpbench.adapters import ADAPTERS
    from interpbench.adapters.openclip_dense import REFERENCE_DIR
    from interpbench.adapters.sae_formats import describe_formats
    from interpbench.registry import known_checkpoints
    from interpbench.specs import REFERENCE_MODELS

    t = Table(title="adapters (spec schemes)")
    _name_column(t, "scheme", [f"{k}:" for k in ADAPTERS])
    t.add_column("what")
    for k, v in ADAPTERS.items():
        t.add_row(f"{k}:", v)
    f = Table(title="SAE formats (sae:FORMAT:LOCATION[?opts]@BASE)")
    formats = describe_formats()
    _name_column(f, "format", formats)
    f.add_column("files")
    for k, v in formats.items():
        f.add_row(k, v)
    ref = Table(title="reference models (shipped)")
    _name_column(ref, "spec", [f"shapes:{name}" for name in REFERENCE_MODELS])
    ref.add_column("status")
    for name in REFERENCE_MODELS:
        ref.add_row(f"shapes:{name}", "installed" if (REFERENCE_DIR / name).is_dir() else "not built yet")
    r = Table(title="registry (usable as --model NAME)")
    entries = sorted(known_checkpoints().items())
    _name_column(r, "name", [name for name, _ in entries])
    for col in ("format", "repo / file", "base model", "verified", "note"):
        r.add_column(col, overflow="fold")
    for name, e in entries:
        where = " : ".join(x for x in (e.get("repo"), e.get("file")) if x) or e.get("spec", "")
        r.add_row(name, e.get("format", ""), where, e.get("base_model", ""), str(e.get("verified", "")),
                  e.get("note", "") if e.get("spec") else f"(not loadable yet) {e.get('note', '')}")
    return [t, f, ref, r]
