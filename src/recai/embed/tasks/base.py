"""What a task is: a name, the anchors it starts from (users or items), and a way to turn one anchor
into a draft example with a seeded random generator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.predicates import Predicate

AnchorKind = Literal["user", "item"]


@dataclass
class Draft:
    """An example before ids, numbering and the split are given to it (positions, not ids)."""

    query: str
    positive: int
    negatives: list[int]
    predicates: tuple[Predicate, ...] = ()
    user: int | None = None  # user index in the log, for tasks built from a user's history
    source: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """One matching task. ``masks_title``: the query must never name the positive (checked by the
    builder for every draft); only the misspelled-name task is exempt."""

    name: ClassVar[str]
    anchor: ClassVar[AnchorKind] = "item"
    masks_title: ClassVar[bool] = True
    uses_llm: ClassVar[bool] = False

    def anchors(self, ctx: TaskContext) -> list[int]:
        """The users (indices in the log) or items (catalog positions) this task can start from."""
        if self.anchor == "user":
            lengths = ctx.log.user_lengths()
            return [int(u) for u in np.flatnonzero(lengths >= 3)]
        return list(range(len(ctx.catalog)))

    @abstractmethod
    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        """One draft from ``anchor``, or None when this anchor cannot give one this time."""
