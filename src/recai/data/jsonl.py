"""JSON-lines files of typed records, shared by every pillar's examples.

The embedder's, the generator's and the explainer's examples are different dataclasses but are stored the
same way: one JSON object per line, written atomically (a crash leaves the old file), read back with an
error that names the file, the line and the field of the first problem. A record type supplies only its
``to_dict`` and a ``from_dict`` that raises :class:`FieldError`; this module does the rest
(:mod:`recai.train.example_sets` keeps a train and a test part of them as one folder).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from recai.data.atomic import atomic_file
from recai.data.errors import DataError, plain_value
from recai.errors import RecaiError

T = TypeVar("T")
CHAT_ROLES = ("system", "user", "assistant")


class FieldError(ValueError, RecaiError):
    """A record's field is missing or malformed, so :func:`read_jsonl` can name the field with the line.

    Args:
        field_name: The field (None: the record as a whole); kept as ``field``.
        message: What is wrong with it.
    """

    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def is_item_id(value: Any) -> bool:
    """Item ids are ints or strings (never bools, which JSON would otherwise let through as ints)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def check_fields(data: Any, fields: Sequence[str]) -> dict[str, Any]:
    """``data`` as a dict holding exactly ``fields``, else a :class:`FieldError` naming the first culprit."""
    if not isinstance(data, dict):
        raise FieldError(None, f"expected a JSON object, got {type(data).__name__}")
    for name in fields:
        if name not in data:
            raise FieldError(name, "missing")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise FieldError(unknown[0], f"unknown field(s) {unknown}")
    return data


def check_text(data: Mapping[str, Any], *names: str) -> None:
    """Each named field is non-empty text."""
    for name in names:
        if not isinstance(data[name], str) or not data[name]:
            raise FieldError(name, f"expected non-empty text, got {data[name]!r}")


def check_item_ids(data: Mapping[str, Any], *names: str) -> None:
    """Each named field is a list of item ids."""
    for name in names:
        if not isinstance(data[name], list) or not all(is_item_id(v) for v in data[name]):
            raise FieldError(name, f"expected a list of item ids, got {data[name]!r}")


def check_messages(value: Any, field_name: str = "messages") -> tuple[dict[str, str], ...]:
    """A chat that ends with the assistant's answer, as a tuple of plain ``{role, content}`` dicts."""
    if not isinstance(value, list) or not value:
        raise FieldError(field_name, "expected a non-empty list of messages")
    for i, message in enumerate(value):
        where = f"{field_name}[{i}]"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise FieldError(where, f"expected {{'role', 'content'}}, got {message!r}")
        if message["role"] not in CHAT_ROLES:
            raise FieldError(f"{where}.role", f"expected one of {CHAT_ROLES}, got {message['role']!r}")
        if not isinstance(message["content"], str) or not message["content"].strip():
            raise FieldError(f"{where}.content", "expected non-empty text")
    if value[-1]["role"] != "assistant":
        raise FieldError(f"{field_name}[{len(value) - 1}].role", "the last message must be the assistant's")
    return tuple({"role": m["role"], "content": m["content"]} for m in value)


def plain_json(value: Any) -> Any:
    """NumPy scalars, arrays and tuples as plain JSON values, recursively (dict keys as text)."""
    import numpy as np  # here, not at the top: reading a saved folder's metadata needs no NumPy

    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain_json(v) for v in value]
    return plain_value(value)


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line (UTF-8, keys in the mapping's order, so files are byte-stable), atomically."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def json_objects(lines: Iterable[str], path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file read from ``path``; a line that
    is not one JSON object is a :class:`DataError` naming the file and the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=number
            ) from None
        if not isinstance(value, dict):
            raise DataError(f"expected a JSON object, got {type(value).__name__}", path=path, line=number)
        yield number, value


def read_jsonl(path: str | Path, parse: Callable[[dict[str, Any]], T]) -> list[T]:
    """Each non-blank line of ``path`` through ``parse``; a :class:`DataError` names file, line and field."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file", path=path)
    out: list[T] = []
    with path.open(encoding="utf-8") as f:
        for number, data in json_objects(f, path):
            try:
                out.append(parse(data))
            except FieldError as exc:
                raise DataError(str(exc), path=path, line=number, field=exc.field) from None
    return out


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold one object (a saved folder's metadata); a :class:`DataError` names the
    line of invalid JSON."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(document, dict):
        raise DataError("expected a JSON object", path=path)
    return document
