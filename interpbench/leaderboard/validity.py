"""The metric-validity report: does each leaderboard metric mean what its column says?

From results files only, for every leaderboard column:
(a) gap: each trained model minus its random control (matched by model.control.of, same
    data set and settings), with a 95% interval. When both intervals keep their bootstrap
    replicates of the same resamples (same method, B and seed: the same images are
    resampled the same way), the interval is the percentile interval of the replicate
    differences (a paired bootstrap); otherwise the two intervals are combined as
    independent normal ones: half-width sqrt(h_t^2 + h_c^2) around the difference. The gap
    "separates" when its interval excludes 0; without intervals only a gap of exactly 0
    counts as not separating.
(b) reseed spread: results with the same model.recipe and different model.train_seed
    (same data set and settings): sample standard deviation and range over seeds.
(c) ground truth (Shapes): Spearman rank correlation, over features, between the metric's
    per-feature score in the .features.safetensors sidecar and the feature's best
    ground-truth concept AUROC (sidecar array `gt_best_auroc`).
(d) broken pairing: record["controls"]["shuffled_pairs"][key], the metric with captions
    shuffled; it "moves" when that value lies outside the metric's interval.

The leaderboard computes (a) itself from the results in its folder (`separation_flags`), so
the table and this report always agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from interpbench.errors import InterpbenchError
from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard.columns import COLUMNS
from interpbench.leaderboard.tables import column_interval, is_control
from interpbench.metrics.bootstrap import percentile_interval
from interpbench.results.store import load_per_feature, settings_hash

# leaderboard column key -> its per-feature sidecar array (else an array named like the column)
PER_FEATURE = {"clarity": "clarity", "label_correlation_mean": "label_corr", "multimodal_fraction": "modality_score",
               "active_features_pct": "clarity_count"}
GT_ARRAY = "gt_best_auroc"


def _value(record: dict, col) -> tuple[float | None, dict | None]:
    return col.value(record["metrics"]), column_interval(record, col)


def _group(record: dict) -> tuple[str, str]:
    return record["dataset"]["name"], settings_hash(record["settings"])


def _paired(it: dict, ic: dict) -> tuple[float, float] | None:
    """Percentile interval of replicate differences, when both results stored replicates of
    the same resamples (same method, B and seed; the caller matched data set and settings)."""
    rt, rc = it.get("replicates"), ic.get("replicates")
    same = all(it.get(k) == ic.get(k) for k in ("method", "b", "seed"))
    if not same or not isinstance(rt, list) or not isinstance(rc, list) or len(rt) != len(rc) or not rt:
        return None
    d = [a - b for a, b in zip(rt, rc, strict=True) if isinstance(a, (int, float)) and isinstance(b, (int, float))]
    return percentile_interval(d, it.get("level", 0.95))


# Metrics a control copies from its target by construction, so their gap is 0 by design and says
# nothing about the metric: random codes keep each input's activation values (same L0) and score
# zero-shot on the target's own embedding; a TopK random-decoder SAE keeps k.
COPIED_BY_CONSTRUCTION = {"random-codes": frozenset({"l0", "zeroshot_mean"}), "random-decoder": frozenset({"l0"})}


def gap(trained: dict, control: dict, col) -> dict | None:
    """(a) for one pair: {"gap", "lo", "hi", "method", "separates"} (None if either lacks the metric,
    or the control copies it from the trained model by construction)."""
    if col.key in COPIED_BY_CONSTRUCTION.get(control["model"]["control"].get("kind"), ()):
        return None
    (vt, it), (vc, ic) = _value(trained, col), _value(control, col)
    if vt is None or vc is None:
        return None
    d = vt - vc
    if it is None or ic is None:
        return {"gap": d, "lo": None, "hi": None, "method": None, "separates": None if d != 0 else False}
    paired = _paired(it, ic)
    if paired is not None:
        lo, hi, method = *paired, "paired bootstrap"
    else:
        h = math.hypot((it["hi"] - it["lo"]) / 2, (ic["hi"] - ic["lo"]) / 2)
        lo, hi, method = d - h, d + h, "combined intervals"
    return {"gap": d, "lo": lo, "hi": hi, "method": method, "separates": not (lo <= 0 <= hi)}


def control_pairs(records: list[dict]) -> list[tuple[dict, dict]]:
    """(trained, control) for every control whose model.control.of names a trained result
    on the same data set with the same settings."""
    trained = {(r["model"]["spec"], *_group(r)): r for r in records if not is_control(r)}
    out = []
    for c in records:
        if is_control(c):
            t = trained.get((c["model"]["control"].get("of"), *_group(c)))
            if t is not None:
                out.append((t, c))
    return sorted(out, key=lambda p: (p[0]["model"]["spec"], p[1]["model"]["spec"]))


def separation_flags(records: list[dict], columns=COLUMNS) -> dict[str, str]:
    """Column key -> the pairs whose gap interval includes 0 (columns that separate every
    pair, or have no pair, are absent; so are reference columns that are not ranked, such as
    the data set's own Clarity, which is the same for every model by construction)."""
    flags = {}
    for col in columns:
        if not col.better:
            continue
        bad = []
        for t, c in control_pairs(records):
            g = gap(t, c, col)
            if g is not None and g["separates"] is False:
                bad.append(f"`{t['model']['spec']}` vs its {c['model']['control'].get('kind', 'control')}")
        if bad:
            flags[col.key] = "the gap's 95% interval includes 0 for " + ", ".join(bad)
    return flags


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


def validity_report(records: list[dict]) -> dict:
    """The whole report as JSON-ready data: one entry per column, each with rows per trained model."""
    arrays = {}
    for r in records:
        if not is_control(r):
            try:
                arrays[r["_path"]] = load_per_feature(r)
            except InterpbenchError:  # a bad sidecar loses (c) for that model only
                arrays[r["_path"]] = {}
    pairs = control_pairs(records)
    out = []
    for col in COLUMNS:
        models = []
        for r in sorted((r for r in records if not is_control(r)), key=lambda r: (_group(r), r["model"]["spec"])):
            v, iv = _value(r, col)
            gaps = [{"control": c["model"]["spec"], "kind": c["model"]["control"].get("kind"), **g}
                    for t, c in pairs if t is r and (g := gap(t, c, col)) is not None]
            models.append({"model": r["model"]["spec"], "dataset": r["dataset"]["name"], "value": v,
                           "lo": iv["lo"] if iv else None, "hi": iv["hi"] if iv else None, "gaps": gaps,
                           "gt_agreement": gt_agreement(arrays.get(r["_path"], {}), col),
                           "shuffled_pairs": shuffled_pairs(r, col)})
        flag = separation_flags(records, (col,)).get(col.key)
        out.append({"key": col.key, "title": col.title, "better": col.better,
                    "separates": flag is None if col.better else None,
                    "flag": flag, "reseed": reseed_spread(records, col), "models": models})
    return {"method": {"gap": "difference of values; 95% interval: percentile interval of the paired replicate "
                              "differences when both results kept replicates of the same resamples, else "
                              "difference +- sqrt(h_trained^2 + h_control^2) from each result's own interval",
                       "reseed": "sample sd (ddof 1) and range over train seeds of one recipe",
                       "gt_agreement": "Spearman rho over features, per-feature score vs best GT concept AUROC",
                       "shuffled_pairs": "metric with captions shuffled; moves = outside the metric's interval"},
            "metrics": out}


def _num(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _gap_text(g: dict) -> str:
    ci = f" [{_num(g['lo'])}, {_num(g['hi'])}]" if g["lo"] is not None else " (no interval)"
    mark = {True: "", False: " ✗", None: " ?"}[g["separates"]]
    paired = " paired" if g.get("method") == "paired bootstrap" else ""
    return f"{g['kind']}: {g['gap']:+.3f}{ci}{paired}{mark}"


def markdown_report(report: dict) -> str:
    lines = ["# Metric validity", "",
             "Per leaderboard metric and trained model: (a) gap to its random control with a 95% interval "
             "(✗: the interval includes 0, the metric does not separate trained from random; ?: no interval; "
             "paired: bootstrap of the replicate differences, else the two intervals combined); "
             "(b) spread over training seeds of one recipe; (c) Spearman rho between the per-feature score "
             "and the feature's best ground-truth concept AUROC (Shapes); (d) value with the image-caption "
             "pairing broken. See docs/metrics.md#validity.", "",
             "| metric | model | value [95%] | (a) gap to control | (b) reseed sd (n seeds) | "
             "(c) rho vs GT AUROC (features) | (d) shuffled pairs |", "|---|---|---|---|---|---|---|"]
    for m in report["metrics"]:
        reseed = "; ".join(f"{s['recipe']}: {s['sd']:.3f} ({len(s['seeds'])})" for s in m["reseed"]) or "–"
        for row in m["models"]:
            value = _num(row["value"]) + (f" [{_num(row['lo'])}, {_num(row['hi'])}]" if row["lo"] is not None else "")
            gaps = "; ".join(_gap_text(g) for g in row["gaps"]) or "no control"
            gt = row["gt_agreement"]
            gt_text = f"{gt['rho']:+.3f} ({gt['n_features']})" if gt else "–"
            sh = row["shuffled_pairs"]
            sh_text = f"{_num(sh['shuffled'])} ({'moves' if sh['moves'] else 'does not move'})" if sh else "–"
            lines.append(f"| {m['title']} | `{row['model']}` | {value} | {gaps} | {reseed} | {gt_text} | {sh_text} |")
    flagged = [m for m in report["metrics"] if m["separates"] is False]
    lines += ["", "Does not separate trained from random: " +
              ("; ".join(f"{m['title']} ({m['flag']})" for m in flagged) if flagged else "none.")]
    return "\n".join(lines) + "\n"


def write_validity(records: list[dict], out: Path) -> list[Path]:
    """Write OUT (Markdown) and OUT with suffix .json, each atomically; returns both paths."""
    out = Path(out)
    report = validity_report(records)
    json_path = out.with_suffix(".json")
    atomic_write_text(out, markdown_report(report))
    atomic_write_text(json_path, json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return [out, json_path]
