"""One training or test example for the embedder, and its JSONL form.

A line of the JSONL file is one :class:`Example` as a JSON object with the fields ``id``, ``task``,
``query``, ``positive``, ``negatives``, ``predicates``, ``split_key`` and ``source``. Files are written
atomically (a crash leaves the old file), and every reading error names the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.atomic import atomic_directory
from recai.data.catalog import Catalog
from recai.data.errors import plain_value
from recai.data.jsonl import (
    FieldError,
    check_fields,
    check_item_ids,
    count_by_task,
    is_item_id,
    plain_json,
    read_jsonl,
    read_split_files,
    write_jsonl,
    write_split_files,
)
from recai.embed.tasks.predicates import Predicate, PredicateError, predicate_from_dict, satisfies

ItemId = int | str
_FIELDS = ("id", "task", "query", "positive", "negatives", "predicates", "split_key", "source")


@dataclass(frozen=True)
class Example:
    """A query, the item it should retrieve, and items it must not retrieve.

    ``predicates`` are the conditions the query states (empty for tasks whose query is a history, an
    item or a name): the positive satisfies all of them and every negative violates at least one.
    ``split_key`` ("item:ID" or "user:ID") decides whether the example is in train or test, and
    ``source`` records how it was made (anchor user or item, template or LLM, attempts).
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


def example_line(example: Example) -> str:
    """One JSONL line (no newline): UTF-8 text, fields in a fixed order, so files are byte-stable."""
    return json.dumps(example.to_dict(), ensure_ascii=False)


def write_examples(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write ``examples`` as JSON lines, atomically."""
    return write_jsonl(path, (example.to_dict() for example in examples))


def read_examples(path: str | Path) -> list[Example]:
    """Read a JSONL file written by :func:`write_examples`; blank lines are skipped.

    Raises :class:`~recai.data.errors.DataError` naming the file, the line and the field of the first
    problem.
    """
    return read_jsonl(path, Example.from_dict)


@dataclass
class ExampleSplit:
    """Train and test examples with the settings and counts that produced them.

    Saved as a folder (``train.jsonl``, ``test.jsonl``, ``meta.json``) written atomically.
    """

    train: list[Example]
    test: list[Example]
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per task in each part."""
        return count_by_task(self.train, self.test)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        folder = Path(folder)
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            write_split_files(tmp, self.train, self.test, self.meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExampleSplit:
        return cls(*read_split_files(folder, Example.from_dict, what="an example folder"))
