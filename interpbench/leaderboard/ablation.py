"""The sparse recipe's ablation table (Markdown) from its results file (`ablation.json`)."""

from __future__ import annotations

_COLUMNS = (("expansion", "expansion", "{:d}x"), ("width", "F", "{:,d}"), ("inducer", "sparsity inducer", "{}"),
            ("logit_scale_cap", "logit cap", "{:g}"), ("logit_scale", "learned scale", "{:.1f}"), ("image_l0", "image L0", "{:.1f}"),
            ("image_active_pct", "image L0 % of F", "{:.2f}%"), ("text_l0", "text L0", "{:.1f}"),
            ("active_features_pct", "Active F%", "{:.1f}%"), ("clarity", "Clarity", "{:.3f}"),
            ("clarity_baseline", "baseline", "{:.3f}"), ("zeroshot_mean", "zero-shot mean", "{:.3f}"),
            ("train_time_s", "train time", "{:.0f} s"))


def _cell(fmt: str, v) -> str:
    return "–" if v is None else fmt.format(v)


def render_ablation(record: dict) -> str:
    ev = record["eval"]
    head = "| " + " | ".join(title for _, title, _ in _COLUMNS) + " |\n|" + "---|" * len(_COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(fmt, row.get(key)) for key, _, fmt in _COLUMNS) + " |\n"
                   for row in record["rows"])
    return f"""# Sparse CLIP recipe ablation on Shapes

Command: `{record['command']}` (seed {record['seed']}; {record['machine']}; {record['wall_time_s']:.0f} s in all).

Each row trains the sparse head on {record['base']} with the shipped preset's settings except the
three ablated ones, and is measured on the Shapes {ev['split']} split ({ev['images']} images, seed {ev['seed']}):
L0 counts features above tau = {ev['tau']} per image (per first caption for text); Active F% is the share of
all F features that fire on at least {ev['n_min']} images (dead features count against it); Clarity uses the
{ev['judge']} as judge, and baseline is the data set's own mean pairwise cosine under that judge; zero-shot is
the mean top-1 accuracy over the six attributes through clip-benchmark.

{head}{body}
Preset (the shipped `shapes:sparse`): `{record['preset']}`.
"""
