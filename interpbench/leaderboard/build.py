"""`interpbench leaderboard`: results folder -> Markdown + CSV tables and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interpbench.errors import InterpbenchError, MissingFileError
from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard import plots
from interpbench.leaderboard.columns import COLUMNS, DOCS_URL
from interpbench.leaderboard.label_routes import route_note
from interpbench.leaderboard.merge import analysis_note, attach_analyses
from interpbench.leaderboard.ranking import Rank, choose_rank
from interpbench.leaderboard.records import Selection, not_a_row, select
from interpbench.leaderboard.reseed import write_reseed
from interpbench.leaderboard.tables import (
    ID_FIELDS,
    csv_text,
    markdown_table,
    overall_rows,
    record_row,
    sort_rows,
)
from interpbench.leaderboard.verdicts import missing_commands, page_verdicts, shown_dir
from interpbench.results.store import load_per_feature, read_results, settings_hash, slug

PLOTS = (("modality-density", "Modality score vs activation density per feature (Sparse CLIP Fig. 3b style)"),
         ("clarity-vs-l0", "Clarity vs L0"),
         ("clarity-distribution", "Per-feature Clarity per model"),
         ("zeroshot-vs-sparsity", "Zero-shot accuracy vs sparsity"))


@dataclass
class LeaderboardReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files not used, and why
    n_records: int = 0
    ranks: list[tuple[str, str | None]] = field(default_factory=list)  # (page, rank column title or None)


def load_records(results_dir: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise MissingFileError(results_dir, "a results folder written by `interpbench evaluate`",
                               "run `interpbench evaluate --results DIR` first, or pass --results")
    records, skipped = read_results(results_dir)
    if not records:
        why = f"; skipped {len(skipped)} unreadable files" if skipped else ""
        raise MissingFileError(results_dir, f"at least one valid results JSON{why}",
                               "run `interpbench evaluate --results DIR` first")
    records, unused = attach_analyses(records)  # `interpbench analyze run` records join their model's row
    rows = [r for r in records if not_a_row(r) is None]
    other = [(Path(r["_path"]), why) for r in records if (why := not_a_row(r)) is not None]
    return rows, skipped + unused + other


def plot_labels(records: list[dict]) -> list[str]:
    """Short display names, made unique with the spec and then the settings hash."""
    names = [r["model"].get("name") or r["model"]["spec"] for r in records]
    if len(set(names)) < len(names):
        names = [r["model"]["spec"] for r in records]
    if len(set(names)) < len(names):
        names = [f"{n} [{settings_hash(r['settings'])}]" for n, r in zip(names, records, strict=True)]
    return names


def dataset_plots(name: str, contestants: list[dict], controls: list[dict], out_dir: Path, stem: str,
                  report: LeaderboardReport) -> None:
    """The page's four plots: contestants in colour, controls grey and after them (plots.py)."""
    # contestants by spec, then controls grouped by the model they control
    contestants = sorted(contestants, key=lambda r: r["model"]["spec"])
    controls = sorted(controls, key=lambda r: (str(r["model"]["control"].get("of")), r["model"]["spec"]))
    records = contestants + controls
    labels = plot_labels(records)
    control_labels = set(labels[len(contestants):])
    arrays = {}
    for label, record in zip(labels, records, strict=True):
        try:
            arrays[label] = load_per_feature(record)
        except InterpbenchError as err:  # a bad sidecar loses this model's feature plots, not the table
            report.skipped.append((Path(record["_path"]), str(err)))
    rows = [{**record_row(r), "model": label} for label, r in zip(labels, records, strict=True)]
    figures = {"modality-density": plots.plot_modality_density(arrays, control_labels, name),
               "clarity-vs-l0": plots.plot_clarity_vs_l0(rows, name),
               "clarity-distribution": plots.plot_clarity_distribution(arrays, control_labels, name, rows),
               "zeroshot-vs-sparsity": plots.plot_zeroshot_vs_sparsity(rows, name)}
    for plot, (fig, _data) in figures.items():
        report.written += plots.save_figure(fig, out_dir / f"{stem}-{plot}")


def _ranked(sel: Selection, results_dir, rank_by: str | None) -> tuple[list[dict], list[dict], dict, Rank]:
    """(contestant rows sorted by rank, control rows, verdicts, rank) of one page's records."""
    verdicts = page_verdicts(COLUMNS, sel.contestants, sel.controls)
    rows = [record_row(r) for r in sel.contestants]
    rank = choose_rank(verdicts, rows, rank_by)
    return sort_rows(rows, rank.col), sort_rows([record_row(r) for r in sel.controls]), verdicts, rank


def _dataset_page(name: str, records: list[dict], stem: str, docs_url: str, results_dir=None,
                  rank_by: str | None = None) -> tuple[str, str, object]:
    sel = select(records)
    rows, controls, verdicts, rank = _ranked(sel, results_dir, rank_by)
    identity = ", ".join(sorted({f"`{settings_hash(r['dataset'].get('identity', ''))}`" for r in records}))
    intro = (f"Data set `{name}` (identity hash {identity}). {judges_line(records)} "
             f"Full precision: [{stem}.csv]({stem}.csv). {analysis_note(records)} {route_note(sel.contestants + sel.controls)} {sel.notes()}")
    text = markdown_table(f"Leaderboard: {name}", rows, ID_FIELDS[:2] + ID_FIELDS[3:], " ".join(intro.split()),
                          docs_url, controls=controls, verdicts=verdicts, rank=rank,
                          commands=missing_commands(verdicts, sel.contestants, shown_dir(results_dir)))
    figs = "\n".join(f"### {title}\n\n![{title}]({stem}-{plot}.png)\n" for plot, title in PLOTS)
    return text + "\n## Plots\n\n" + figs, csv_text(rows, ID_FIELDS, controls, rank.col), rank


def build_leaderboard(results_dir: Path, out_dir: Path, docs_url: str = DOCS_URL,
                      with_plots: bool = True, rank_by: str | None = None) -> LeaderboardReport:
    """Write one table per data set, one overall, CSVs and plots; returns what was written.
    `rank_by`: the column the `#` rank uses (default: leaderboard/ranking.py's rule)."""
    records, skipped = load_records(results_dir)
    out_dir = Path(out_dir)
    report = LeaderboardReport(skipped=list(skipped), n_records=len(records))
    by_dataset: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (r["dataset"]["name"], r["model"]["spec"], settings_hash(r["settings"]))):
        by_dataset.setdefault(r["dataset"]["name"], []).append(r)
    index = ["# interpbench leaderboards", "", "- [Overall](overall.md) ([CSV](overall.csv))"]
    selections = {name: select(group) for name, group in by_dataset.items()}
    for name, group in by_dataset.items():
        stem = slug(name)
        page, table_csv, rank = _dataset_page(name, group, stem, docs_url, results_dir, rank_by)
        report.ranks.append((name, rank.col.title if rank.col else None))
        report.written += _write(out_dir, stem, page, table_csv)
        if with_plots:
            sel = selections[name]
            dataset_plots(name, sel.contestants, sel.controls, out_dir, stem, report)
        index.append(f"- [{name}]({stem}.md) ([CSV]({stem}.csv))")
        reseed = write_reseed(out_dir, stem, name, group, docs_url)  # only where reseeded models exist
        report.written += reseed
        index += [f"  - [reseed stability]({stem}-reseed.md) ([CSV]({stem}-reseed.csv))"] if reseed else []
    contestants = [r for sel in selections.values() for r in sel.contestants]
    controls = [r for sel in selections.values() for r in sel.controls]
    verdicts = page_verdicts(COLUMNS, contestants, controls)
    rows = overall_rows([record_row(r) for r in contestants])
    rank = choose_rank(verdicts, rows, rank_by)
    rows = sort_rows(rows, rank.col)
    control_rows = overall_rows([record_row(r) for r in controls])
    intro = ("Mean of each metric over a model's results on all data sets (column `datasets`); "
             f"intervals only where a model has one result. {judges_line(records)} {route_note(contestants + controls)}").rstrip()
    ids = ("model", "kind", "datasets")
    page = markdown_table("Leaderboard: overall", rows, ids, intro, docs_url, controls=control_rows,
                          verdicts=verdicts, rank=rank,
                          commands=missing_commands(verdicts, contestants, shown_dir(results_dir)))
    report.written += _write(out_dir, "overall", page, csv_text(rows, ids, control_rows, rank.col))
    report.ranks.append(("overall", rank.col.title if rank.col else None))
    if (out_dir / "validity.md").is_file():  # written by `interpbench validate-metrics`
        index.append("- [Metric validity](validity.md) ([JSON](validity.json))")
    # other reports that live in the same folder (analyses/, decomposition/) get a link too
    index += [f"- [{d.name}]({d.name}/README.md)" for d in sorted(out_dir.iterdir())
              if d.is_dir() and (d / "README.md").is_file()]
    atomic_write_text(out_dir / "README.md", "\n".join(index) + "\n")
    report.written.append(out_dir / "README.md")
    return report


def judges_line(records: list[dict]) -> str:
    """Who judged Clarity and label correlation (also the `judge` column): a judge that is also
    a ranked model would score that model in its own embedding space."""
    judges = sorted({str(r["settings"].get("judge", "")) for r in records})
    return f"Judge (Clarity, label correlation): {', '.join(f'`{j}`' for j in judges)}."


def _write(out_dir: Path, stem: str, page: str, table_csv: str) -> list[Path]:
    md, csv_path = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    atomic_write_text(md, page)
    atomic_write_text(csv_path, table_csv)
    return [md, csv_path]
