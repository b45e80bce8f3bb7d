"""What a user sees when stdout is not a terminal (a pipe, a log file, CI): whole names and
numbers in every table, and none of the library notices they cannot act on."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings

import torch
from rich.console import Console
from typer.testing import CliRunner

from interpbench.cli.main import app
from interpbench.leaderboard.summary import print_summary, summary_rows
from interpbench.registry import known_checkpoints
from interpbench.results.store import ROUTE_LABELS

# The notices issue 17 lists; each would otherwise reach the user on every evaluate.
LIBRARY_NOTICES = ("Sparse CSR tensor support is in beta state", "Conversion of an array with ndim > 0",
                   "degrees of freedom")


def _row(output: str, name: str) -> str:
    (line,) = [line for line in output.splitlines() if name in line and "│" in line]
    return line


def test_evaluate_through_a_pipe_prints_the_whole_table_and_no_library_notices(tmp_path):
    """A real evaluate in a fresh process (torch warns once per process), stdout to a pipe and
    every warning shown (-W always): the row has the full name and every number as the results
    file has it, and stderr has none of the known library notices."""
    spec = "openclip:shapes-vit-tiny/random"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # rich would honour COLUMNS
    cmd = [sys.executable, "-W", "always", "-m", "interpbench.cli.main", "evaluate", "-m", spec, "--judge",
           "groundtruth", "--n-images", "16", "--quiet", "--results", str(tmp_path / "r"),
           "--cache-dir", str(tmp_path / "c")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    (path,) = [p for p in (tmp_path / "r").rglob("*.json") if not ROUTE_LABELS.search(p.name)]  # no sidecars
    record = json.loads(path.read_text())
    row = _row(run.stdout, spec)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    _, [(name, expected)], _ = summary_rows([(record, path)], tmp_path / "r")
    assert cells == [spec, *expected] and name == spec
    assert "zero-shot ↑" in run.stdout and " ± " in row  # the headline columns, with direction and interval
    assert "interpbench evaluate --model control:random-codes@openclip:shapes-vit-tiny/random" in run.stdout
    assert "…" not in run.stdout and str(path) in run.stdout
    assert record["metrics"].get("zeroshot_mean") is not None  # clip-benchmark's evaluate ran
    for notice in LIBRARY_NOTICES:
        assert notice not in run.stderr, run.stderr


def test_summary_keeps_long_names_and_numbers_whole_when_piped(capsys, tmp_path):
    long = "sae:saelens:someone/a-very-long-repository-name-for-sparse-autoencoders@openclip:ViT-B-32/openai"
    keys = ("clarity", "l0", "zeroshot_mean", "fvu", "label_correlation_mean", "paired_multimodality")
    metrics = {k: 0.123456789 * (i + 1) for i, k in enumerate(keys)}
    metrics["l0"] = 1234.5678

    def record(spec, m):
        return {"model": {"name": spec, "spec": spec, "kind": "sae"}, "metrics": m, "timing": {"wall_time_s": 1.0},
                "dataset": {"name": "d", "spec": "shapes"}, "settings": {"n_images": 10},
                "intervals": {"l0": {"lo": 1234.0, "hi": 1235.2}}}

    records = [(record(long, metrics), tmp_path / "x.json"), (record("short", {}), tmp_path / "y.json")]
    print_summary(records, tmp_path / "none")  # capsys: stdout is not a terminal
    out = capsys.readouterr().out
    cells = [c.strip() for c in _row(out, long).strip("│ ").split("│")]
    # headline order: Clarity, L0, paired, label corr., zero-shot, FVU (table order); L0 with its interval
    assert cells == [long, "0.123", "1234.6 ± 0.6", "0.741", "0.617", "0.370", "0.494"]
    assert "…" not in out and "L0 ↓" in out and "Verdict unknown for " in out


def test_models_prints_every_registry_name_whole():
    names = sorted(known_checkpoints())
    assert "gytdau-clip-sae-128" in names
    out = CliRunner().invoke(app, ["models"], env={"COLUMNS": "40"})  # not a TTY, and a narrow width asked
    assert out.exit_code == 0, out.output
    lines = [line.strip() for line in out.output.splitlines()]
    for name in names:
        assert name in lines, name
    # the shipped reference models, the residual-stream SAE included, each marked installed
    for ref in ("shapes:dense", "shapes:sparse", "shapes:sae", "shapes:sae-resid"):
        assert re.search(rf"{ref} +│ installed", out.output), ref


def test_models_tables_keep_names_whole_on_a_narrow_terminal():
    from interpbench.cli.models import model_tables

    buf = io.StringIO()
    console = Console(file=buf, width=60, force_terminal=True, color_system=None)
    for table in model_tables():
        console.print(table)
    lines = [line.strip() for line in buf.getvalue().splitlines()]
    for name in known_checkpoints():
        assert name in lines, name


def test_reconstruction_of_one_dimensional_input_warns_nothing():
    """Var over d = 1 is 0/0 for the unbiased estimator (torch warns); FVU's ratio needs neither."""
    from interpbench.metrics.reconstruction import reconstruction_metrics

    x = torch.tensor([[1.0], [2.0], [-1.0]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = reconstruction_metrics(x, 0.5 * x, torch.ones(3, 2))
    assert r.fvu_msae is None  # every sample's variance is 0: no usable sample
    assert r.fvu == 0.25
