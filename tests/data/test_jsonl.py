"""The shared JSON-lines layer: errors name file, line and field; writes are atomic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recai.data.errors import DataError
from recai.data.jsonl import (
    FieldError,
    check_fields,
    check_item_ids,
    check_messages,
    read_jsonl,
    write_jsonl,
)


@dataclass(frozen=True)
class Row:
    task: str
    items: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "items": list(self.items)}

    @classmethod
    def from_dict(cls, data: Any) -> Row:
        data = check_fields(data, ("task", "items"))
        check_item_ids(data, "items")
        return cls(data["task"], tuple(data["items"]))


def test_records_round_trip_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    rows = [Row("a", (1, "x")), Row("b", ())]
    path = write_jsonl(tmp_path / "rows.jsonl", (r.to_dict() for r in rows))
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")
    assert read_jsonl(path, Row.from_dict) == rows


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('{"task": "a"}', "items", "missing"),
        ('{"task": "a", "items": [true]}', "items", "item ids"),
        ('{"task": "a", "items": [], "extra": 1}', "extra", "unknown"),
        ("[1, 2]", None, "JSON object"),
    ],
)
def test_a_bad_record_names_the_file_line_and_field(
    tmp_path: Path, line: str, field: str | None, words: str
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"task": "a", "items": [1]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_jsonl(path, Row.from_dict)
    message = str(caught.value)
    assert "rows.jsonl" in message and "2" in message and words in message
    if field:
        assert field in message


def test_broken_json_and_missing_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"task": "a", "items": [1]}\n{"task": \n', encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        read_jsonl(path, Row.from_dict)
    with pytest.raises(DataError, match="no such file"):
        read_jsonl(tmp_path / "absent.jsonl", Row.from_dict)


def test_a_failing_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"task": "old", "items": []}])

    def rows() -> Iterator[dict[str, Any]]:
        yield {"task": "new", "items": []}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert read_jsonl(path, Row.from_dict) == [Row("old", ())]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_messages_must_end_with_the_assistant() -> None:
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert check_messages(chat) == tuple(chat)
    with pytest.raises(FieldError) as caught:
        check_messages(chat[:1])
    assert caught.value.field == "messages[0].role"
    with pytest.raises(FieldError) as caught:
        check_messages([{"role": "robot", "content": "x"}])
    assert caught.value.field == "messages[0].role"
    with pytest.raises(FieldError) as caught:
        check_messages([{"role": "assistant", "content": "  "}])
    assert caught.value.field == "messages[0].content"
