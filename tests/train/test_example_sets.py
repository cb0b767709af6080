"""The shared example-set folder: round trips (NumPy in meta), counts per task, atomic replacement, and
errors that name the folder, file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from recai.data.errors import DataError
from recai.data.jsonl import check_fields, check_item_ids
from recai.train.example_sets import ChatExample, ExampleSet, read_examples, write_examples


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


@dataclass
class Rows(ExampleSet[Row]):
    example_type: ClassVar[type[Row]] = Row
    kind: ClassVar[str] = "a row folder"


def _rows() -> Rows:
    meta = {"seed": np.int64(3), "weights": np.array([0.5, 1.0]), "pair": (1, 2)}
    return Rows([Row("a", (1,)), Row("b", (2,))], [Row("a", (3,))], meta)


def test_a_folder_round_trips_with_numpy_in_meta(tmp_path: Path) -> None:
    rows = _rows()
    folder = rows.save(tmp_path / "data")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "test.jsonl", "train.jsonl"]
    assert (
        folder / "train.jsonl"
    ).read_text() == '{"task": "a", "items": [1]}\n{"task": "b", "items": [2]}\n'
    back = Rows.load(folder)
    assert (back.train, back.test) == (rows.train, rows.test)
    assert back.meta == {"seed": 3, "weights": [0.5, 1.0], "pair": [1, 2]}
    assert rows.counts() == {"a": {"train": 1, "test": 1}, "b": {"train": 1, "test": 0}}


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path: Path) -> None:
    folder = _rows().save(tmp_path / "data")
    with pytest.raises(FileExistsError):
        Rows([], [], {}).save(folder)
    Rows([], [Row("c", ())], {}).save(folder, overwrite=True)
    assert Rows.load(folder).counts() == {"c": {"train": 0, "test": 1}}


def test_errors_name_the_folder_kind_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not a row folder: missing meta\.json"):
        Rows.load(tmp_path)
    folder = _rows().save(tmp_path / "data")
    (folder / "test.jsonl").write_text('{"task": "a", "items": [1]}\n\n{"task": "a", "items": [true]}\n')
    with pytest.raises(DataError, match=r"test.jsonl, line 3, field 'items'"):
        Rows.load(folder)
    (folder / "meta.json").write_text("{")
    with pytest.raises(DataError, match=r"meta.json, line 1: not valid JSON"):
        Rows.load(folder)


def test_single_files_round_trip(tmp_path: Path) -> None:
    rows = [Row("a", (1, "x"))]
    assert read_examples(write_examples(tmp_path / "x.jsonl", rows), Row) == rows


def test_a_chat_example_is_asked_everything_before_its_answer() -> None:
    @dataclass(frozen=True)
    class Chat(ChatExample):
        messages: tuple[dict[str, str], ...]

    chat = Chat(({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}))
    assert chat.prompt == [{"role": "user", "content": "hi"}] and chat.answer == "hello"
