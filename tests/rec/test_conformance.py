"""Every recommender in :data:`recai.rec.MODELS` passes :class:`recai.testing.RecommenderSuite`."""

from __future__ import annotations

import sys

import pytest

from recai.rec import ALS, BPR, MODELS, ItemKNN, Popularity, SASRec
from recai.testing import RecommenderSuite


class TestPopularity(RecommenderSuite):
    learns_sequences = False

    @staticmethod
    def make() -> Popularity:
        return Popularity()


class TestItemKNN(RecommenderSuite):
    @staticmethod
    def make() -> ItemKNN:
        return ItemKNN(neighbours=10)


class TestALS(RecommenderSuite):
    @staticmethod
    def make() -> ALS:
        return ALS(factors=8, iterations=10, seed=1)


class TestBPR(RecommenderSuite):
    @staticmethod
    def make() -> BPR:
        return BPR(factors=8, iterations=60, learning_rate=0.05, seed=1)


@pytest.mark.filterwarnings("ignore::UserWarning")
class TestSASRec(RecommenderSuite):
    @staticmethod
    def make() -> SASRec:
        return SASRec(
            hidden=16,
            layers=1,
            heads=2,
            inner=32,
            max_len=8,
            dropout=0.1,
            epochs=30,
            batch_size=32,
            learning_rate=5e-3,
            seed=1,
        )


def test_every_registered_recommender_runs_the_suite() -> None:
    """A model added to MODELS fails here until it has a suite class above."""
    module = sys.modules[__name__]
    covered = {
        type(cls.make())
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, RecommenderSuite) and cls is not RecommenderSuite
    }
    missing = sorted(name for name, model in MODELS.items() if model not in covered)
    assert not missing, f"recommenders without a RecommenderSuite test: {missing}"
