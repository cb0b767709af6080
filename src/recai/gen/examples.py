"""One supervised fine-tuning example for the generative recommender, and its JSONL form.

A line of a JSONL file is one :class:`GenExample` as a JSON object with the fields ``id``, ``task``,
``messages``, ``items``, ``target``, ``history``, ``seen``, ``k``, ``control`` and ``user``. The
messages end with the assistant's reference answer; ``items`` are the item ids that answer names, in
order. Files are written atomically, and every reading error names the file, the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recai.data.atomic import atomic_directory, atomic_file
from recai.data.errors import DataError, plain_value

ItemId = int | str
ROLES = ("system", "user", "assistant")
CONTROL_MODES = ("in", "not_in", "at_least", "at_most")
_FIELDS = ("id", "task", "messages", "items", "target", "history", "seen", "k", "control", "user")


@dataclass(frozen=True)
class Control:
    """A category constraint on a requested list.

    ``in`` / ``not_in``: every item must (not) have ``value`` in ``column``; ``at_least`` /
    ``at_most``: that share of the list must have it (``share`` in 0..1).
    """

    column: str
    value: str
    mode: str
    share: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in CONTROL_MODES:
            raise ValueError(f"control mode must be one of {CONTROL_MODES}, got {self.mode!r}")
        if self.mode in ("at_least", "at_most"):
            if self.share is None or not 0.0 <= self.share <= 1.0:
                raise ValueError(
                    f"control mode {self.mode} needs a share between 0 and 1, got {self.share!r}"
                )
        elif self.share is not None:
            raise ValueError(f"control mode {self.mode} takes no share")

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "value": self.value, "mode": self.mode, "share": self.share}


@dataclass(frozen=True)
class GenExample:
    """A conversation whose last message is the reference answer, with what evaluation needs to score it."""

    id: str
    task: str
    messages: tuple[dict[str, str], ...]
    items: tuple[ItemId, ...] = ()
    target: ItemId | None = None
    history: tuple[ItemId, ...] = ()
    seen: tuple[ItemId, ...] = ()
    k: int | None = None
    control: Control | None = None
    user: Any = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # not saved: builder diagnostics

    @property
    def prompt(self) -> list[dict[str, str]]:
        """The messages a model answers (everything before the reference answer)."""
        return [dict(m) for m in self.messages[:-1]]

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]

    @property
    def is_list(self) -> bool:
        """Whether the task asks for a list of items (and so is scored by the list metrics)."""
        return self.k is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.messages],
            "items": [plain_value(i) for i in self.items],
            "target": plain_value(self.target),
            "history": [plain_value(i) for i in self.history],
            "seen": [plain_value(i) for i in self.seen],
            "k": self.k,
            "control": self.control.to_dict() if self.control is not None else None,
            "user": plain_value(self.user),
        }

    @classmethod
    def from_dict(cls, data: Any) -> GenExample:
        """Read :meth:`to_dict` output; a ``_FieldError`` names the field."""
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
        if messages[-1]["role"] != "assistant":
            raise _FieldError(
                f"messages[{len(messages) - 1}].role", "the last message must be the assistant's"
            )
        for name in ("items", "history", "seen"):
            if not isinstance(data[name], list) or not all(_is_id(v) for v in data[name]):
                raise _FieldError(name, f"expected a list of item ids, got {data[name]!r}")
        if data["target"] is not None and not _is_id(data["target"]):
            raise _FieldError("target", f"expected an item id or null, got {data['target']!r}")
        k = data["k"]
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise _FieldError("k", f"expected a positive integer or null, got {k!r}")
        control = None
        if data["control"] is not None:
            raw = data["control"]
            if not isinstance(raw, dict) or set(raw) != {"column", "value", "mode", "share"}:
                raise _FieldError("control", f"expected {{column, value, mode, share}}, got {raw!r}")
            try:
                control = Control(str(raw["column"]), str(raw["value"]), raw["mode"], raw["share"])
            except (ValueError, TypeError) as exc:
                raise _FieldError("control", str(exc)) from None
        return cls(
            id=data["id"],
            task=data["task"],
            messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
            items=tuple(data["items"]),
            target=data["target"],
            history=tuple(data["history"]),
            seen=tuple(data["seen"]),
            k=k,
            control=control,
            user=data["user"],
        )


class _FieldError(ValueError):
    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def write_examples(path: str | Path, examples: Iterable[GenExample]) -> Path:
    """Write ``examples`` as JSON lines (UTF-8, fields in a fixed order), atomically."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
    return path


def read_examples(path: str | Path) -> list[GenExample]:
    """Read a JSONL file of examples; a :class:`DataError` names the file, line and field of a problem."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path=path)
    out: list[GenExample] = []
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
                out.append(GenExample.from_dict(data))
            except _FieldError as exc:
                raise DataError(str(exc), path=path, line=number, field=exc.field) from None
    return out


@dataclass
class GenData:
    """Train and test examples with the settings that made them; a folder of ``train.jsonl``,
    ``test.jsonl`` and ``meta.json``, written atomically."""

    train: list[GenExample]
    test: list[GenExample]
    meta: dict[str, Any] = field(default_factory=dict)

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
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> GenData:
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise DataError("not a gen data folder: missing meta.json", path=folder)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
        return cls(read_examples(folder / "train.jsonl"), read_examples(folder / "test.jsonl"), meta)
