"""The `#` rank of a leaderboard page and the columns of its headline table.

The rank is a claim that one representation is more interpretable than another, so it uses
a column whose evidence supports it (docs/metrics.md#ranking): by default the first column of
the documented rank order (columns.RANK_ORDER) that separates every ranked model from its
controls in the right direction (leaderboard/verdicts.py). When no column does, the page has
no single rank and says why. `--rank-by COLUMN` ranks by the user's choice, and the page says
so, with the column's verdict when it is not "separates".
"""

from __future__ import annotations

from dataclasses import dataclass

from interpbench.leaderboard.columns import (
    COLUMNS,
    HEADLINE_ALWAYS,
    MAX_HEADLINE_METRICS,
    RANK_ORDER,
    find_column,
)
from interpbench.leaderboard.verdicts import SEPARATES, UNKNOWN, ColumnVerdict


@dataclass
class Rank:
    col: object | None  # None: no single rank
    text: str  # the page header's sentence on what `#` means


def _ok(v: ColumnVerdict, rows: list[dict]) -> bool:
    """Every ranked row has the column, and it separates each from its controls."""
    return v.verdict == SEPARATES and all(r.get(v.col.key) is not None for r in rows)


def choose_rank(verdicts: dict[str, ColumnVerdict], rows: list[dict], rank_by: str | None = None) -> Rank:
    order = ", ".join(c.title for c in RANK_ORDER)
    how = ("Rows share a rank unless another row's 95% interval on that column lies wholly above (↑) or below (↓) "
           "theirs. Choose another column with `interpbench leaderboard --rank-by COLUMN`.")
    if rank_by is not None:
        col = find_column(rank_by)
        v = verdicts.get(col.key)
        text = (f"**Rank (`#`): by {col.title}{col.arrow}**, chosen with `--rank-by {col.key}`; rows share a rank "
                "unless another row's 95% interval lies wholly on the better side of theirs.")
        if v is None or not _ok(v, rows):
            state = v.verdict if v is not None and v.verdict else "not measured"
            why = f" ({v.short})" if v is not None and v.verdict else ""
            text += (f" Caution: on this page {col.title} has the verdict *{state}*{why}, so this order is no "
                     "evidence that one representation is more interpretable than another.")
        return Rank(col, text)
    for col in RANK_ORDER:
        if col.key in verdicts and _ok(verdicts[col.key], rows):
            return Rank(col, f"**Rank (`#`): by {col.title}{col.arrow}**, the first column in the documented "
                             f"order ({order}) that separates every ranked model from its controls in the right "
                             f"direction (see the footnote and docs/metrics.md#ranking). {how}")
    reasons = "; ".join(f"{c.title}: {_state(verdicts.get(c.key))}" for c in RANK_ORDER)
    return Rank(None, f"**No single rank**: no column in the rank order separates every ranked model from its "
                      f"controls in the right direction ({reasons}). Rows are in alphabetical order. Choose a column "
                      "with `interpbench leaderboard --rank-by COLUMN`.")


def _state(v: ColumnVerdict | None) -> str:
    return "not measured" if v is None else v.short


def sort_by_rank(rows: list[dict], col) -> list[dict]:
    """Best first by `col` (its direction), rows without the value last; no column: by model."""
    def key(r):
        v = r.get(col.key) if col is not None else None
        return (v is None, 0.0 if v is None else (-v if col.better == "max" else v), r["model"],
                str(r.get("settings", "")))

    return sorted(rows, key=key)


def headline_columns(verdicts: dict[str, ColumnVerdict], rows: list[dict], rank_col=None) -> list:
    """At most MAX_HEADLINE_METRICS columns, in table order: zero-shot, L0 and reconstruction,
    the rank column, the columns that separate (rank order first), then, while there is room,
    rank-order columns whose verdict is unknown (no controls); never one where a control is
    better or the gap includes 0. Columns no row has are left out."""
    present = {c.key for c in COLUMNS if any(r.get(c.key) is not None for r in rows)}
    state = {k: v.verdict for k, v in verdicts.items()}
    separating = [c for c in COLUMNS if state.get(c.key) == SEPARATES]
    separating.sort(key=lambda c: (c.rank is None, c.rank or 0))
    unknown = [c for c in RANK_ORDER if state.get(c.key) == UNKNOWN]
    chosen: list[str] = []
    for col in [*(c for c in COLUMNS if c.key in HEADLINE_ALWAYS), *([rank_col] if rank_col else []),
                *separating, *unknown]:
        if col.key in present and col.key not in chosen and len(chosen) < MAX_HEADLINE_METRICS:
            chosen.append(col.key)
    return [c for c in COLUMNS if c.key in chosen]
