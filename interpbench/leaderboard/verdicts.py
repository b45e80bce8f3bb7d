"""Direction-aware verdicts: does a column separate a trained model from its random controls?

For one (trained, control) pair and one column, the gap is trained minus control, with a 95%
interval (paired bootstrap of the replicate differences when both results resampled the same
images; else the two intervals combined, see `gap`). With the column's direction (↑ max,
↓ min) the gap's verdict is:

- "separates": the interval lies strictly on the good side of 0 (above for ↑, below for ↓);
- "control better": it lies strictly on the bad side: the random control scores better;
- "does not separate": it contains 0;
- "unknown": no interval (a non-zero gap without one proves nothing either way).

A model's verdict on a column combines its pairs (the worst wins: control better, does not
separate, unknown, separates); a model with no pair is "unknown", and so is a column on a
page where some contestant is. Columns that a control copies by construction (random codes
keep L0 and the target's zero-shot; a TopK random-decoder SAE keeps k) have no gap for it.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from interpbench.leaderboard.records import column_interval
from interpbench.metrics.bootstrap import percentile_interval
from interpbench.results.store import settings_hash
from interpbench.specs import matching_controls

SEPARATES, NO_SEPARATION, CONTROL_BETTER, UNKNOWN = "separates", "does not separate", "control better", "unknown"
_WORST_FIRST = (CONTROL_BETTER, NO_SEPARATION, UNKNOWN, SEPARATES)

# Metrics a control copies from its target by construction, so their gap is 0 by design and says
# nothing about the metric.
COPIED_BY_CONSTRUCTION = {"random-codes": frozenset({"l0", "zeroshot_mean"}), "random-decoder": frozenset({"l0"})}


def gap_verdict(better: str | None, gap: float, lo: float | None, hi: float | None) -> str | None:
    """The verdict of one gap (trained minus control); None for a column that is not ranked."""
    if better is None:
        return None
    if lo is None or hi is None:
        return NO_SEPARATION if gap == 0 else UNKNOWN
    good, bad = (lo > 0, hi < 0) if better == "max" else (hi < 0, lo > 0)
    return SEPARATES if good else CONTROL_BETTER if bad else NO_SEPARATION


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


# Label metrics depend on the labelling route (docs/metrics.md#label-routes): a trained SAE on the
# residual stream is labelled through its decoder, its random-codes control (no decoder) through
# the images, and comparing those would compare routes, not representations.
LABEL_KEYS = frozenset({"labelled_pct", "label_corr_mean", "label_corr_median", "label_corr_share",
                        "label_corr_matched", "gt_label_accuracy", "cf_selectivity"})


def same_route(trained: dict, control: dict, col) -> dict | None:
    """The control as the trained model's primary labelling route labels it, for a label column:
    the control itself when its primary route is the same, a record-shaped view of its entry for
    that route otherwise, None when it has no such route (no gap). Other columns, and records
    without label routes, pass through."""
    if not LABEL_KEYS & set(col.keys):
        return control
    rt, rc = trained.get("label_routes"), control.get("label_routes")
    if not isinstance(rt, dict) or not isinstance(rc, dict) or rc.get("primary") == rt.get("primary"):
        return control
    info = (rc.get("routes") or {}).get(rt.get("primary"))
    if not isinstance(info, dict):
        return None
    return {"model": control["model"], "metrics": info.get("metrics") or {}, "intervals": info.get("intervals") or {}}


def gap(trained: dict, control: dict, col) -> dict | None:
    """One pair on one column: {"gap", "lo", "hi", "method", "verdict", "separates"} (None if
    either lacks the metric, the control copies it from the trained model by construction, or,
    for a label column, the control has no labels by the trained model's route)."""
    if col.key in COPIED_BY_CONSTRUCTION.get(control["model"]["control"].get("kind"), ()):
        return None
    control = same_route(trained, control, col)
    if control is None:
        return None
    vt, vc = col.value(trained["metrics"]), col.value(control["metrics"])
    if vt is None or vc is None:
        return None
    it, ic = column_interval(trained, col), column_interval(control, col)
    d = vt - vc
    if it is None or ic is None:
        lo = hi = method = None
    elif (paired := _paired(it, ic)) is not None:
        lo, hi, method = *paired, "paired bootstrap"
    else:
        h = math.hypot((it["hi"] - it["lo"]) / 2, (ic["hi"] - ic["lo"]) / 2)
        lo, hi, method = d - h, d + h, "combined intervals"
    verdict = gap_verdict(col.better, d, lo, hi)
    return {"gap": d, "lo": lo, "hi": hi, "method": method, "verdict": verdict,
            "separates": None if verdict in (None, UNKNOWN) else verdict == SEPARATES}


def control_pairs(contestants: list[dict], controls: list[dict]) -> list[tuple[dict, dict]]:
    """(trained, control) for every control whose model.control.of names a contestant on the
    same data set with the same settings."""
    trained = {(r["model"]["spec"], *_group(r)): r for r in contestants}
    out = [(t, c) for c in controls if (t := trained.get((c["model"]["control"].get("of"), *_group(c))))]
    return sorted(out, key=lambda p: (p[0]["model"]["spec"], p[1]["model"]["spec"]))


def combine(verdicts: list[str]) -> str:
    """Several verdicts -> one: the worst (control better > does not separate > unknown > separates)."""
    return next((v for v in _WORST_FIRST if v in verdicts), UNKNOWN)


@dataclass
class ColumnVerdict:
    """A column's verdict on one page: per contestant (spec -> (verdict, gaps)), and overall."""
    col: object
    verdict: str | None  # None: not ranked, or no contestant has the metric
    models: dict[str, tuple[str, list[dict]]] = field(default_factory=dict)
    why: str = ""  # for the footnote: which pairs decide it
    missing: list[str] = field(default_factory=list)  # contestants with no control result
    unanalysed: list[str] = field(default_factory=list)  # analysis column: controls exist, analysis not run

    @property
    def short(self) -> str:
        """`verdict` and the contestants that make it so, for one line (the rank sentence)."""
        if self.verdict in (None, SEPARATES):
            return self.verdict or "not measured"
        who = [s for s, (v, _) in self.models.items() if v == self.verdict]
        return f"{self.verdict} for " + ", ".join(f"`{s}`" for s in who)


def _gap_words(g: dict) -> str:
    ci = f" [{g['lo']:+.3f}, {g['hi']:+.3f}]" if g["lo"] is not None else " (no interval)"
    return f"{g['gap']:+.3f}{ci}"


def column_verdict(col, contestants: list[dict], controls: list[dict]) -> ColumnVerdict:
    """The verdict of `col` over the contestants that have it (see the module docstring). A
    spec with results on several data sets gets the combined verdict of all of them."""
    scored = [r for r in contestants if col.value(r["metrics"]) is not None]
    if col.better is None or not scored:
        return ColumnVerdict(col, None)
    pairs = control_pairs(scored, controls)
    found: dict[str, list[str]] = {}
    gaps_of: dict[str, list[dict]] = {}
    copied, lacking, missing = [], [], []  # no gap: controls copy it / controls lack it / no control
    for r in scored:
        spec = r["model"]["spec"]
        mine = [c for t, c in pairs if t is r]
        gaps = [{"control": c["model"]["spec"], "kind": c["model"]["control"].get("kind"), **g}
                for c in mine if (g := gap(r, c, col)) is not None]
        gaps_of.setdefault(spec, []).extend(gaps)
        found.setdefault(spec, []).extend([g["verdict"] for g in gaps] or [UNKNOWN])
        if not gaps:
            copies = mine and all(col.key in COPIED_BY_CONSTRUCTION.get(c["model"]["control"].get("kind"), ())
                                  for c in mine)
            (copied if copies else lacking if mine else missing).append(spec)
    models = {spec: (combine(found[spec]), gaps_of[spec]) for spec in found}
    verdict = combine([v for v, _ in models.values()])
    copied, lacking, missing = sorted(set(copied)), sorted(set(lacking)), sorted(set(missing))
    return ColumnVerdict(col, verdict, models, _why(col, models, copied, lacking, missing), missing,
                         lacking if col.analysis else [])


def _why(col, models: dict, copied: list[str], lacking: list[str], missing: list[str]) -> str:
    parts = []
    for v, words in ((CONTROL_BETTER, "a control scores better (trained − control, 95% interval)"),
                     (NO_SEPARATION, "the gap's 95% interval includes 0")):
        bad = [f"`{spec}` vs its {g['kind']} {_gap_words(g)}" for spec, (_, gaps) in models.items()
               for g in gaps if g["verdict"] == v]
        if bad:
            parts.append(f"{words} for " + ", ".join(bad))
    no_iv = [f"`{s}` vs its {g['kind']}" for s, (_, gaps) in models.items() for g in gaps if g["verdict"] == UNKNOWN]
    if no_iv:
        parts.append("no interval for " + ", ".join(no_iv))
    if copied:
        parts.append("the controls of " + ", ".join(f"`{s}`" for s in copied) + " copy it by construction")
    if lacking:
        names = ", ".join(f"`{s}`" for s in lacking)
        parts.append(f"the same analysis has not run on a control of {names} (see Missing controls)" if col.analysis
                     else f"the controls of {names} have no value for it")
    if missing:
        parts.append("no control of " + ", ".join(f"`{s}`" for s in missing) + " was evaluated (see Missing "
                     "controls)")
    return "; ".join(parts)


def missing_commands(verdicts: dict[str, ColumnVerdict], contestants: list[dict], results_dir: str) -> list[str]:
    """The commands that would settle the page's "unknown" verdicts: `evaluate` of the matching
    controls of every contestant that has none, and `analyze run` of the controls where an
    analysis column has no control value."""
    by_spec = {r["model"]["spec"]: r for r in contestants}
    missing = sorted({s for v in verdicts.values() for s in v.missing if s in by_spec})
    analysed = sorted({s for v in verdicts.values() if v.col.analysis and v.models for s in v.models})
    unanalysed = sorted({s for v in verdicts.values() for s in v.unanalysed} | (set(analysed) & set(missing)))

    def controls(specs):
        return [c for s in specs for c in matching_controls(s, by_spec[s]["model"].get("kind") == "sae")]

    out = []
    if missing:  # grouped by settings: each command must reproduce its contestants' settings
        groups: dict[tuple, list[str]] = {}
        for s in missing:
            groups.setdefault(_group(by_spec[s]), []).append(s)
        out += [evaluate_command(controls(specs), by_spec[specs[0]], results_dir) for specs in groups.values()]
    if unanalysed:
        out.append(f"interpbench analyze run {' '.join(map(shlex.quote, controls(unanalysed)))} "
                   f"--results {results_dir}")
    return out


def evaluate_command(specs: list[str], like: dict, results_dir: str) -> str:
    """`interpbench evaluate` of `specs` with the settings of the record `like` (non-defaults only),
    so the results share its settings hash and pair with it."""
    s = like["settings"]
    n = s.get("n_images", 2000)
    opts = [("--dataset", like["dataset"].get("spec", s.get("dataset")), "shapes"), ("--n-images", n, 2000),
            ("--seed", s.get("seed", 0), 0), ("--judge", s.get("judge"), "groundtruth"),
            ("--vocab", s.get("vocab"), "shapes"), ("--template", s.get("template"), "{}"),
            ("--cf-scenes", s.get("cf_scenes"), min(200, n // 10))]
    b = {iv.get("b") for iv in (like.get("intervals") or {}).values() if isinstance(iv, dict)} - {None}
    parts = ["interpbench evaluate", *[f"--model {shlex.quote(x)}" for x in specs]]
    parts += [f"{flag} {shlex.quote(str(v))}" for flag, v, default in opts if v is not None and v != default]
    parts += [f"--bootstrap {b.pop()}"] if len(b) == 1 and b != {200} else []
    parts += ["--no-zeroshot"] if s.get("zeroshot") is False else []
    return " ".join(parts + [f"--results {results_dir}"])


def shown_dir(results_dir: str | Path | None) -> str:
    """The results folder as the pages may name it: relative inside the working folder, else RESULTS."""
    if results_dir is None:
        return "RESULTS"
    p = Path(results_dir)
    return str(p) if not p.is_absolute() and ".." not in p.parts else "RESULTS"


def page_verdicts(columns, contestants: list[dict], controls: list[dict]) -> dict[str, ColumnVerdict]:
    """Column key -> its ColumnVerdict over the page's contestants."""
    return {c.key: column_verdict(c, contestants, controls) for c in columns}
