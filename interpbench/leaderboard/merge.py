"""Analysis records (`interpbench analyze run`) joined to the evaluation records they describe.

An analysis record (record_type "analysis", RESULTS/<dataset>/analysis/) carries the
headline numbers of docs/analyses.md and their intervals. The leaderboard shows them as
columns of the row of the same model spec on the same data set name: its `metrics` and
`intervals` are added to every such evaluation record (the evaluation's own keys win), and
`analysis` names the file they came from. When one model has several analysis records on
a data set, the one on the same images as the evaluation (equal dataset identity) is used,
else the one on the most images (then the lowest settings hash); the others are reported
as skipped with the reason. An analysis record with no evaluation record is shown as a
row of its own, so no number is dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from interpbench.results.store import settings_hash

RECORD_TYPE = "analysis"


def is_analysis(record: dict) -> bool:
    return record.get("record_type") == RECORD_TYPE


def _n_images(record: dict) -> int:
    n = record["settings"].get("n_images")
    return n if isinstance(n, int) else 0


def _pick(candidates: list[dict], target: dict | None) -> dict:
    """The analysis to show beside `target`: same images first, then most images, then hash."""
    def key(a):
        same = target is not None and a["dataset"].get("identity") == target["dataset"].get("identity")
        return (not same, -_n_images(a), settings_hash(a["settings"]))

    return min(candidates, key=key)


def _joined(record: dict, analysis: dict) -> dict:
    out = dict(record)
    out["_own_metrics"] = record["metrics"]  # the evaluation's own numbers (records.py compares these)
    out["metrics"] = {**analysis["metrics"], **record["metrics"]}
    out["intervals"] = {**(analysis.get("intervals") or {}), **(record.get("intervals") or {})}
    out["analysis"] = {"path": analysis.get("_path"), "n_images": analysis["settings"].get("n_images"),
                       "same_images": analysis["dataset"].get("identity") == record["dataset"].get("identity")}
    return out


def attach_analyses(records: list[dict]) -> tuple[list[dict], list[tuple[Path, str]]]:
    """(evaluation records with their analysis joined in, (path, reason) of analyses not shown)."""
    evals = [r for r in records if not is_analysis(r)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for a in filter(is_analysis, records):
        groups.setdefault((a["model"]["spec"], a["dataset"]["name"]), []).append(a)
    out, skipped, used = [], [], set()
    for r in evals:
        cands = groups.get((r["model"]["spec"], r["dataset"]["name"]))
        if not cands:
            out.append(r)
            continue
        chosen = _pick(cands, r)
        used.add(id(chosen))
        out.append(_joined(r, chosen))
    for cands in groups.values():
        if not any(id(a) in used for a in cands):  # no evaluation of this model: a row of its own
            chosen = _pick(cands, None)
            used.add(id(chosen))
            out.append(chosen)
        for a in cands:
            if id(a) not in used:
                skipped.append((Path(a.get("_path", "?")), "another analysis of the same model and data set "
                                "is shown (same images as the evaluation, else the most images)"))
    return out, skipped


def analysis_note(records: list[dict]) -> str:
    """One sentence for a table's intro: where the analysis columns come from, and which rows'
    analyses ran on other images than their evaluation ("" when no row has an analysis)."""
    joined = [r for r in records if "analysis" in r]
    if not joined and not any(is_analysis(r) for r in records):
        return ""
    other = sorted({f"`{r['model']['spec']}` ({r['analysis']['n_images']} images)"
                    for r in joined if not r["analysis"]["same_images"]})
    text = "Analysis columns: from `interpbench analyze run` records in the same results folder"
    return text + (f"; on other images than the evaluation for {', '.join(other)}." if other else ".")
