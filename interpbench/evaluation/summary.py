"""A short rich table of the key numbers after `interpbench evaluate`."""

from __future__ import annotations

COLUMNS = [("clarity", "Clarity"), ("clarity_baseline", "baseline"), ("active_features_pct", "Active F%"),
           ("l0", "L0"), ("multimodal_fraction", "multimodal"), ("label_corr_mean", "label corr"),
           ("gt_coverage", "GT cov."), ("gt_label_accuracy", "GT label acc."), ("zeroshot_mean", "zero-shot"),
           ("fvu", "FVU")]


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def print_summary(records) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="interpbench results")
    table.add_column("model")
    for _, title in COLUMNS:
        table.add_column(title, justify="right")
    for record, _path in records:
        m = record["metrics"]
        table.add_row(record["model"]["name"], *[_fmt(m.get(k)) for k, _ in COLUMNS])
    console = Console()
    console.print(table)
    for record, path in records:
        console.print(f"wrote {path}  ({record['timing']['wall_time_s']:.1f} s)")
