"""Train and test examples as one folder: the one example-set class every fine-tuning pillar saves.

The embedder's, the generator's and the explainer's examples are different dataclasses, but a set of
them is kept the same way: a folder of ``train.jsonl`` and ``test.jsonl`` (one example per line, written
by the example's ``to_dict``) and ``meta.json`` (the settings and counts that produced them, keys sorted),
written atomically, so a crash leaves the old folder or none. Reading back names the file, the line and
the field of the first problem. A pillar subclasses :class:`ExampleSet`, names its example type, and
adds files of its own by extending :meth:`ExampleSet.write_files` and :meth:`ExampleSet.load`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from recai.data.atomic import atomic_directory
from recai.data.errors import DataError
from recai.data.jsonl import plain_json, read_jsonl, write_jsonl

#: The parts of an example set, in the order they are written.
PARTS: tuple[str, ...] = ("train", "test")
META_FILE = "meta.json"


class ExampleRecord(Protocol):
    """What an example type gives an example set: its task's name and a JSON form both ways
    (``from_dict`` raises :class:`~recai.data.jsonl.FieldError` naming the field of a problem).

    Attributes:
        task: the name of the task that made the example (examples are counted by it).
    """

    @property
    def task(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, data: Any) -> Any: ...


class ChatExample:
    """Mixin of the chat examples (gen, explain): the messages end with the reference answer, and a
    model is asked everything before it.

    Attributes:
        messages: the chat, ``{role, content}`` dicts; the last one is the assistant's reference answer.
    """

    messages: tuple[dict[str, str], ...]

    @property
    def prompt(self) -> list[dict[str, str]]:
        """The messages a model answers (everything before the reference answer), as new dicts."""
        return [dict(m) for m in self.messages[:-1]]

    @property
    def answer(self) -> str:
        """The reference answer's text."""
        return self.messages[-1]["content"]


ExampleT = TypeVar("ExampleT", bound=ExampleRecord)
SetT = TypeVar("SetT", bound="ExampleSet[Any]")


def part_file(part: str) -> str:
    """The file a part is saved in: ``train.jsonl`` or ``test.jsonl``."""
    return f"{part}.jsonl"


def write_examples(path: str | Path, examples: Iterable[ExampleRecord]) -> Path:
    """``examples`` as JSON lines, atomically: UTF-8, fields in ``to_dict``'s order, so files are
    byte-stable."""
    return write_jsonl(path, (example.to_dict() for example in examples))


def read_examples(path: str | Path, example_type: type[ExampleT]) -> list[ExampleT]:
    """A JSONL file of ``example_type`` records; blank lines are skipped.

    Raises :class:`~recai.data.errors.DataError` naming the file, the line and the field of the first
    problem (e.g. ``train.jsonl, line 3, field 'messages[1].role': ...``).
    """
    return read_jsonl(path, example_type.from_dict)


def count_by_task(parts: Mapping[str, Iterable[ExampleRecord]]) -> dict[str, dict[str, int]]:
    """Examples per task in each part, tasks in order of first appearance: what ``meta.json`` and the
    CLI report."""
    out: dict[str, dict[str, int]] = {}
    for part, examples in parts.items():
        for example in examples:
            out.setdefault(example.task, dict.fromkeys(parts, 0))[part] += 1
    return out


@dataclass
class ExampleSet(Generic[ExampleT]):
    """Train and test examples with the settings that produced them, saved as one folder.

    Subclasses set ``example_type`` (what a JSON line is read back as) and ``kind`` (how an error names
    the folder). Everything a pillar builds, trains on and evaluates goes through this class, so a
    folder written by one version of recai loads in the next.

    Attributes:
        train: the training examples, in generation order.
        test: the held-out examples, in generation order (may be empty).
        meta: the settings, counts and provenance written to ``meta.json``; JSON-able values only
            (NumPy scalars and tuples are converted on save).
    """

    train: list[ExampleT]
    test: list[ExampleT]
    meta: dict[str, Any] = field(default_factory=dict)

    example_type: ClassVar[type[Any]]
    kind: ClassVar[str] = "an example folder"

    def parts(self) -> dict[str, list[ExampleT]]:
        """``{"train": ..., "test": ...}``: the parts by name, in the order they are saved."""
        return {"train": self.train, "test": self.test}

    def counts(self) -> dict[str, dict[str, int]]:
        """Examples per task in each part: ``{task: {"train": n, "test": m}}``."""
        return count_by_task(self.parts())

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder atomically; an existing folder is replaced only with ``overwrite``."""
        folder = Path(folder)
        with atomic_directory(folder, overwrite=overwrite) as tmp:
            self.write_files(tmp)
        return folder

    def write_files(self, folder: Path) -> None:
        """The folder's files, into ``folder`` (a temporary one that :meth:`save` moves in place).
        A subclass that keeps more (a model, a catalog) extends this."""
        for part, examples in self.parts().items():
            write_examples(folder / part_file(part), examples)
        text = json.dumps(plain_json(dict(self.meta)), indent=2, ensure_ascii=False, sort_keys=True)
        (folder / META_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls: type[SetT], folder: str | Path) -> SetT:
        """Read a folder written by :meth:`save`; a :class:`~recai.data.errors.DataError` names the file
        (and the line and field) of the first problem."""
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.exists():
            raise DataError(f"not {cls.kind}: missing {META_FILE}", path=folder)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
        train, test = (read_examples(folder / part_file(part), cls.example_type) for part in PARTS)
        return cls(train, test, meta)
