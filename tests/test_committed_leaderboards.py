"""The committed leaderboards (leaderboards/regenerate.sh) keep the promises a reader relies on:
every point inside its own interval, one row per contestant, a named rank, a short headline
table, no evaluation page built from decomposition records, no path outside the repository."""

import csv
import re
from pathlib import Path

import pytest

BOARD = Path(__file__).resolve().parents[1] / "leaderboards"
CSVS = sorted(p for p in BOARD.glob("*.csv") if not p.name.endswith("-reseed.csv"))


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("path", CSVS, ids=lambda p: p.name)
def test_every_point_lies_inside_its_interval(path):
    rows = _rows(path)
    assert rows, path
    checked = 0
    for row in rows:
        for key, v in row.items():
            lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
            if not v or not lo or not hi:
                continue
            v, lo, hi = float(v), float(lo), float(hi)
            # the CSV rounds the ends to 6 decimals; allow exactly that rounding
            assert lo - 5e-7 <= v <= hi + 5e-7, f"{path.name}: {row['model']} {key} = {v} not in [{lo}, {hi}]"
            checked += 1
    assert checked > 20, f"{path.name}: only {checked} intervals"


@pytest.mark.parametrize("path", CSVS, ids=lambda p: p.name)
def test_one_row_per_contestant_and_no_outside_paths(path):
    rows = _rows(path)
    models = [r["model"] for r in rows]
    assert len(models) == len(set(models)), f"{path.name}: duplicate rows"
    for m in models:
        assert "./runs/" not in m and "/tmp/" not in m and not re.search(r"(^|[:@])/", m), m


def test_no_page_names_a_path_outside_the_repository():
    for page in [*BOARD.glob("*.md"), *BOARD.glob("*.csv"), BOARD / "validity.json"]:
        text = page.read_text(encoding="utf-8")
        assert "./runs/" not in text and "/tmp/" not in text and "/work/" not in text, page.name


def test_no_page_is_made_of_decomposition_records():
    assert not list(BOARD.glob("*decomposition*.md")) and not list(BOARD.glob("*decomposition*.csv"))


def test_each_page_names_its_rank_and_opens_with_a_short_headline_table():
    pages = [p for p in BOARD.glob("*.md") if p.stem in {c.stem for c in CSVS}]
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert re.search(r"ranked by|Rank \(`#`\): by|No single rank", text, re.IGNORECASE), page.name
        header = next(line for line in text.splitlines() if line.startswith("| "))
        n_cols = header.count("|") - 1
        assert n_cols <= 10, f"{page.name}: headline table has {n_cols} columns"
