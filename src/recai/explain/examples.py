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

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory, atomic_file
from recai.data.errors import DataError, plain_value

ROLES = ("system", "user", "assistant")
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
        if not isinstance(data, dict):
            raise _FieldError(None, f"expected a JSON object, got {type(data).__name__}")
        for name in _FIELDS:
            if name not in data:
                raise _FieldError(name, "missing")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise _FieldError(unknown[0], f"unknown field(s) {unknown}")
        for name in ("id", "task"):
            if not isinstance(data[name], str) or not data[name]:
                raise _FieldError(name, f"expected non-empty text, got {data[name]!r}")
        messages = data["messages"]
        if not isinstance(messages, list) or not messages:
            raise _FieldError("messages", "expected a non-empty list of messages")
        for i, m in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                raise _FieldError(where, f"expected {{'role', 'content'}}, got {m!r}")
            if m["role"] not in ROLES:
                raise _FieldError(f"{where}.role", f"expected one of {ROLES}, got {m['role']!r}")
            if not isinstance(m["content"], str) or not m["content"].strip():
                raise _FieldError(f"{where}.content", "expected non-empty text")
        last = len(messages) - 1
        if messages[-1]["role"] != "assistant":
            raise _FieldError(f"messages[{last}].role", "the last message must be the assistant's")
        if SLOT.search(messages[-1]["content"]):
            raise _FieldError(f"messages[{last}].content", "the answer must not hold a user or item slot")
        for name in ("history", "items", "candidates"):
            if not isinstance(data[name], list) or not all(_is_id(v) for v in data[name]):
                raise _FieldError(name, f"expected a list of item ids, got {data[name]!r}")
        if data["label"] is not None and data["label"] not in LABELS:
            raise _FieldError("label", f"expected one of {LABELS} or null, got {data['label']!r}")
        if not isinstance(data["opaque"], bool):
            raise _FieldError("opaque", f"expected true or false, got {data['opaque']!r}")
        return cls(
            id=data["id"],
            task=data["task"],
            messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
            user=data["user"],
            history=tuple(data["history"]),
            items=tuple(data["items"]),
            candidates=tuple(data["candidates"]),
            label=data["label"],
            opaque=data["opaque"],
        )


class _FieldError(ValueError):
    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def write_examples(path: str | Path, examples: Iterable[ExplainExample]) -> Path:
    """JSON lines, fields in a fixed order, written atomically."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
    return path


def read_examples(path: str | Path) -> list[ExplainExample]:
    """Read a JSONL file; a :class:`DataError` names the file, line and field of a problem."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path=path)
    out: list[ExplainExample] = []
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
                out.append(ExplainExample.from_dict(data))
            except _FieldError as exc:
                raise DataError(str(exc), path=path, line=number, field=exc.field) from None
    return out


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
            text = json.dumps(self.meta, indent=2, ensure_ascii=False, sort_keys=True, default=plain_value)
            (tmp / "meta.json").write_text(text + "\n", encoding="utf-8")
            if self.target is not None:
                self.target.save(tmp / TARGET_DIR)
            if self.catalog is not None:
                save_catalog(self.catalog, tmp / CATALOG_DIR)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ExplainData:
        from recai.explain.target import TargetModel

        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise DataError("not an explain data folder: missing meta.json", path=folder)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
        if not (folder / TARGET_DIR / "meta.json").exists():
            raise DataError("missing the target model the labels came from", path=folder / TARGET_DIR)
        return cls(
            read_examples(folder / "train.jsonl"),
            read_examples(folder / "test.jsonl"),
            meta,
            TargetModel.load(folder / TARGET_DIR),
            load_catalog(folder / CATALOG_DIR),
        )
