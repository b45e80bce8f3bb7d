"""Checkpoint trajectories: metrics against training step, and how features' top words move.

A result belongs to a checkpoint series when its training step is known: from the model
folder's training.json (`step`, else `config.steps`, as written by `interpbench train`)
or from a `step`/`ckpt`/`epoch` number in the spec (e.g. `.../step_400`). Results of one
series share the spec with that number replaced by `*`, the data set and the settings.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from interpbench.errors import BadSpecError, InterpbenchError
from interpbench.ioutils import atomic_write_text
from interpbench.leaderboard import plots
from interpbench.leaderboard.build import load_records
from interpbench.leaderboard.columns import COLUMNS
from interpbench.results.store import load_labels, load_per_feature, settings_hash, slug

_STEP = re.compile(r"(step|ckpt|checkpoint|epoch|iter)[_-]?(\d+)", re.IGNORECASE)


@dataclass
class TrajectoryReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    n_records: int = 0


def _model_folder(spec: str) -> Path | None:
    """The local folder of a folder-based spec (openclip:local-dir:, sparseclip:, openclip:DIR)."""
    for prefix in ("openclip:local-dir:", "sparseclip:", "openclip:"):
        if spec.startswith(prefix):
            path = Path(spec[len(prefix):]).expanduser()
            return path if path.is_dir() else None
    return None


def training_step(spec: str) -> int | None:
    """Training step of a checkpoint spec, or None when it is not a checkpoint."""
    folder = _model_folder(spec)
    if folder is not None and (folder / "training.json").is_file():
        try:
            info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
            step = info.get("step", info.get("config", {}).get("steps"))
            if isinstance(step, int):
                return step
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass  # fall back to the name
    m = _STEP.findall(spec)
    return int(m[-1][1]) if m else None


def series_name(spec: str) -> str:
    """The spec with its step number replaced by `*`; for training.json-only folders, parent/*."""
    if _STEP.search(spec):
        return _STEP.sub(lambda m: f"{m.group(1)}{spec[m.end(1):m.start(2)]}*", spec)
    return spec.rsplit("/", 1)[0] + "/*" if "/" in spec else spec


def expand_model_globs(specs: list[str]) -> list[str]:
    """`openclip:local-dir:ckpts/step*` -> one spec per matching folder, in step order."""
    out = []
    for spec in specs:
        head, sep, pattern = spec.rpartition(":")
        if not any(ch in pattern for ch in "*?["):
            out.append(spec)
            continue
        matches = sorted(glob.glob(pattern), key=lambda p: (training_step(head + sep + p) or 0, p))
        if not matches:
            raise BadSpecError(f"--model {spec!r}: the pattern {pattern!r} matches no folder")
        out += [head + sep + p for p in matches]
    return out


def collect_series(records: list[dict], models: list[str] | None = None) -> dict[tuple, list[tuple[int, dict]]]:
    """(series, data set, settings hash) -> [(step, record)] sorted by step."""
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for r in records:
        spec = r["model"]["spec"]
        if models and spec not in models:
            continue
        step = training_step(spec)
        if step is None:
            continue
        key = (series_name(spec), r["dataset"]["name"], settings_hash(r["settings"]))
        groups.setdefault(key, []).append((step, r))
    return {k: sorted(v, key=lambda sr: (sr[0], sr[1]["model"]["spec"])) for k, v in sorted(groups.items())}


def metrics_frame(points: list[tuple[int, dict]]) -> pd.DataFrame:
    rows = [{"step": step, "model": r["model"]["spec"], **{c.key: c.value(r["metrics"]) for c in COLUMNS}}
            for step, r in points]
    return pd.DataFrame(rows)


def plot_metrics(data: pd.DataFrame, title: str):
    """One panel per metric that has values: metric against training step."""
    import seaborn as sns

    cols = [c for c in COLUMNS if c.key in data and data[c.key].notna().any()]
    with plots.style():
        fig, axes = plots.new_figure(max(1, len(cols)), 3.2, 3.0)
        for ax, c in zip(axes, cols, strict=False):  # one spare axis when cols is empty
            sub = data[["step", c.key]].dropna()
            sns.lineplot(data=sub, x="step", y=c.key, marker="o", ax=ax)
            ax.set(title=f"{c.title}{c.arrow}", xlabel="training step", ylabel="")
        if not cols:
            plots.empty_axes(axes[0], "no metrics")
        fig.suptitle(title, fontsize=9)
    return fig, data


def default_features(points: list[tuple[int, dict]], n: int = 5) -> list[int]:
    """The n clearest features at the last checkpoint (lowest index on ties)."""
    arrays = load_per_feature(points[-1][1])
    clarity = np.asarray(arrays.get("clarity", []), float)
    if clarity.size == 0:
        return list(range(n))
    score = np.nan_to_num(clarity, nan=-np.inf)
    return [int(f) for f in np.lexsort((np.arange(len(score)), -score))[:n]]


def words_table(points: list[tuple[int, dict]], features: list[int], k: int = 3) -> str:
    """Markdown: one row per checkpoint, one column per feature, its top-k words."""
    lines = ["| step | " + " | ".join(f"feature {f}" for f in features) + " |", "|---|" + "---|" * len(features)]
    for step, r in points:
        labels = load_labels(r)
        cells = [", ".join(w for w, _ in labels.get(f, [])[:k]) or "–" for f in features]
        lines.append(f"| {step} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def build_trajectory(results_dir: Path, out_dir: Path, features: list[int] | None = None,
                     models: list[str] | None = None) -> TrajectoryReport:
    records, skipped = load_records(results_dir)
    report = TrajectoryReport(skipped=list(skipped))
    groups = collect_series(records, models)
    if not groups:
        raise BadSpecError(f"{results_dir}: no results of checkpoints; a checkpoint needs a training.json "
                           "in its folder or a step number in its spec (e.g. .../step_400)")
    out_dir = Path(out_dir)
    for (series, dataset, shash), points in groups.items():
        stem = out_dir / f"{slug(series)}__{slug(dataset)}__{shash}"
        data = metrics_frame(points)
        fig, _ = plot_metrics(data, f"{series} on {dataset}")
        report.written += plots.save_figure(fig, Path(f"{stem}-metrics"))
        atomic_write_text(Path(f"{stem}-metrics.csv"), data.to_csv(index=False, lineterminator="\n"))
        try:
            feats = features or default_features(points)
            table = words_table(points, feats)
        except InterpbenchError as err:  # a bad sidecar costs the words table, not the metrics plot
            report.skipped.append((Path(points[-1][1]["_path"]), str(err)))
            table = "(top words unavailable: see the skipped files above)\n"
        page = (f"# Trajectory: `{series}` on {dataset}\n\n![metrics]({Path(stem).name}-metrics.png)\n\n"
                f"## Top words of chosen features across checkpoints\n\n{table}")
        atomic_write_text(Path(f"{stem}.md"), page)
        report.written += [Path(f"{stem}-metrics.csv"), Path(f"{stem}.md")]
        report.n_records += len(points)
    return report
