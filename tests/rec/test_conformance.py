from __future__ import annotations

import pytest

from recai.rec import ALS, BPR, ItemKNN, Popularity, SASRec
from tests.rec.conformance import RecommenderConformance


class TestPopularity(RecommenderConformance):
    learns_sequences = False

    @staticmethod
    def make() -> Popularity:
        return Popularity()


class TestItemKNN(RecommenderConformance):
    @staticmethod
    def make() -> ItemKNN:
        return ItemKNN(neighbours=10)


class TestALS(RecommenderConformance):
    @staticmethod
    def make() -> ALS:
        return ALS(factors=8, iterations=10, seed=1)


class TestBPR(RecommenderConformance):
    @staticmethod
    def make() -> BPR:
        return BPR(factors=8, iterations=60, learning_rate=0.05, seed=1)


@pytest.mark.filterwarnings("ignore::UserWarning")
class TestSASRec(RecommenderConformance):
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
