"""The knowledge Extractor conformance suite. Needs pytest.

What :class:`recai.knowledge.base.Extractor` promises: ``fit(catalog, train)`` returns self and learns
attributes ending with ``_``; it refuses interactions over another vocabulary, and a fit without the
recommender it needs (``needs_model``); ``facts`` before ``fit`` (and ``save``) raise
:class:`~recai.rec.estimator.NotFittedError` saying to call ``fit``; facts are :class:`Fact` records of
the extractor's kind, with strength in 0..1, candidates from the query and anchors from its history,
JSON-serialisable values, in a deterministic order; fitting again with the same settings gives the
same facts; ``save`` / ``load`` give the same facts; hyperparameters round-trip through ``get_params``.
It runs on the ring dataset of :mod:`recai.testing.data` (leave-one-out split, training part only)::

    from recai.testing import ExtractorSuite

    class TestMyExtractor(ExtractorSuite):
        @staticmethod
        def make() -> MyExtractor:
            return MyExtractor(min_count=2)

An extractor with ``needs_model = True`` is given :meth:`ExtractorSuite.make_model` (a small seeded
ALS fitted on the training part; override it for another model).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recai.data import Dataset, Interactions
from recai.data.splits import Split
from recai.knowledge.base import Extractor
from recai.knowledge.facts import Fact, Query
from recai.rec.estimator import NotFittedError
from recai.testing.data import N_ITEMS, ring_dataset
from recai.testing.suite import class_fixture

__all__ = ["ExtractorSuite", "ring_queries"]


def ring_queries() -> list[Query]:
    """Samples along the ring: three consecutive items, and candidates that include the next one."""
    out = []
    for start in range(0, N_ITEMS, 3):
        history = [start % N_ITEMS, (start + 1) % N_ITEMS, (start + 2) % N_ITEMS]
        candidates = [(start + 3) % N_ITEMS, (start + 11) % N_ITEMS, (start + 17) % N_ITEMS, N_ITEMS]
        out.append(Query.of(history, candidates, user=f"u{start}"))
    return out


class ExtractorSuite:
    """The Extractor contract as tests: mix into a test class that defines ``make``.

    The contract every knowledge :class:`~recai.knowledge.base.Extractor` keeps (fit, facts, save and
    load, clear errors when unfitted), checked on the ring dataset.

    Attributes:
        make: Builds an unfitted extractor.
        produces_facts: ``False`` drops the check that some ring sample gets at least one fact.
    """

    make: Callable[[], Extractor]
    produces_facts: bool = True

    @staticmethod
    def make_model(train: Interactions) -> Any:
        """The fitted recommender an extractor with ``needs_model`` is given."""
        from recai.rec import ALS

        return ALS(factors=8, iterations=10, seed=1).fit(train)

    # ------------------------------------------------------------ fixtures
    @class_fixture
    def ring(cls) -> Dataset:
        return ring_dataset()

    @class_fixture
    def split(cls, ring: Dataset) -> Split:
        return ring.split()

    @class_fixture
    def model(cls, split: Split) -> Any:
        return cls.make_model(split.train) if cls.make().needs_model else None

    @class_fixture
    def fitted(cls, ring: Dataset, split: Split, model: Any) -> Extractor:
        extractor = cls.make()
        assert extractor.fit(ring.catalog, split.train, model=model) is extractor
        return extractor

    # --------------------------------------------------------------- tests
    def test_unfitted_use_is_a_clear_error(self, tmp_path: Path) -> None:
        extractor = type(self).make()
        assert not extractor.fitted
        with pytest.raises(NotFittedError, match="fit"):
            extractor.facts(Query.of([0], [1]))
        with pytest.raises(NotFittedError):
            extractor.save(tmp_path / "unfitted")

    def test_learned_attributes_end_with_an_underscore(self, fitted: Extractor) -> None:
        assert fitted.fitted and fitted.catalog_ is not None
        unfitted = set(vars(type(self).make()))
        learned = [k for k in vars(fitted) if k not in unfitted and not k.startswith("_")]
        assert all(k.endswith("_") for k in learned), f"learned attributes must end with '_': {learned}"
        assert not [k for k in fitted.get_params() if k.endswith("_")], "hyperparameters end without '_'"

    def test_params_round_trip(self, fitted: Extractor) -> None:
        params = fitted.get_params()
        json.dumps(params)
        assert type(fitted)(**params).get_params() == params

    def test_it_refuses_another_vocabulary_or_a_missing_model(self, ring: Dataset, split: Split) -> None:
        other = Interactions(split.train.frame, pd.Index(range(N_ITEMS + 5)))
        with pytest.raises(ValueError, match="vocabulary"):
            type(self).make().fit(ring.catalog, other, model=None)
        if type(self).make().needs_model:
            with pytest.raises(ValueError, match="model="):
                type(self).make().fit(ring.catalog, split.train)

    def test_facts_have_the_documented_shape(self, fitted: Extractor) -> None:
        total = 0
        for query in ring_queries():
            facts = fitted.facts(query)
            assert isinstance(facts, list)
            for fact in facts:
                assert isinstance(fact, Fact) and fact.kind == fitted.kind
                assert isinstance(fact.relation, str) and fact.relation
                assert 0.0 <= float(fact.strength) <= 1.0 and np.isfinite(fact.strength)
                assert fact.candidate is None or fact.candidate in query.candidates
                assert fact.anchor is None or fact.anchor in query.history
                json.dumps(dict(fact.values))
                json.dumps(fact.as_record())
            total += len(facts)
        if self.produces_facts:
            assert total > 0, "no ring sample got a single fact"

    def test_no_candidates_means_no_facts(self, fitted: Extractor) -> None:
        assert fitted.facts(Query.of([0, 1, 2], [])) == []

    def test_facts_are_deterministic(
        self, fitted: Extractor, ring: Dataset, split: Split, model: Any
    ) -> None:
        again = type(self).make().fit(ring.catalog, split.train, model=model)
        for query in ring_queries():
            assert fitted.facts(query) == fitted.facts(query) == again.facts(query)

    def test_save_load_gives_the_same_facts(self, fitted: Extractor, ring: Dataset, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "extractor")
        loaded = type(fitted).load(path, ring.catalog)
        assert loaded.fitted and loaded.get_params() == fitted.get_params()
        for query in ring_queries():
            assert loaded.facts(query) == fitted.facts(query)
