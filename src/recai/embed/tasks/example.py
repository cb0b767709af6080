"""One training or test example for the embedder, and its JSONL form.

A line of the JSONL file is one :class:`Example` as a JSON object with the fields ``id``, ``task``,
``query``, ``positive``, ``negatives``, ``predicates``, ``split_key`` and ``source``.
:class:`ExampleSplit` (a :class:`~recai.train.example_sets.ExampleSet`) saves a train and a test part as
one folder, atomically (a crash leaves the old folder), and every reading error names the file, the line
and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.jsonl import FieldError, check_fields, check_item_ids, is_item_id, plain_json
from recai.embed.tasks.predicates import Predicate, PredicateError, predicate_from_dict, satisfies
from recai.train.example_sets import ExampleSet

ItemId = int | str
_FIELDS = ("id", "task", "query", "positive", "negatives", "predicates", "split_key", "source")


@dataclass(frozen=True)
class Example:
    """A query, the item it should retrieve, and items it must not retrieve.

    ``predicates`` are the conditions the query states (empty for tasks whose query is a history, an
    item or a name): the positive satisfies all of them and every negative violates at least one.
    ``split_key`` ("item:ID" or "user:ID") decides whether the example is in train or test, and
    ``source`` records how it was made (anchor user or item, template or LLM, attempts).

    Attributes:
        id: ``task-NNNNNN``, numbered in generation order within its task.
        task: the task's name.
        query: the text to embed as a query.
        positive: the item id the query should retrieve.
        negatives: hard negatives, closest first: items that provably do not answer the query.
        predicates: the conditions the query states.
        split_key: "item:ID" or "user:ID", which decides train or test.
        source: how the example was made.
    """

    id: str
    task: str
    query: str
    positive: ItemId
    negatives: tuple[ItemId, ...] = ()
    predicates: tuple[Predicate, ...] = ()
    split_key: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)

    def satisfying(self, catalog: Catalog) -> np.ndarray:
        """Which catalog rows satisfy every stated condition (for coverage@k and false-negative masks)."""
        return satisfies(catalog, self.predicates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "query": self.query,
            "positive": plain_value(self.positive),
            "negatives": [plain_value(n) for n in self.negatives],
            "predicates": [p.to_dict() for p in self.predicates],
            "split_key": self.split_key,
            "source": plain_json(dict(self.source)),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Example:
        """Read :meth:`to_dict` output; a ``ValueError`` names the field (``field`` attribute set)."""
        data = check_fields(data, _FIELDS)
        for name in ("id", "task", "query", "split_key"):
            if not isinstance(data[name], str):
                raise FieldError(name, f"expected text, got {data[name]!r}")
        if not data["query"].strip():
            raise FieldError("query", "empty query")
        if not is_item_id(data["positive"]):
            raise FieldError("positive", f"expected an item id (integer or text), got {data['positive']!r}")
        check_item_ids(data, "negatives")
        negatives = data["negatives"]
        if not isinstance(data["predicates"], list):
            raise FieldError("predicates", f"expected a list, got {data['predicates']!r}")
        predicates = []
        for i, raw in enumerate(data["predicates"]):
            try:
                predicates.append(predicate_from_dict(raw, where=f"predicates[{i}]"))
            except PredicateError as exc:
                raise FieldError(exc.field, exc.reason) from None
        if not isinstance(data["source"], dict):
            raise FieldError("source", f"expected an object, got {data['source']!r}")
        return cls(
            id=data["id"],
            task=data["task"],
            query=data["query"],
            positive=data["positive"],
            negatives=tuple(negatives),
            predicates=tuple(predicates),
            split_key=data["split_key"],
            source=data["source"],
        )


@dataclass
class ExampleSplit(ExampleSet[Example]):
    """Train and test examples with the settings and counts that produced them.

    Saved as a folder (``train.jsonl``, ``test.jsonl``, ``meta.json``) written atomically.

    Attributes:
        train: the training examples.
        test: the test examples (their split keys are test items or users; no query seen in training).
        meta: the settings, counts, dropped duplicates, writers and rejections of the build.
    """

    example_type: ClassVar[type[Example]] = Example
    kind: ClassVar[str] = "an example folder"
