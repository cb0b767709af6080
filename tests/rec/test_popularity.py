from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recai.data import Interactions
from recai.rec import Popularity
from recai.rec.estimator import NotFittedError
from recai.testing.data import make_log


@pytest.fixture
def inter() -> Interactions:
    day = 86_400
    rows = [
        ("a", 0, 0, 1.0),
        ("b", 0, 1, 1.0),
        ("c", 0, 2, 1.0),
        ("a", 1, 100 * day, 1.0),
        ("b", 1, 100 * day, 1.0),
        ("a", 2, 100 * day, 1.0),
        ("a", 0, 100 * day, 1.0),
    ]
    return Interactions(make_log(rows), pd.Index([0, 1, 2, 3]))


def test_counts_distinct_users(inter: Interactions) -> None:
    model = Popularity().fit(inter)
    assert model.item_scores_.tolist() == [3, 2, 1, 0]  # user a's repeat of item 0 counts once
    items, scores = model.recommend([], k=3)
    assert items.tolist() == [0, 1, 2] and scores.tolist() == [3, 2, 1]


def test_history_candidates_and_exclusions(inter: Interactions) -> None:
    model = Popularity().fit(inter)
    assert model.recommend([0], k=2)[0].tolist() == [1, 2]
    assert model.recommend([0], k=2, exclude_history=False)[0].tolist() == [0, 1]
    assert model.recommend([], k=5, candidates=[3, 2])[0].tolist() == [2, 3]
    assert model.recommend([], k=5, exclude=[1])[0].tolist() == [0, 2, 3]
    assert model.score([[0], [1, 2]], items=[1, 3]).tolist() == [[2, 0], [2, 0]]
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        model.score([[7]])


def test_time_decay_favours_recent_interest(inter: Interactions) -> None:
    model = Popularity(half_life_days=10).fit(inter)
    assert np.argmax(model.item_scores_) == 1  # item 0's interest is 100 days old
    assert model.item_scores_[0] == pytest.approx(1 + 2 * 0.5**10, rel=1e-3)
    with pytest.raises(ValueError, match="positive"):
        Popularity(half_life_days=0)


def test_save_load_and_unfitted(inter: Interactions, tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        Popularity().recommend([], 1)
    model = Popularity(half_life_days=5).fit(inter)
    again = Popularity.load(model.save(tmp_path / "pop"))
    assert again.half_life_days == 5 and np.array_equal(again.item_scores_, model.item_scores_)
    from recai.rec.base import Recommender

    class Other(Popularity):
        pass

    with pytest.raises(ValueError, match="holds a Popularity, not a Other"):
        Other.load(tmp_path / "pop")
    assert isinstance(again, Recommender)
