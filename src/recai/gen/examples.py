"""One supervised fine-tuning example for the generative recommender, and its JSONL form.

A line of a JSONL file is one :class:`GenExample` as a JSON object with the fields ``id``, ``task``,
``messages``, ``items``, ``target``, ``history``, ``seen``, ``k``, ``control`` and ``user``. The
messages end with the assistant's reference answer; ``items`` are the item ids that answer names, in
order. :class:`GenData` (a :class:`~recai.train.example_sets.ExampleSet`) saves a train and a test
part as one folder, atomically; every reading error names the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from recai.data.errors import plain_value
from recai.data.jsonl import (
    FieldError,
    check_fields,
    check_item_ids,
    check_messages,
    check_text,
    is_item_id,
)
from recai.train.example_sets import ChatExample, ExampleSet

ItemId = int | str
CONTROL_MODES = ("in", "not_in", "at_least", "at_most")
_FIELDS = ("id", "task", "messages", "items", "target", "history", "seen", "k", "control", "user")


@dataclass(frozen=True)
class Control:
    """A category constraint on a requested list.

    ``in`` / ``not_in``: every item must (not) have ``value`` in ``column``; ``at_least`` /
    ``at_most``: that share of the list must have it (``share`` in 0..1).

    Attributes:
        column: the categorical catalog column the constraint reads.
        value: the category value.
        mode: one of ``in``, ``not_in``, ``at_least``, ``at_most``.
        share: the share of the list (0..1) for ``at_least`` / ``at_most``; None otherwise.
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
class GenExample(ChatExample):
    """A conversation whose last message is the reference answer, with what evaluation needs to score it.

    Attributes:
        id: ``TASK-PART-NNNNNN``, numbered in generation order.
        task: the task's name.
        messages: the chat (optional system message, the request, the assistant's reference answer).
        items: ids of the items the answer names, in order.
        target: the held-out next item, or None (cold and grounding tasks).
        history: the ids shown in the prompt, oldest first.
        seen: every id of the user's input log (excluded from answers).
        k: the number of items asked for; None for questions that are no list.
        control: the category constraint the request states, or None.
        user: the user's id, or None.
        meta: builder diagnostics (e.g. the kind of a general question); not saved.
    """

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
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

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
        """Read :meth:`to_dict` output; a ``FieldError`` names the field."""
        data = check_fields(data, _FIELDS)
        check_text(data, "id", "task")
        messages = check_messages(data["messages"])  # ends with the assistant's answer
        check_item_ids(data, "items", "history", "seen")
        if data["target"] is not None and not is_item_id(data["target"]):
            raise FieldError("target", f"expected an item id or null, got {data['target']!r}")
        k = data["k"]
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise FieldError("k", f"expected a positive integer or null, got {k!r}")
        control = None
        if data["control"] is not None:
            raw = data["control"]
            if not isinstance(raw, dict) or set(raw) != {"column", "value", "mode", "share"}:
                raise FieldError("control", f"expected {{column, value, mode, share}}, got {raw!r}")
            try:
                control = Control(str(raw["column"]), str(raw["value"]), raw["mode"], raw["share"])
            except (ValueError, TypeError) as exc:
                raise FieldError("control", str(exc)) from None
        return cls(
            id=data["id"],
            task=data["task"],
            messages=messages,
            items=tuple(data["items"]),
            target=data["target"],
            history=tuple(data["history"]),
            seen=tuple(data["seen"]),
            k=k,
            control=control,
            user=data["user"],
        )


def first_per_task(examples: Iterable[GenExample], limit: int | None) -> list[GenExample]:
    """The first ``limit`` examples of each task, in order (all of them without a limit): a smaller
    evaluation that every system answers alike."""
    if limit is None:
        return list(examples)
    taken: dict[str, int] = {}
    kept = []
    for example in examples:
        taken[example.task] = taken.get(example.task, 0) + 1
        if taken[example.task] <= limit:
            kept.append(example)
    return kept


@dataclass
class GenData(ExampleSet[GenExample]):
    """Train and test examples with the settings that made them; a folder of ``train.jsonl``,
    ``test.jsonl`` and ``meta.json``, written atomically.

    Attributes:
        train: the training examples (every task).
        test: the test examples (list tasks only), each about a held-out test event.
        meta: the settings, the split, the teacher and the counts per task.
    """

    example_type: ClassVar[type[GenExample]] = GenExample
    kind: ClassVar[str] = "a gen data folder"
