"""`interpbench models`: adapters, reference models and the curated registry."""

from __future__ import annotations


def models():
    """List adapters (spec schemes), shipped reference models and known public checkpoints."""
    from rich.console import Console
    from rich.table import Table

    from interpbench.adapters import ADAPTERS
    from interpbench.registry import known_checkpoints
    from interpbench.specs import GRAMMAR

    console = Console()
    t = Table(title="adapters (spec schemes)")
    t.add_column("scheme")
    t.add_column("what")
    for k, v in ADAPTERS.items():
        t.add_row(f"{k}:", v)
    console.print(t)
    r = Table(title="registry (usable as --model NAME)")
    for col in ("name", "spec", "format", "base model", "note"):
        r.add_column(col)
    for name, e in sorted(known_checkpoints().items()):
        r.add_row(name, e.get("spec", ""), e.get("format", ""), e.get("base_model", ""), e.get("note", ""))
    console.print(r)
    console.print(GRAMMAR)
