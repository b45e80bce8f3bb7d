"""`explore --rank clarity` skips rarely seen features; `search` says what exists when a word is
no label. Known answers on a hand-built session (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from interpbench.errors import NotFoundError
from interpbench.leaderboard import explore as ex


def _session(labels, clarity, fire_count, top_n=20):
    record = {"model": {"name": "toy", "spec": "toy"}, "settings": {"top_n": top_n}}
    n = len(fire_count)
    return ex.Session(source=None, stored=None, record=record, labels=labels,
                      per_feature={"clarity": np.asarray(clarity, np.float32)},
                      mean_act=np.ones(n), fire_count=np.asarray(fire_count))


def test_rank_clarity_skips_features_seen_on_fewer_than_top_n_images():
    # feature 0 is the "clearest" but fires on 2 images only; 3 has no Clarity at all
    s = _session({}, [0.97, 0.50, 0.61, np.nan, 0.55], [2, 40, 20, 300, 19])
    assert ex.rank_features(s, "clarity", 5) == [2, 1]  # top_n = 20 images at least
    assert ex.rank_features(s, "clarity", 5, min_images=2) == [0, 2, 4, 1]
    assert ex.rank_features(_session({}, [0.97, 0.50, 0.61, np.nan, 0.55], [2, 40, 20, 300, 19], top_n=10),
                            "clarity", 5) == [2, 4, 1]
    assert ex.rank_features(s, "active", 2) == [0, 1]  # activity ranking is unchanged


LABELS = {0: [("round shape", 0.9), ("circle", 0.8)], 1: [("red", 0.7), ("circle", 0.2), ("large", 0.1)],
          2: [("hexagon", 0.5)], 3: [("red", 0.4), ("small", 0.3), ("circle", 0.1)], 4: []}


def test_search_for_a_word_that_is_no_label_suggests_the_depth_and_lists_labels():
    s = _session(LABELS, [0.5] * 5, [30] * 5)
    with pytest.raises(NotFoundError) as err:
        ex.search(s, "Circle")
    msg = str(err.value)
    assert "no feature of toy has 'Circle' as its label" in msg
    assert "With --depth 2" in msg and "2 feature(s) match" in msg  # features 0 and 1 at depth 2
    assert "The 3 labels of its 4 labelled features (count): red (2), hexagon (1), round shape (1)." in msg
    assert err.value.exit_code == 14 and err.value.kind == "not found"


def test_search_for_an_unknown_word_lists_labels_and_close_ones_without_depth_hint():
    s = _session(LABELS, [0.5] * 5, [30] * 5)
    with pytest.raises(NotFoundError) as err:
        ex.search(s, "hexagons", depth=3)
    msg = str(err.value)
    assert "among its first 3 top words" in msg and "--depth" not in msg
    assert "Closest labels: hexagon." in msg and "red (2)" in msg


def test_search_with_no_labels_at_all_says_so():
    s = _session({0: [], 1: []}, [0.5] * 2, [30] * 2)
    with pytest.raises(NotFoundError, match="No feature of this model has a label"):
        ex.search(s, "red")


def test_search_title_says_how_the_word_matched():
    from interpbench.leaderboard.render import search_title

    assert search_title({"word": "cat", "depth": 1}) == "labelled 'cat'"
    assert search_title({"word": "cat", "depth": 3}) == "with 'cat' among their first 3 top words"
