"""Every extractor in :data:`recai.knowledge.EXTRACTORS` passes :class:`recai.testing.ExtractorSuite`."""

from __future__ import annotations

import sys

from recai.knowledge import (
    EXTRACTORS,
    AttributeExtractor,
    CooccurrenceExtractor,
    EmbeddingExtractor,
    GraphExtractor,
    PatternsExtractor,
    RecommenderExtractor,
)
from recai.testing import ExtractorSuite


class TestAttributes(ExtractorSuite):
    @staticmethod
    def make() -> AttributeExtractor:
        return AttributeExtractor()


class TestCooccurrence(ExtractorSuite):
    @staticmethod
    def make() -> CooccurrenceExtractor:
        return CooccurrenceExtractor()


class TestEmbedding(ExtractorSuite):
    @staticmethod
    def make() -> EmbeddingExtractor:
        return EmbeddingExtractor(model="als", min_percentile=0.0)


class TestRecommender(ExtractorSuite):
    @staticmethod
    def make() -> RecommenderExtractor:
        return RecommenderExtractor(model="als")


class TestPatterns(ExtractorSuite):
    @staticmethod
    def make() -> PatternsExtractor:
        return PatternsExtractor(min_count=2)


class TestGraph(ExtractorSuite):
    @staticmethod
    def make() -> GraphExtractor:
        return GraphExtractor(hops=2)


def test_every_registered_extractor_runs_the_suite() -> None:
    """An extractor added to EXTRACTORS fails here until it has a suite class above."""
    module = sys.modules[__name__]
    covered = {
        type(cls.make())
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, ExtractorSuite) and cls is not ExtractorSuite
    }
    missing = sorted(kind for kind, extractor in EXTRACTORS.items() if extractor not in covered)
    assert not missing, f"extractors without an ExtractorSuite test: {missing}"
