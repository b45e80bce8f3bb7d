"""The metric-validity report: does each leaderboard metric mean what its column says?

From results files only, for every leaderboard column:
(a) gap: each trained model minus its random control (matched by model.control.of, same
    data set and settings), with a 95% interval and a direction-aware verdict (separates /
    control better / does not separate / unknown; leaderboard/verdicts.py, which the
    leaderboard uses too). A metric with no control result has the verdict "unknown", and
    the report prints the command that would produce the controls.
(b) reseed spread: results with the same model.recipe and different model.train_seed
    (same data set and settings): sample standard deviation and range over seeds.
(c) ground truth (Shapes): Spearman rank correlation, over features, between the metric's
    per-feature score in the .features.safetensors sidecar and the feature's best
    ground-truth concept AUROC (sidecar array `gt_best_auroc`).
(d) broken pairing: record["controls"]["shuffled_pairs"][key], the metric with captions
    shuffled; it "moves" when that value lies outside the metric's interval.

The leaderboard computes (a) itself from the results in its folder with the same functions,
so the table and this report always agree. Rows are the leaderboard's contestants
(leaderboard/records.py: no reseed runs, duplicates or decomposition records); reseed runs
feed (b).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from interpbench.errors import InterpbenchError
from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard.columns import COLUMNS
from interpbench.leaderboard.records import column_interval, is_control, not_a_row, select
from interpbench.leaderboard.verdicts import (
    CONTROL_BETTER,
    NO_SEPARATION,
    SEPARATES,
    UNKNOWN,
    column_verdict,
    control_pairs,
    gap,
    missing_commands,
    page_verdicts,
    shown_dir,
)
from interpbench.results.store import load_per_feature, settings_hash

# leaderboard column key -> its per-feature sidecar array (else an array named like the column)
PER_FEATURE = {"clarity": "clarity", "label_correlation_mean": "label_corr", "multimodal_fraction": "modality_score",
               "active_features_pct": "clarity_count"}
GT_ARRAY = "gt_best_auroc"


def _value(record: dict, col) -> tuple[float | None, dict | None]:
    return col.value(record["metrics"]), column_interval(record, col)


def _group(record: dict) -> tuple[str, str]:
    return record["dataset"]["name"], settings_hash(record["settings"])


def _selected(records: list[dict]):
    """Contestants and controls over all data sets (leaderboard/records.py's rules, per data set)."""
    rows = [r for r in records if not_a_row(r) is None]
    by_dataset: dict[str, list[dict]] = {}
    for r in rows:
        by_dataset.setdefault(r["dataset"]["name"], []).append(r)
    sels = [select(group) for _, group in sorted(by_dataset.items())]
    return [r for s in sels for r in s.contestants], [r for s in sels for r in s.controls]


def separation_flags(records: list[dict], columns=COLUMNS, results_dir=None) -> dict[str, str]:
    """Column key -> why the column is not shown to separate every contestant from its controls
    ("verdict: why"); columns that separate, reference columns and columns no contestant has
    are absent."""
    contestants, controls = _selected(records)
    out = {}
    for col in columns:
        v = column_verdict(col, contestants, controls)
        if v.verdict not in (None, SEPARATES):
            out[col.key] = f"{v.verdict}: {v.why}"
    return out


def reseed_spread(records: list[dict], col) -> list[dict]:
    """(b): per (recipe, data set, settings) with >= 2 train seeds: seeds, sd (ddof 1), min, max."""
    groups: dict[tuple, dict[int, float]] = {}
    for r in records:
        m = r["model"]
        v = col.value(r["metrics"])
        if is_control(r) or m.get("recipe") is None or m.get("train_seed") is None or v is None:
            continue
        groups.setdefault((str(m["recipe"]), *_group(r)), {})[int(m["train_seed"])] = v
    out = []
    for (recipe, dataset, _), by_seed in sorted(groups.items()):
        if len(by_seed) >= 2:
            v = np.array([by_seed[s] for s in sorted(by_seed)])
            out.append({"recipe": recipe, "dataset": dataset, "seeds": sorted(by_seed), "sd": float(v.std(ddof=1)),
                        "min": float(v.min()), "max": float(v.max())})
    return out


def gt_agreement(arrays: dict, col) -> dict | None:
    """(c): Spearman rho (scipy) between the column's per-feature score and gt_best_auroc."""
    from scipy.stats import spearmanr

    name = PER_FEATURE.get(col.key, col.key)
    if name not in arrays or GT_ARRAY not in arrays:
        return None
    x, y = np.asarray(arrays[name], dtype=np.float64), np.asarray(arrays[GT_ARRAY], dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return {"rho": float(spearmanr(x[ok], y[ok]).statistic), "n_features": int(ok.sum()), "array": name}


def shuffled_pairs(record: dict, col) -> dict | None:
    """(d): the metric with the pairing broken, and whether it left the metric's interval."""
    shuffled = ((record.get("controls") or {}).get("shuffled_pairs") or {})
    key = next((k for k in col.keys if isinstance(shuffled.get(k), (int, float))), None)
    v, iv = _value(record, col)
    if key is None or v is None:
        return None
    s = float(shuffled[key])
    moves = not (iv["lo"] <= s <= iv["hi"]) if iv else abs(s - v) > 1e-6
    return {"value": v, "shuffled": s, "moves": moves}


def validity_report(records: list[dict], results_dir=None) -> dict:
    """The whole report as JSON-ready data: one entry per column, each with rows per contestant."""
    rows = [r for r in records if not_a_row(r) is None]
    contestants, controls = _selected(rows)
    arrays = {}
    for r in contestants:
        try:
            arrays[r["_path"]] = load_per_feature(r)
        except InterpbenchError:  # a bad sidecar loses (c) for that model only
            arrays[r["_path"]] = {}
    pairs = control_pairs(contestants, controls)
    out = []
    for col in COLUMNS:
        models = []
        for r in sorted(contestants, key=lambda r: (_group(r), r["model"]["spec"])):
            v, iv = _value(r, col)
            gaps = [{"control": c["model"]["spec"], "kind": c["model"]["control"].get("kind"), **g}
                    for t, c in pairs if t is r and (g := gap(t, c, col)) is not None]
            models.append({"model": r["model"]["spec"], "dataset": r["dataset"]["name"], "value": v,
                           "lo": iv["lo"] if iv else None, "hi": iv["hi"] if iv else None, "gaps": gaps,
                           "n_controls": sum(t is r for t, _ in pairs),
                           "gt_agreement": gt_agreement(arrays.get(r["_path"], {}), col),
                           "shuffled_pairs": shuffled_pairs(r, col)})
        verdict = column_verdict(col, contestants, controls)
        out.append({"key": col.key, "title": col.title, "better": col.better, "verdict": verdict.verdict,
                    "separates": None if verdict.verdict in (None, UNKNOWN) else verdict.verdict == SEPARATES,
                    "why": verdict.why or None, "reseed": reseed_spread(rows, col), "models": models})
    return {"method": {"gap": "trained minus control; 95% interval: percentile interval of the paired replicate "
                              "differences when both results kept replicates of the same resamples, else "
                              "difference +- sqrt(h_trained^2 + h_control^2) from each result's own interval",
                       "verdict": "with the column's direction: separates = gap interval strictly on the good "
                                  "side of 0; control better = strictly on the bad side; does not separate = "
                                  "it contains 0; unknown = no interval, or no control result",
                       "reseed": "sample sd (ddof 1) and range over train seeds of one recipe",
                       "gt_agreement": "Spearman rho over features, per-feature score vs best GT concept AUROC",
                       "shuffled_pairs": "metric with captions shuffled; moves = outside the metric's interval"},
            "metrics": out,
            "missing_controls": missing_commands(page_verdicts(COLUMNS, contestants, controls), contestants,
                                                 shown_dir(results_dir))}


def _num(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


_MARK = {SEPARATES: "", NO_SEPARATION: " ✗", CONTROL_BETTER: " ▼ control better", UNKNOWN: " ?", None: ""}


def _gap_text(g: dict) -> str:
    ci = f" [{_num(g['lo'])}, {_num(g['hi'])}]" if g["lo"] is not None else " (no interval)"
    paired = " paired" if g.get("method") == "paired bootstrap" else ""
    return f"{g['kind']}: {g['gap']:+.3f}{ci}{paired}{_MARK[g.get('verdict')]}"


def _no_gap_text(row: dict) -> str:
    if row["n_controls"]:
        return "no gap: its controls copy it by construction or have no value (verdict unknown)"
    return "no control evaluated: verdict unknown"


_SUMMARY = ((SEPARATES, "Separates trained from random (every contestant, right direction)"),
            (CONTROL_BETTER, "A control is better (the gap's interval lies on the wrong side)"),
            (NO_SEPARATION, "Does not separate trained from random (the gap's interval includes 0)"),
            (UNKNOWN, "Verdict unknown (no control result, or no interval)"))


def markdown_report(report: dict) -> str:
    lines = ["# Metric validity", "",
             "Per leaderboard metric and contestant: (a) gap to each random control, trained − control, with a "
             "95% interval and a direction-aware verdict (✗: the interval includes 0, the metric does not "
             "separate trained from random; ▼ control better: the interval lies on the wrong side of 0 for the "
             "column's ↑/↓; ?: no interval; paired: bootstrap of the replicate differences, else the two "
             "intervals combined); (b) spread over training seeds of one recipe; (c) Spearman rho between the "
             "per-feature score and the feature's best ground-truth concept AUROC (Shapes); (d) value with the "
             "image-caption pairing broken. See docs/metrics.md#validity.", "",
             "| metric | verdict | model | value [95%] | (a) gap to control | (b) reseed sd (n seeds) | "
             "(c) rho vs GT AUROC (features) | (d) shuffled pairs |", "|---|---|---|---|---|---|---|---|"]
    for m in report["metrics"]:
        reseed = "; ".join(f"{s['recipe']}: {s['sd']:.3f} ({len(s['seeds'])})" for s in m["reseed"]) or "–"
        for row in m["models"]:
            value = _num(row["value"]) + (f" [{_num(row['lo'])}, {_num(row['hi'])}]" if row["lo"] is not None else "")
            if row["value"] is None:
                gaps = "–"
            else:
                gaps = "; ".join(_gap_text(g) for g in row["gaps"]) or _no_gap_text(row)
            gt = row["gt_agreement"]
            gt_text = f"{gt['rho']:+.3f} ({gt['n_features']})" if gt else "–"
            sh = row["shuffled_pairs"]
            sh_text = f"{_num(sh['shuffled'])} ({'moves' if sh['moves'] else 'does not move'})" if sh else "–"
            verdict = "not ranked" if m["better"] is None else (m["verdict"] or "–")
            lines.append(f"| {m['title']} | {verdict} | `{row['model']}` | {value} | {gaps} | {reseed} | "
                         f"{gt_text} | {sh_text} |")
    lines += ["", "## Verdicts", ""]
    for verdict, words in _SUMMARY:
        these = [m for m in report["metrics"] if m["verdict"] == verdict]
        if verdict == SEPARATES:
            text = ", ".join(m["title"] for m in these) or "no metric"
        else:
            text = "; ".join(f"{m['title']} ({m['why']})" for m in these) or "no metric"
        lines.append(f"- **{words}**: {text}.")
    if report.get("missing_controls"):
        lines += ["", "## Missing controls", "", "Unknown verdicts need control results; these commands produce them "
                  "(then run `interpbench validate-metrics` again):", ""] + [f"    {c}" for c in report["missing_controls"]]
    return "\n".join(lines) + "\n"


def unknown_verdicts(report: dict) -> list[str]:
    """Titles of the ranked metrics whose verdict is unknown (for the CLI's closing line)."""
    return [m["title"] for m in report["metrics"] if m["verdict"] == UNKNOWN]


def write_validity(records: list[dict], out: Path, results_dir=None) -> tuple[list[Path], dict]:
    """Write OUT (Markdown) and OUT with suffix .json, each atomically; returns both paths and
    the report."""
    out = Path(out)
    report = validity_report(records, results_dir)
    json_path = out.with_suffix(".json")
    atomic_write_text(out, markdown_report(report))
    atomic_write_text(json_path, json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return [out, json_path], report
