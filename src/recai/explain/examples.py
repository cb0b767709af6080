"""One alignment example and its JSONL form, and the data folder that holds a task set with its target.

An example's messages are mode-independent: users and items appear as slots (``<<user>>``,
``<<item:ID>>``) that :mod:`recai.explain.render` fills as text (behaviour), as embedding placeholders
(intention) or as both (hybrid). Fields of a JSONL line:

``id``, ``task``, ``messages`` (the last one the assistant's answer, which holds no slot), ``user``,
``history`` (item ids the target saw for that user, oldest first), ``items`` (ids the answer names, in
order), ``candidates`` (ids shown in a ranking prompt), ``label`` (``yes`` / ``no`` for classification)
and ``opaque`` (slots are embeddings only: the task would be copying in behaviour mode).

Files are written atomically; a reading error names the file, the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory
from recai.data.errors import DataError, plain_value
from recai.data.jsonl import (
    CHAT_ROLES,
    FieldError,
    check_fields,
    check_item_ids,
    check_messages,
    check_text,
    count_by_task,
    read_jsonl,
    read_split_files,
    write_jsonl,
    write_split_files,
)

ROLES = CHAT_ROLES
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
    import pandas as pd

    from recai.data.catalog import Catalog
    from recai.data.schema import CatalogSchema

    if not (folder / "items.parquet").exists() or not (folder / "schema.yaml").exists():
        raise DataError("missing the catalog (items.parquet, schema.yaml)", path=folder)
    return Catalog(pd.read_parquet(folder / "items.parquet"), CatalogSchema.load(folder / "schema.yaml"))


def user_slot() -> str:
    return "<<user>>"


def item_slot(item_id: Any) -> str:
    return f"<<item:{plain_value(item_id)}>>"


@dataclass(frozen=True)
class ExplainExample:
    """A chat with user / item slots, and what scoring it needs."""

    id: str
    task: str
    messages: tuple[dict[str, str], ...]
    user: Any = None
    history: tuple[Any, ...] = ()
    items: tuple[Any, ...] = ()
    candidates: tuple[Any, ...] = ()
    label: str | None = None
    opaque: bool = False

    @property
    def prompt(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.messages[:-1]]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

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
        messages = check_messages(data["messages"])
        last = len(messages) - 1
        if messages[-1]["role"] != "assistant":
            raise FieldError(f"messages[{last}].role", "the last message must be the assistant's")
        if SLOT.search(messages[-1]["content"]):
            raise FieldError(f"messages[{last}].content", "the answer must not hold a user or item slot")
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


def write_examples(path: str | Path, examples: Iterable[ExplainExample]) -> Path:
    """Write ``examples`` as JSON lines (UTF-8, fields in a fixed order), atomically."""
    return write_jsonl(path, (example.to_dict() for example in examples))


def read_examples(path: str | Path) -> list[ExplainExample]:
    """Read a JSONL file of examples; a :class:`DataError` names the file, line and field of a problem."""
    return read_jsonl(path, ExplainExample.from_dict)


@dataclass
class ExplainData:
    """Train and test examples, the settings that made them, the target model that labelled them, and the
    catalog their slots refer to.

    A folder of ``train.jsonl``, ``test.jsonl``, ``meta.json``, ``target/`` (the saved recommender) and
    ``catalog/``, written atomically, so training and evaluation use exactly the model the labels came from.
    """

    train: list[ExplainExample]
    test: list[ExplainExample]
    meta: dict[str, Any] = field(default_factory=dict)
    target: Any = None  # a TargetModel
    catalog: Any = None  # a Catalog

    def counts(self) -> dict[str, dict[str, int]]:
        return count_by_task(self.train, self.test)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        folder = Path(folder)
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            write_split_files(tmp, self.train, self.test, self.meta)
            if self.target is not None:
                self.target.save(tmp / TARGET_DIR)
            if self.catalog is not None:
                save_catalog(self.catalog, tmp / CATALOG_DIR)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExplainData:
        from recai.explain.target import TargetModel

        folder = Path(folder)
        train, test, meta = read_split_files(folder, ExplainExample.from_dict, what="an explain data folder")
        if not (folder / TARGET_DIR / "meta.json").exists():
            raise DataError("missing the target model the labels came from", path=folder / TARGET_DIR)
        target = TargetModel.load(folder / TARGET_DIR)
        return cls(train, test, meta, target, load_catalog(folder / CATALOG_DIR))
