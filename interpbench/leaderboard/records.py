"""Which results records become leaderboard rows: one row per contestant, controls apart.

- Only evaluation records (and analysis records joined to them, leaderboard/merge.py) are
  rows. A decomposition record (`interpbench decompose`, top-level `kind: "decomposition"`)
  or any other `record_type` has its own report and is skipped with the reason.
- Reseed runs (a recipe evaluated under >= 2 training seeds, leaderboard/reseed.py) belong
  to the reseed view, not to the ranked table: each seed is the same recipe again. The one
  exception is a seed whose controls were evaluated: it is the recipe's contestant.
- The same weights evaluated under two specs (e.g. `shapes:sae` and the path of the file
  it was built from) are one contestant: records with the same `model.fingerprint` (a hash
  of the weight files' contents and the base model's, adapters/sae_formats), the same data
  identity and settings, and identical metrics are shown once, under the spec that names
  no path (then the shortest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from interpbench.leaderboard.reseed import reseed_groups
from interpbench.results.store import settings_hash

DECOMPOSITION_KIND = "decomposition"  # decomposition/record.py's top-level `kind`
ROW_RECORD_TYPES = (None, "analysis")  # evaluation records have none; analyses join them


def is_control(record: dict) -> bool:
    return bool(record["model"].get("control"))


def not_a_row(record: dict) -> str | None:
    """Why a record read from the results folder is no leaderboard row (None: it is one)."""
    if record.get("kind") == DECOMPOSITION_KIND:
        return ("a decomposition record (`interpbench decompose`): not an evaluation; "
                "its report is leaderboards/decomposition/")
    if record.get("record_type") not in ROW_RECORD_TYPES:
        return f"a {record['record_type']!r} record, not an evaluation; it has its own report"
    return None


def column_interval(record: dict, col) -> dict | None:
    """The interval record of the metric key the column reads (None if absent or malformed)."""
    metrics, intervals = record["metrics"], record.get("intervals") or {}
    for k in col.keys:
        v = metrics.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            iv = intervals.get(k) if isinstance(intervals, dict) else None
            ok = isinstance(iv, dict) and all(isinstance(iv.get(e), (int, float)) for e in ("lo", "hi"))
            return iv if ok and iv["lo"] <= iv["hi"] else None
    return None


def _names_path(spec: str) -> bool:
    return any(mark in spec for mark in ("/", "\\", "~"))


def _identity(record: dict) -> tuple | None:
    fp = record["model"].get("fingerprint")
    if not fp:
        return None  # older results: no way to tell the weights apart
    return (fp, json.dumps(record["dataset"].get("identity"), sort_keys=True, default=str), settings_hash(record["settings"]),
            json.dumps(record.get("_own_metrics", record["metrics"]), sort_keys=True, default=str))


@dataclass
class Selection:
    """The records of one table, sorted into what each becomes."""
    contestants: list[dict] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)
    reseed_runs: list[dict] = field(default_factory=list)  # in the reseed view only
    duplicates: list[tuple[dict, dict]] = field(default_factory=list)  # (not shown, the row shown instead)

    def notes(self) -> str:
        """Sentences for the page intro: which records are not rows of their own, and why."""
        out = []
        if self.reseed_runs:
            recipes = sorted({str(r["model"].get("recipe")) for r in self.reseed_runs})
            out.append(f"{len(self.reseed_runs)} reseed runs (recipe {', '.join(f'`{x}`' for x in recipes)}) "
                       "are in the reseed view, not ranked.")
        for dup, shown in self.duplicates:
            what = "path" if _names_path(dup["model"]["spec"]) else f"`{dup['model']['spec']}`"
            out.append(f"A second evaluation of `{shown['model']['spec']}`'s weights (under a {what} spec; same "
                       "weight fingerprint, same numbers) is shown once.")
        return " ".join(out)


def select(records: list[dict]) -> Selection:
    """Split one data set's row records into contestants, controls, reseed runs and duplicates."""
    sel = Selection()
    judged = {r["model"]["control"].get("of") for r in records if is_control(r)}
    reseed_ids = {id(r) for group in reseed_groups(records).values() for r in group
                  if r["model"]["spec"] not in judged}
    shown: dict[tuple, dict] = {}
    for r in sorted(records, key=lambda r: (_names_path(r["model"]["spec"]), len(r["model"]["spec"]),
                                            r["model"]["spec"], settings_hash(r["settings"]))):
        if id(r) in reseed_ids:
            sel.reseed_runs.append(r)
            continue
        key = _identity(r)
        if key is not None and key in shown:
            sel.duplicates.append((r, shown[key]))
            continue
        if key is not None:
            shown[key] = r
        (sel.controls if is_control(r) else sel.contestants).append(r)
    return sel
