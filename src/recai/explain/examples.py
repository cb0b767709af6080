"""One alignment example and its JSONL form, and the data folder that holds a task set with its target.

An example's messages are mode-independent: users and items appear as slots (``<<user>>``,
``<<item:ID>>``) that :mod:`recai.explain.render` fills as text (behaviour), as embedding placeholders
(intention) or as both (hybrid). Fields of a JSONL line:

``id``, ``task``, ``messages`` (the last one the assistant's answer, which holds no slot), ``user``,
``history`` (item ids the target saw for that user, oldest first), ``items`` (ids the answer names, in
order), ``candidates`` (ids shown in a ranking prompt), ``label`` (``yes`` / ``no`` for classification)
and ``opaque`` (slots are embeddings only: the task would be copying in behaviour mode).

:class:`ExplainData` (a :class:`~recai.train.example_sets.ExampleSet`) keeps them with the target and the
catalog in one folder, written atomically; a reading error names the file, the line and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from recai.data.errors import DataError, plain_value
from recai.data.jsonl import (
    FieldError,
    check_fields,
    check_item_ids,
    check_messages,
    check_text,
)
from recai.train.example_sets import ChatExample, ExampleSet

LABELS = ("yes", "no")
SLOT = re.compile(r"<<(user|item:([^>]+))>>")
_FIELDS = ("id", "task", "messages", "user", "history", "items", "candidates", "label", "opaque")
TARGET_DIR = "target"
CATALOG_DIR = "catalog"


def save_catalog(catalog: Any, folder: Path) -> None:
    """The catalog as ``items.parquet`` + ``schema.yaml`` (the dataset layout): folders stand alone."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog.items.to_parquet(folder / "items.parquet", index=False)
    catalog.schema.save(folder / "schema.yaml")


def load_catalog(folder: Path) -> Any:
    """The catalog :func:`save_catalog` wrote; a :class:`DataError` when its files are missing."""
    import pandas as pd

    from recai.data.catalog import Catalog
    from recai.data.schema import CatalogSchema

    if not (folder / "items.parquet").exists() or not (folder / "schema.yaml").exists():
        raise DataError("missing the catalog (items.parquet, schema.yaml)", path=folder)
    return Catalog(pd.read_parquet(folder / "items.parquet"), CatalogSchema.load(folder / "schema.yaml"))


def user_slot() -> str:
    """The slot the user takes in a prompt."""
    return "<<user>>"


def item_slot(item_id: Any) -> str:
    """The slot an item takes in a prompt."""
    return f"<<item:{plain_value(item_id)}>>"


@dataclass(frozen=True)
class ExplainExample(ChatExample):
    """A chat with user / item slots, and what scoring it needs.

    Attributes:
        id: ``TASK-PART-NNNNNN``, numbered in generation order.
        task: the task's name.
        messages: the chat; the last message is the answer and holds no slot.
        user: the user's id, or None for item questions.
        history: item ids the target saw for that user, oldest first.
        items: ids the answer names, in order.
        candidates: ids shown in a ranking question, in the order shown.
        label: ``yes`` / ``no`` for classification, else None.
        opaque: the slots are embeddings only (the task would be copying in behaviour mode).
    """

    id: str
    task: str
    messages: tuple[dict[str, str], ...]
    user: Any = None
    history: tuple[Any, ...] = ()
    items: tuple[Any, ...] = ()
    candidates: tuple[Any, ...] = ()
    label: str | None = None
    opaque: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.messages],
            "user": plain_value(self.user),
            "history": [plain_value(i) for i in self.history],
            "items": [plain_value(i) for i in self.items],
            "candidates": [plain_value(i) for i in self.candidates],
            "label": self.label,
            "opaque": self.opaque,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ExplainExample:
        data = check_fields(data, _FIELDS)
        check_text(data, "id", "task")
        messages = check_messages(data["messages"])  # ends with the assistant's answer
        if SLOT.search(messages[-1]["content"]):
            raise FieldError(
                f"messages[{len(messages) - 1}].content", "the answer must not hold a user or item slot"
            )
        check_item_ids(data, "history", "items", "candidates")
        if data["label"] is not None and data["label"] not in LABELS:
            raise FieldError("label", f"expected one of {LABELS} or null, got {data['label']!r}")
        if not isinstance(data["opaque"], bool):
            raise FieldError("opaque", f"expected true or false, got {data['opaque']!r}")
        return cls(
            id=data["id"],
            task=data["task"],
            messages=messages,
            user=data["user"],
            history=tuple(data["history"]),
            items=tuple(data["items"]),
            candidates=tuple(data["candidates"]),
            label=data["label"],
            opaque=data["opaque"],
        )


@dataclass
class ExplainData(ExampleSet[ExplainExample]):
    """Train and test examples, the settings that made them, the target model that labelled them, and the
    catalog their slots refer to.

    A folder of ``train.jsonl``, ``test.jsonl``, ``meta.json``, ``target/`` (the saved recommender) and
    ``catalog/``, written atomically, so training and evaluation use exactly the model the labels came from.

    Attributes:
        train: the training examples.
        test: the test examples (tasks with an alignment metric), about held-out test users.
        meta: the settings, user counts and counts per task.
        target: the :class:`~recai.explain.target.TargetModel` that labelled the examples.
        catalog: the :class:`~recai.data.catalog.Catalog` the item slots refer to.
    """

    target: Any = None
    catalog: Any = None

    example_type: ClassVar[type[ExplainExample]] = ExplainExample
    kind: ClassVar[str] = "an explain data folder"

    def write_files(self, folder: Path) -> None:
        """The examples and meta, then the target model and the catalog when set."""
        super().write_files(folder)
        if self.target is not None:
            self.target.save(folder / TARGET_DIR)
        if self.catalog is not None:
            save_catalog(self.catalog, folder / CATALOG_DIR)

    @classmethod
    def load(cls, folder: str | Path) -> ExplainData:
        """The folder :meth:`save` wrote; the target model must be there."""
        from recai.explain.target import TargetModel

        data = super().load(folder)
        folder = Path(folder)
        if not (folder / TARGET_DIR / "meta.json").exists():
            raise DataError("missing the target model the labels came from", path=folder / TARGET_DIR)
        data.target = TargetModel.load(folder / TARGET_DIR)
        data.catalog = load_catalog(folder / CATALOG_DIR)
        return data
