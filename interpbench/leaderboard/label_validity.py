"""Label validity: do the vocabulary labels of each route mean something? (docs/metrics.md#label-validity)

From the results files alone (`record["label_routes"]`, written by `interpbench evaluate`), per
data set, model and labelling route (text, decoder, images):

- GT label accuracy, label correlation and CF selectivity, each with its 95% interval;
- agreement between routes: the share of features labelled by both whose top words name the
  same ground-truth concept (`label_routes.agreement`);
- the same numbers for every control of the model (random codes, random decoder, untrained),
  and each gap trained minus control with its interval (`validity.gap`: paired bootstrap of the
  replicates when both results share the resamples), read with its direction: all three are
  higher-is-better, so labels **beat** the control only when the gap's interval lies above 0;
  "control better" when it lies below 0; "no separation" when it contains 0.

`interpbench validate-metrics` appends this as its own section to validity.md and under the key
"label_validity" of validity.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard.columns import Column
from interpbench.leaderboard.records import is_control, not_a_row, select
from interpbench.leaderboard.verdicts import CONTROL_BETTER, NO_SEPARATION, SEPARATES, control_pairs, gap

METRICS = (("gt_label_accuracy", "GT label acc."), ("label_corr_mean", "label corr."),
           ("label_corr_matched", "label corr.@n"), ("cf_selectivity", "CF select."))
ROUTES = ("text", "decoder", "images")


def _column(key: str, title: str) -> Column:
    return Column((key,), title, "max", "label-validity", "")


SHUFFLED = "shuffled labels"


def _route_record(record: dict, route: str, part: str = "routes") -> dict | None:
    """A record-shaped view of one route's label metrics (so validity.gap can read it); part
    "shuffled": the route's shuffled-labels control, stored in the same record."""
    info = ((record.get("label_routes") or {}).get(part) or {}).get(route)
    if not isinstance(info, dict):
        return None
    model = record["model"] if part == "routes" else {**record["model"], "control": {"kind": SHUFFLED}}
    return {"model": model, "metrics": info.get("metrics") or {}, "intervals": info.get("intervals") or {}}


def _gaps(view: dict, cview: dict, kind: str) -> list[dict]:
    out = []
    for key, title in METRICS:
        g = gap(view, cview, _column(key, title))
        if g is not None:
            out.append({"control": kind, "metric": key, "gap": g["gap"], "lo": g["lo"], "hi": g["hi"],
                        "verdict": verdict(g)})
    return out


# the direction-aware verdict of verdicts.gap, in this section's words ("?": no interval)
WORDS = {SEPARATES: "beats", CONTROL_BETTER: "control better", NO_SEPARATION: "no separation"}


def verdict(g: dict | None) -> str | None:
    """'beats' / 'control better' / 'no separation' / '?' (no interval) for a gap from verdicts.gap."""
    if g is None:
        return None
    return "?" if g["lo"] is None else WORDS[g["verdict"]]


def _values(view: dict) -> dict:
    out = {}
    for key, _ in METRICS:
        v, iv = view["metrics"].get(key), view["intervals"].get(key) or {}
        out[key] = {"value": v, "lo": iv.get("lo"), "hi": iv.get("hi")}
    return out


def _rows(records: list[dict]) -> list[dict]:
    """The leaderboard's rows: contestants and controls of each data set, without decomposition
    or analysis records, reseed runs (the reseed view has them) or duplicate weights."""
    by_dataset: dict[str, list[dict]] = {}
    for r in records:
        if not_a_row(r) is None:
            by_dataset.setdefault(r["dataset"]["name"], []).append(r)
    return [r for group in by_dataset.values() for sel in [select(group)] for r in sel.contestants + sel.controls]


def label_validity(records: list[dict]) -> dict:
    """JSON-ready report: one row per (model, route), controls included, with gaps for trained rows."""
    records = _rows(records)
    controls_of: dict[int, list[dict]] = {}
    for t, c in control_pairs([r for r in records if not is_control(r)], [r for r in records if is_control(r)]):
        controls_of.setdefault(id(t), []).append(c)
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"]["name"], is_control(r), r["model"]["spec"])):
        lr = r.get("label_routes") or {}
        for route in ROUTES:
            view = _route_record(r, route)
            if view is None:
                continue
            row = {"dataset": r["dataset"]["name"], "model": r["model"]["spec"], "route": route,
                   "primary": lr.get("primary") == route, "control": (r["model"].get("control") or {}).get("kind"),
                   "values": _values(view),
                   "agreement": {k: v for k, v in (lr.get("agreement") or {}).items() if route in k.split("~")},
                   "gaps": [], "shuffled_gaps": []}
            for c in controls_of.get(id(r), []):
                cview = _route_record(c, route)
                if cview is not None:
                    row["gaps"] += _gaps(view, cview, c["model"]["control"].get("kind"))
            shuffled = _route_record(r, route, "shuffled")
            if shuffled is not None:  # the same features with each other's labels: controls too
                row["shuffled_gaps"] = _gaps(view, shuffled, SHUFFLED)
            rows.append(row)
    return {"method": "per route: label metrics with 95% intervals; gap = trained - control (validity.gap); "
                      "beats: gap interval above 0; control better: below 0; no separation: contains 0; "
                      "shuffled_gaps: the same labels handed to other features of the same model",
            "rows": rows, "summary": summary(rows), "summary_shuffled": summary(rows, "shuffled_gaps")}


def summary(rows: list[dict], which: str = "gaps") -> dict:
    """route -> metric -> counts of verdicts over every (model, control) gap (which="gaps") or
    every row's gap to its own shuffled labels (which="shuffled_gaps")."""
    out: dict = {}
    for row in rows:
        for g in row.get(which, []):
            counts = out.setdefault(row["route"], {}).setdefault(g["metric"], {})
            counts[g["verdict"]] = counts.get(g["verdict"], 0) + 1
    return out


def _gap_text(gaps: list[dict], name: bool = True) -> str:
    return "; ".join((f"{g['control']} " if name else "") + f"{dict(METRICS)[g['metric']]} {g['gap']:+.3f}"
                     + (f" [{_num(g['lo'])}, {_num(g['hi'])}]" if g["lo"] is not None else "")
                     + f" {g['verdict']}" for g in gaps) or "–"


def _summary_text(counts: dict) -> str:
    return "; ".join(f"{route} {dict(METRICS)[m]}: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
                     for route, ms in counts.items() for m, c in ms.items())


def _num(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _cell(v: dict) -> str:
    return _num(v["value"]) + (f" [{_num(v['lo'])}, {_num(v['hi'])}]" if v["lo"] is not None else "")


def markdown_section(report: dict) -> str:
    lines = ["", "## Label validity (every labelling route)", "",
             "Per model and route (docs/metrics.md#label-routes): GT label accuracy, label correlation, "
             "frequency-matched label correlation (features active on at least n images) and CF "
             "selectivity with their 95% intervals; agreement = share of features labelled by two routes whose top "
             "words name the same ground-truth concept (n features). Two kinds of gap, each value minus control "
             "(beats: interval above 0; control better: below 0; no separation: contains 0): **vs shuffled labels** "
             "hands the same labels to other features of the same model, so it asks whether the labels describe "
             "their own features (every row, controls included); **gaps to controls** compare with the random-codes, "
             "random-decoder and untrained representations labelled the same way, so they ask whether the trained "
             "features are easier to name than random ones. Controls' own rows are marked. * = the model's primary "
             "route.", "",
             "| data set | model | route | " + " | ".join(t for _, t in METRICS) + " | agreement | vs shuffled labels "
             "| gaps to controls |",
             "|---|---|---|" + "---|" * len(METRICS) + "---|---|---|"]
    for row in report["rows"]:
        model = f"`{row['model']}`" + (" (control)" if row["control"] else "")
        agree = "; ".join(f"{k} {_num(v['share'])} ({v['n']})" for k, v in row["agreement"].items()) or "–"
        vals = [_cell(row["values"][k]) for k, _ in METRICS]
        lines.append(f"| {row['dataset']} | {model} | {row['route']}{' *' if row['primary'] else ''} | "
                     + " | ".join(vals) + f" | {agree} | {_gap_text(row.get('shuffled_gaps', []), name=False)} | "
                     + f"{_gap_text(row['gaps'])} |")
    if not report["rows"]:
        lines.append("| – | no results with label routes: re-run `interpbench evaluate` |" + " |" * (len(METRICS) + 4))
    shuffled = _summary_text(report.get("summary_shuffled") or {})
    lines += ["", "Verdicts against shuffled labels, per route and metric (every row): " + (
        shuffled or "no results with shuffled-label controls (results written before they existed: re-run "
                    "`interpbench evaluate`)") + ".",
              "", "Verdicts over every (model, control) gap, per route and metric: " + (
        _summary_text(report["summary"])
        or "no control with label routes was evaluated (`interpbench evaluate -m control:random-codes@MODEL ...`)")]
    return "\n".join(lines) + "\n"


def append_label_validity(records: list[dict], out: Path) -> list[Path]:
    """Append the section to OUT (Markdown) and the key "label_validity" to OUT's .json, both
    written by leaderboard.validity.write_validity just before; atomically."""
    out = Path(out)
    report = label_validity(records)
    atomic_write_text(out, out.read_text(encoding="utf-8") + markdown_section(report))
    json_path = out.with_suffix(".json")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    data["label_validity"] = report
    atomic_write_text(json_path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return [out, json_path]
