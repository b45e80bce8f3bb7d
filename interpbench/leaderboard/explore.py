"""Feature cards and word search over one model's stored evaluation.

`open_session` reads a results record (see interpbench.evaluation.cards.evaluated_record,
which evaluates and stores what cards need): its labels, per-feature arrays and the
`.cards.safetensors` sidecar of stored activations. Nothing here loads a model, reads the
activation cache or recomputes a metric; the images come from the record's data source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from interpbench.errors import BadSpecError, NotFoundError
from interpbench.leaderboard import activations as acts
from interpbench.results.store import load_cards, load_labels, load_per_feature


@dataclass
class Session:
    source: object
    stored: acts.StoredActivations
    record: dict
    labels: dict[int, list[tuple[str, float]]]
    per_feature: dict[str, np.ndarray]
    mean_act: np.ndarray
    fire_count: np.ndarray

    @property
    def n_features(self) -> int:
        return self.stored.n_features

    @property
    def name(self) -> str:
        return self.record["model"]["name"]

    def value(self, name: str, f: int) -> float | None:
        arr = self.per_feature.get(name)
        if arr is None or f >= len(arr) or not np.isfinite(arr[f]):
            return None
        return float(arr[f])


def open_session(record: dict) -> Session:
    """A session over one results record (as read_results returns it) that has a card sidecar."""
    from interpbench.data import load_source

    arrays = load_cards(record)
    if not arrays:
        raise BadSpecError(f"{record['_path']} has no feature-card sidecar; `interpbench explore --model "
                           f"{record['model']['spec']}` adds it (interpbench.evaluation.cards.evaluated_record)")
    stored = acts.StoredActivations.from_arrays(arrays, record["cards_file"])
    settings = record["settings"]
    source = load_source(record["dataset"]["spec"], settings["n_images"], settings["seed"],
                         settings.get("skip_unreadable", False))  # the same images the run scored
    mean_act, fire_count = acts.feature_stats(stored, settings["tau"])
    return Session(source, stored, record, load_labels(record), load_per_feature(record), mean_act, fire_count)


def default_min_images(s: Session) -> int:
    """Clarity ranks only features seen on at least this many images: the record's top_n
    (20 by default), the number of images the top-n Clarity scores every feature on."""
    return int(s.record["settings"].get("top_n", 20))


def rank_features(s: Session, by: str, m: int, min_images: int | None = None) -> list[int]:
    """The m most active (mean activation) or clearest (per-feature Clarity) features.

    Clarity is a mean pairwise cosine over the images a feature fires on: on 2 or 3 images
    it is high by chance (two random images of one scene type agree), so `--rank clarity`
    skips features active on fewer than `min_images` images (default_min_images).
    """
    if by == "active":
        score = s.mean_act
    elif by == "clarity":
        if "clarity" not in s.per_feature:
            raise BadSpecError("--rank clarity: this results record has no per-feature Clarity; use --rank active")
        score = np.nan_to_num(np.asarray(s.per_feature["clarity"], float), nan=-np.inf)
        score = np.where(s.fire_count >= (default_min_images(s) if min_images is None else min_images),
                         score, -np.inf)
    else:
        raise BadSpecError(f"--rank {by!r}: expected 'active' or 'clarity'")
    order = np.lexsort((np.arange(len(score)), -score))  # stable: ties go to the lower index
    keep = [int(f) for f in order if np.isfinite(score[f]) and (by == "clarity" or score[f] > 0)]
    return keep[:m]


def check_features(s: Session, features: list[int]) -> None:
    bad = [f for f in features if not 0 <= f < s.n_features]
    if bad:
        raise BadSpecError(f"--feature {bad}: {s.name} has features 0..{s.n_features - 1}")


def feature_info(s: Session, f: int, tops: list[tuple[int, float]]) -> dict:
    """Everything a card shows, as plain data (also what tests check)."""
    return {"feature": f, "top_images": tops, "top_words": s.labels.get(f, []),
            "clarity": s.value("clarity", f), "modality_score": s.value("modality_score", f),
            "mean_activation": float(s.mean_act[f]), "n_active_images": int(s.fire_count[f])}


def cards(s: Session, features: list[int], n_images: int = 16) -> list[dict]:
    check_features(s, features)
    tops = acts.top_images(s.stored, features, n_images)
    return [feature_info(s, f, tops[f]) for f in features]


def _norm(word: str) -> str:
    return " ".join(word.lower().replace("_", " ").split())


def search(s: Session, word: str, n_images: int = 8, n_concepts: int = 10, depth: int = 1) -> dict:
    """Images where the features labelled `word` fire most, each with its top concepts.

    A feature matches when `word` is among its first `depth` vocabulary words (1: its
    label, the top word; up to top_k_words). An image's score is
    the summed activation of the matching features; its concepts are the top words of its
    most active labelled features, strongest first, each word once.
    """
    target = _norm(word)
    matched = _matching(s, target, depth)
    if not matched:
        raise NotFoundError(_not_found_message(s, word, depth))
    index, score = acts.image_scores(s.stored, matched)
    order = np.lexsort((index, -score))
    images = [int(index[i]) for i in order[:n_images] if score[i] > 0]
    rows = acts.image_rows(s.stored, images)
    found = [{"image": i, "score": float(score[index == i][0]), "concepts": _concepts(s, rows[i], n_concepts)}
             for i in images]
    return {"word": word, "depth": depth, "features": matched, "images": found}


def _matching(s: Session, target: str, depth: int) -> list[int]:
    return sorted(f for f, pairs in s.labels.items() if any(_norm(w) == target for w, _ in pairs[:depth]))


def _not_found_message(s: Session, word: str, depth: int) -> str:
    """What exists instead: the depth at which the word does match, and the labels there are."""
    import collections
    import difflib

    target, k = _norm(word), max((len(p) for p in s.labels.values()), default=0)
    deeper = next(((d, len(_matching(s, target, d))) for d in range(depth + 1, k + 1) if _matching(s, target, d)),
                  None)
    where = "as its label (its top word)" if depth == 1 else f"among its first {depth} top words"
    msg = f"no feature of {s.name} has {word!r} {where}."
    if deeper:
        msg += (f" With --depth {deeper[0]} (the word among each feature's first {deeper[0]} top words) "
                f"{deeper[1]} feature(s) match.")
    counts = collections.Counter(_norm(pairs[0][0]) for pairs in s.labels.values() if pairs)
    if not counts:
        return msg + " No feature of this model has a label (its labels file is empty)."
    close = difflib.get_close_matches(target, list(counts), n=5)
    if close:
        msg += f" Closest labels: {', '.join(close)}."
    listing = ", ".join(f"{w} ({n})" for w, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
    return msg + f" The {len(counts)} labels of its {sum(counts.values())} labelled features (count): {listing}."


def _concepts(s: Session, row: np.ndarray, n: int) -> list[tuple[str, float]]:
    out, seen = [], set()
    for f in np.lexsort((np.arange(len(row)), -row)):
        if row[f] <= 0 or len(out) >= n:
            break
        pairs = s.labels.get(int(f))
        if pairs and pairs[0][0] not in seen:
            seen.add(pairs[0][0])
            out.append((pairs[0][0], float(row[f])))
    return out


def settings_for(base, **overrides):
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
