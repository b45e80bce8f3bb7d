"""`interpbench models`: adapters, SAE formats, reference models and the curated registry."""

from __future__ import annotations


def models():
    """List adapters (spec schemes), SAE checkpoint formats, shipped reference models and the
    curated registry of public checkpoints (each usable as --model NAME)."""
    from rich.console import Console
    from rich.table import Table

    from interpbench.adapters import ADAPTERS
    from interpbench.adapters.openclip_dense import REFERENCE_DIR
    from interpbench.adapters.sae_formats import describe_formats
    from interpbench.registry import known_checkpoints
    from interpbench.specs import GRAMMAR, REFERENCE_MODELS

    console = Console()
    t = Table(title="adapters (spec schemes)")
    t.add_column("scheme")
    t.add_column("what")
    for k, v in ADAPTERS.items():
        t.add_row(f"{k}:", v)
    console.print(t)
    f = Table(title="SAE formats (sae:FORMAT:LOCATION[?opts]@BASE)")
    f.add_column("format")
    f.add_column("files")
    for k, v in describe_formats().items():
        f.add_row(k, v)
    console.print(f)
    ref = Table(title="reference models (shipped)")
    ref.add_column("spec")
    ref.add_column("status")
    for name in REFERENCE_MODELS:
        ref.add_row(f"shapes:{name}", "installed" if (REFERENCE_DIR / name).is_dir() else "not built yet")
    console.print(ref)
    r = Table(title="registry (usable as --model NAME)")
    for col in ("name", "format", "repo / file", "base model", "verified", "note"):
        r.add_column(col, overflow="fold")
    for name, e in sorted(known_checkpoints().items()):
        where = " : ".join(x for x in (e.get("repo"), e.get("file")) if x) or e.get("spec", "")
        r.add_row(name, e.get("format", ""), where, e.get("base_model", ""), str(e.get("verified", "")),
                  e.get("note", "") if e.get("spec") else f"(not loadable yet) {e.get('note', '')}")
    console.print(r)
    console.print(GRAMMAR)
