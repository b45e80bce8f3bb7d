"""Markdown summary of analysis records (RESULTS/*/analysis/*.json), plus the cross-model
steering plot. Rendered from the results files only."""

from __future__ import annotations

import json
from pathlib import Path

from interpbench.errors import CorruptFileError, MissingFileError


def read_analyses(results_dir: Path) -> list[dict]:
    """Every analysis record under results_dir, sorted by model spec."""
    paths = sorted(Path(results_dir).glob("*/analysis/*.json"))
    if not paths:
        raise MissingFileError(Path(results_dir) / "*/analysis", "analysis results",
                               "run `interpbench analyze run MODEL --results DIR` first")
    out = []
    for p in paths:
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptFileError(p, f"not valid JSON ({exc})", "delete it and re-run `interpbench analyze run`") from exc
        if rec.get("record_type") != "analysis":
            raise CorruptFileError(p, "not an analysis record (record_type != 'analysis')",
                                   "keep only `interpbench analyze` outputs in */analysis/")
        out.append(rec)
    return sorted(out, key=lambda r: r["model"]["spec"])


def _f(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


FIGURES = (("steering", "Success vs strength"), ("pca-shape", "PCA of codes"),
           ("retrieval", "Nearest images by code cosine"), ("duplicates", "Largest duplicate groups"))


def markdown(records: list[dict], figure_dir: Path | None = None) -> str:
    """Summary table, then one section per model; links the per-model PNGs found in figure_dir."""
    lines = ["# Analyses: steering and latent-space structure", "",
             "Definitions: [docs/analyses.md](../../docs/analyses.md). Rendered by `interpbench analyze report` "
             "from the analysis results JSONs.", "",
             "| model | kind | images | steerability | ablation ratio | ablation win rate | k-means ARI | NMI "
             "| P@k codes | P@k dense | duplicate share |", "|" + "---|" * 11]
    for r in records:
        m = r["metrics"]
        lines.append(f"| {r['model']['name']} | {r['model']['kind']} | {r['dataset']['identity']['length']} "
                     f"| {_f(m.get('steerability'))} | {_f(m.get('ablation_ratio'), 2)} "
                     f"| {_f(m.get('ablation_win_rate'), 2)} | {_f(m.get('cluster_ari_mean'))} "
                     f"| {_f(m.get('cluster_nmi_mean'))} | {_f(m.get('retrieval_p_at_k_codes'))} "
                     f"| {_f(m.get('retrieval_p_at_k_baseline'))} | {_f(m.get('duplicate_share'))} |")
    if figure_dir is not None and (Path(figure_dir) / "steering-vs-strength.png").is_file():
        lines += ["", "![Steering success vs strength](steering-vs-strength.png)"]
    for r in records:
        lines += ["", *_model_section(r), *_figure_links(r, figure_dir)]
    return "\n".join(lines) + "\n"


def _figure_links(r: dict, figure_dir: Path | None) -> list[str]:
    from interpbench.results.store import slug

    if figure_dir is None:
        return []
    stem = slug(r["model"]["name"])
    found = [(f"{stem}-{name}.png", title) for name, title in FIGURES if (Path(figure_dir) / f"{stem}-{name}.png").is_file()]
    return ["", *[f"![{title}]({file})" for file, title in found]] if found else []


def _model_section(r: dict) -> list[str]:
    from interpbench.analysis.duplicates import duplicate_lines

    name, st, lat = r["model"]["name"], r["analyses"].get("steering"), r["analyses"].get("latent")
    out = [f"## {name}", ""]
    if st and "skipped" in st:
        out += [f"Steering skipped: {st['skipped']}."]
    elif st:
        s = r["settings"]
        out += [f"Steering at k = {s['k_ref']} label features; strengths {s['strengths']}:", "",
                "| attribute | base acc | steering (label) | steering (random) | suppression (label) | collateral |",
                "|---|---|---|---|---|---|"]
        j = s["strengths"].index(float(s["s_ref"]))
        for a, res in st["per_attribute"].items():
            k = str(s["k_ref"])
            out.append(f"| {a} | {_f(res['label']['base_accuracy'], 2)} | {_f(res['label']['steering'][k][j], 2)} "
                       f"| {_f(res['control']['steering'][k][j], 2)} | {_f(res['label']['suppression'][k][j], 2)} "
                       f"| {_f(res['label']['collateral'][k], 3)} |")
        out += ["", f"(columns at s = {s['s_ref']})"]
    if lat:
        out += ["", "| attribute | ARI codes | ARI dense | NMI codes | P@k codes | P@k dense | chance |",
                "|---|---|---|---|---|---|---|"]
        for a, c in lat["clustering"]["per_attribute"].items():
            rt, cb = lat["retrieval"]["per_attribute"][a], lat["clustering_baseline"]["per_attribute"][a]
            out.append(f"| {a} | {_f(c['ari'])} | {_f(cb['ari'])} | {_f(c['nmi'])} | {_f(rt['codes'])} "
                       f"| {_f(rt['baseline'])} | {_f(rt['chance'])} |")
        d = lat["duplicates"]
        out += ["", f"Retrieval baseline: {lat['baseline']}. Duplicate groups (Jaccard > {d['threshold']}): "
                    f"{d['n_groups']} groups holding {d['n_in_groups']} of {d['n_alive']} active features; "
                    f"share of labelled groups whose members share one label: {_f(d['share_groups_same_label'], 2)}."]
        out += [f"- {line}" for line in duplicate_lines(d, 5)]
    return out
