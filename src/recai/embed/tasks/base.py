"""What an embedding task is: a :class:`recai.train.tasks.Task` whose anchors are users or items and
whose product is a draft example (a query, a positive, hard negatives) with a seeded random generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.predicates import Predicate
from recai.train.tasks import Task

AnchorKind = Literal["user", "item"]


@dataclass
class Draft:
    """An example before ids, numbering and the split are given to it (positions, not ids).

    Attributes:
        query: the text to embed as a query.
        positive: the catalog position of the item the query should retrieve.
        negatives: catalog positions of hard negatives, closest first.
        predicates: the conditions the query states: the positive satisfies all, every negative violates one.
        user: the user's index in the log, for tasks built from a user's history.
        source: how the draft was made (history, writer, model, attempts); saved with the example.
    """

    query: str
    positive: int
    negatives: list[int]
    predicates: tuple[Predicate, ...] = ()
    user: int | None = None
    source: dict[str, Any] = field(default_factory=dict)


class EmbedTask(Task[TaskContext, int, Draft]):
    """One matching task of the embedder: a draft from a user or an item of the catalog.

    The builder checks every draft: the positive satisfies the predicates, each negative violates one,
    the query is not empty or too long, has hard negatives and (with ``masks_title``) does not name the
    positive. To add a task, subclass this, set ``name`` and ``anchor``, implement ``make`` and pass an
    instance to ``build_examples`` among the task names.

    Attributes:
        anchor: "user" (an index in the log) or "item" (a catalog position): what ``make`` starts from.
        masks_title: the query must never name the positive; only the misspelled-name task is exempt.
        uses_llm: the task's text is LLM-written when the build has a model (its drafts run concurrently).
    """

    anchor: ClassVar[AnchorKind] = "item"
    masks_title: ClassVar[bool] = True
    uses_llm: ClassVar[bool] = False

    def anchors(self, ctx: TaskContext) -> list[int]:
        """The users (indices in the log) or items (catalog positions) this task can start from."""
        if self.anchor == "user":
            lengths = ctx.log.user_lengths()
            return [int(u) for u in np.flatnonzero(lengths >= 3)]
        return list(range(len(ctx.catalog)))
