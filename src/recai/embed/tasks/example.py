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

from recai.data.atomic import atomic_directory, atomic_file
from recai.data.catalog import Catalog
from recai.data.errors import DataError, plain_value
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
            "source": _plain(dict(self.source)),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Example:
        """Read :meth:`to_dict` output; a ``ValueError`` names the field (``field`` attribute set)."""
        if not isinstance(data, dict):
            raise _FieldError(None, f"expected a JSON object, got {type(data).__name__}")
        for name in _FIELDS:
            if name not in data:
                raise _FieldError(name, "missing")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise _FieldError(unknown[0], f"unknown field(s) {unknown}")
        for name in ("id", "task", "query", "split_key"):
            if not isinstance(data[name], str):
                raise _FieldError(name, f"expected text, got {data[name]!r}")
        if not data["query"].strip():
            raise _FieldError("query", "empty query")
        if not _is_id(data["positive"]):
            raise _FieldError("positive", f"expected an item id (integer or text), got {data['positive']!r}")
        negatives = data["negatives"]
        if not isinstance(negatives, list) or not all(_is_id(n) for n in negatives):
            raise _FieldError("negatives", f"expected a list of item ids, got {negatives!r}")
        if not isinstance(data["predicates"], list):
            raise _FieldError("predicates", f"expected a list, got {data['predicates']!r}")
        predicates = []
        for i, raw in enumerate(data["predicates"]):
            try:
                predicates.append(predicate_from_dict(raw, where=f"predicates[{i}]"))
            except PredicateError as exc:
                raise _FieldError(exc.field, exc.reason) from None
        if not isinstance(data["source"], dict):
            raise _FieldError("source", f"expected an object, got {data['source']!r}")
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


class _FieldError(ValueError):
    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """NumPy scalars and tuples as plain JSON values, recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return plain_value(value)


def example_line(example: Example) -> str:
    """One JSONL line (no newline): UTF-8 text, fields in a fixed order, so files are byte-stable."""
    return json.dumps(example.to_dict(), ensure_ascii=False)


def write_examples(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write ``examples`` as JSON lines, atomically."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(example_line(example) + "\n")
    return path


def read_examples(path: str | Path) -> list[Example]:
    """Read a JSONL file written by :func:`write_examples`; blank lines are skipped.

    Raises :class:`~recai.data.errors.DataError` naming the file, the line and the field of the first
    problem.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path=path)
    out: list[Example] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=number
                ) from None
            try:
                out.append(Example.from_dict(data))
            except _FieldError as exc:
                raise DataError(str(exc), path=path, line=number, field=exc.field) from None
    return out


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
        out: dict[str, dict[str, int]] = {}
        for part, examples in (("train", self.train), ("test", self.test)):
            for example in examples:
                out.setdefault(example.task, {"train": 0, "test": 0})[part] += 1
        return out

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        folder = Path(folder)
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            write_examples(tmp / "train.jsonl", self.train)
            write_examples(tmp / "test.jsonl", self.test)
            text = json.dumps(_plain(self.meta), indent=2, ensure_ascii=False, sort_keys=True)
            (tmp / "meta.json").write_text(text + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExampleSplit:
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise DataError("not an example folder: missing meta.json", path=folder)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
        return cls(read_examples(folder / "train.jsonl"), read_examples(folder / "test.jsonl"), meta)
