"""The Recommender conformance suite (in the spirit of implicit's and LensKit's shared test mixins).

Needs pytest. Every model passes the same tests on the same small synthetic log
(:func:`recai.testing.data.ring_log`: users walk around a ring of items, item i usually followed by
i+1, so sequences, co-occurrence and popularity all carry signal)::

    from recai.testing import RecommenderSuite

    class TestMyModel(RecommenderSuite):
        learns_sequences = True  # False for a model that ignores the history by design

        @staticmethod
        def make() -> MyModel:
            return MyModel(factors=8, seed=1)  # small, seeded, unfitted
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from recai.data import Interactions
from recai.rec.base import Recommender
from recai.rec.estimator import NotFittedError
from recai.testing.data import N_ITEMS, ring_log
from recai.testing.suite import class_fixture

__all__ = ["RecommenderSuite"]


class RecommenderSuite:
    """The Recommender contract as tests: mix into a test class that defines ``make``.

    The contract every :class:`~recai.rec.base.Recommender` keeps (scores, recommendations, save and
    load, errors when unfitted), checked on the ring log.

    Attributes:
        make: Builds an unfitted, small, seeded model.
        learns_sequences: ``False`` skips the one test that needs the model to use the history.
    """

    make: Callable[[], Recommender]
    learns_sequences: bool = True

    @class_fixture
    def log(cls) -> Interactions:
        return ring_log()

    @class_fixture
    def fitted(cls, log: Interactions) -> Recommender:
        model = cls.make()
        assert model.fit(log) is model
        return model

    def test_unfitted_use_is_an_error(self) -> None:
        with pytest.raises(NotFittedError):
            type(self).make().score([[0]])

    def test_learned_attributes_end_with_an_underscore(self, fitted: Recommender) -> None:
        learned = [
            k for k, v in vars(fitted).items() if k.endswith("_") and not k.startswith("_") and v is not None
        ]
        assert "n_items_" in learned and len(learned) >= 2

    def test_score_shapes(self, fitted: Recommender) -> None:
        scores = fitted.score([[0, 1, 2], [5], []])
        assert scores.shape == (3, N_ITEMS + 2) and np.isfinite(scores).all()
        assert fitted.score([[0, 1]], items=[3, 4, 5]).shape == (1, 3)
        with pytest.raises(IndexError):
            fitted.score([[N_ITEMS + 5]])

    def test_recommend_excludes_history_and_respects_k(self, fitted: Recommender) -> None:
        history = [3, 4, 5, 6]
        items, scores = fitted.recommend(history, k=5)
        assert len(items) == 5 and not set(items) & set(history)
        assert np.all(np.diff(scores) <= 0)
        again, _ = fitted.recommend(history, k=5, exclude_history=False)
        assert len(again) == 5

    def test_candidates_and_exclusions(self, fitted: Recommender) -> None:
        items, _ = fitted.recommend([0, 1], k=10, candidates=[2, 7, 9, 1], exclude=[9])
        assert set(items) == {2, 7}  # 1 is history, 9 excluded
        assert len(fitted.recommend([0], k=3, candidates=[])[0]) == 0

    def test_a_new_users_history_works(self, fitted: Recommender) -> None:
        items, _ = fitted.recommend([10, 11, 12], k=3, user="somebody-new")
        assert len(items) == 3

    def test_similar_items(self, fitted: Recommender) -> None:
        items, scores = fitted.similar_items(4, k=5)
        assert len(items) == 5 and 4 not in items and np.all(np.diff(scores) <= 1e-9)

    def test_save_load_gives_identical_scores(self, fitted: Recommender, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "model")
        loaded = type(fitted).load(path)
        histories = [[0, 1, 2], [20, 21], []]
        assert np.allclose(loaded.score(histories), fitted.score(histories), atol=1e-6)
        users = ["u0", "u1", "nobody"]
        assert np.allclose(
            loaded.score(histories, users=users), fitted.score(histories, users=users), atol=1e-6
        )

    def test_training_is_deterministic(self, log: Interactions, fitted: Recommender) -> None:
        again = type(self).make().fit(log)
        assert np.allclose(again.score([[0, 1, 2], [9]]), fitted.score([[0, 1, 2], [9]]), atol=1e-6)

    def test_it_learns_the_ring(self, fitted: Recommender) -> None:
        """Better than chance at putting the next ring item in the top 5 (popularity is exempt)."""
        if not self.learns_sequences:
            pytest.skip("this model ignores the history by design")
        hits = sum(
            int((s + 3) % N_ITEMS in fitted.recommend([s, s + 1, s + 2], k=5)[0]) for s in range(0, 20)
        )
        assert hits >= 10  # chance is about 5 in 20
