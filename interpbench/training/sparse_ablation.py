"""`interpbench train clip sparse --ablation DIR`: the sparse recipe's ablation, as a results file and a table."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from interpbench.ioutils import atomic_write_text

COMMAND = "interpbench train clip sparse --ablation leaderboards/sparse-ablation"


def run_ablation(out_dir: Path, base_folder: Path | None = None, rows: tuple | None = None, progress=None) -> Path:
    """Train and measure every ablation row; write ablation.json and its README.md table into out_dir."""
    from interpbench.leaderboard.ablation import render_ablation
    from interpbench.training.reference import REFERENCE_DIR
    from interpbench.training.sparse_reference import ABLATION_ROWS, EVAL_IMAGES, SPARSE_PRESET, ablation

    base_folder = Path(base_folder or REFERENCE_DIR / "dense")
    t0 = time.time()
    measured = ablation(base_folder, SPARSE_PRESET, rows or ABLATION_ROWS, progress=progress)
    record = {"record_type": "sparse-ablation", "schema_version": 1, "command": COMMAND, "seed": SPARSE_PRESET.seed,
              "preset": asdict(SPARSE_PRESET), "base": "shapes:dense (towers fixed)",
              "eval": {"split": "eval", "images": EVAL_IMAGES, "seed": 0, "judge": "groundtruth (Shapes concept vectors)",
                       "tau": 0.001, "n_min": 2},
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
              "wall_time_s": round(time.time() - t0, 1), "rows": measured}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "ablation.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out_dir / "README.md", render_ablation(record))
    return out_dir / "README.md"
