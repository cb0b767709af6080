"""Tasks whose query comes from a user's history: the next item (1), a summary of the user's tastes (3),
and the history combined with an explicit request (10).

The positive is the item the user really consumed next; hard negatives are never items the user
interacted with anywhere in the log (and, with a request, always violate one of its conditions).
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from recai.embed.tasks.base import AnchorKind, Draft, EmbedTask
from recai.embed.tasks.conditions import exact_condition, pick, vague_conditions
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.profile import ColumnKind
from recai.embed.tasks.wording import compose, join_titles, tidy, value_text
from recai.embed.tasks.writer import paragraph
from recai.evaluate.conversation import describe_taste

MIN_HISTORY = 2
_HISTORY_SHAPES = (
    "{titles}",
    "Recently: {titles}",
    "History, newest first: {titles}",
    "I liked {titles}. What should I try next?",
    "After {titles}, what comes next?",
    "Last {noun}s: {titles}",
    "Just finished {titles}. Next?",
)
_REQUEST_SHAPES = (
    "I've enjoyed {titles}. Now {request}.",
    "Recently: {titles}. {Request}",
    "Based on {titles}: {request}",
    "My last {noun}s were {titles}; {request}",
    "{titles} -- next, {request}",
)
_SUMMARY_LEADS = ("Likes", "Enjoys", "Is into", "Prefers", "A fan of", "Mostly goes for", "Drawn to")


def _cut(ctx: TaskContext, user: int, rng: np.random.Generator) -> tuple[int, list[int]] | None:
    """A random point in the user's sequence: the item there, and the history before it."""
    seq = ctx.sequence(user)
    if len(seq) < MIN_HISTORY + 1:
        return None
    cut = int(rng.integers(MIN_HISTORY, len(seq)))
    positive = int(seq[cut])
    history = ctx.history(user, cut)
    if positive in history or len(history) < MIN_HISTORY:
        return None  # a re-consumed item is not a prediction
    return positive, history


class HistoryTask(EmbedTask):
    """A task whose query comes from a user's history: the positive is the item the user consumed at a
    random point of their sequence (never a re-consumption), the history is what came before it."""

    anchor: ClassVar[AnchorKind] = "user"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        cut = _cut(ctx, anchor, rng)
        if cut is None:
            return None
        positive, history = cut
        return self.from_history(ctx, anchor, positive, history, rng)

    @abstractmethod
    def from_history(
        self, ctx: TaskContext, user: int, positive: int, history: list[int], rng: np.random.Generator
    ) -> Draft | None:
        """The draft for ``user`` (an index in the log) whose next item is ``positive`` after ``history``
        (newest first)."""


class HistoryNext(HistoryTask):
    """1. user history -> next item: the history's titles, newest first."""

    name: ClassVar[str] = "history_next"

    def from_history(
        self, ctx: TaskContext, user: int, positive: int, history: list[int], rng: np.random.Generator
    ) -> Draft | None:
        titles = join_titles([ctx.title(p) for p in history], rng)
        query = str(rng.choice(_HISTORY_SHAPES)).format(titles=titles, noun=ctx.noun)
        negatives = ctx.hard_negatives(positive, ~ctx.seen_mask(user), rng)
        return Draft(
            query, positive, negatives, user=user, source={"history": [ctx.item_id(p) for p in history]}
        )


class UserSummary(HistoryTask):
    """3. user summary -> item: a short description of the user's tastes (LLM-written when a model is
    configured, from the history's attributes otherwise); the positive is the user's next item."""

    name: ClassVar[str] = "user_summary"
    uses_llm: ClassVar[bool] = True

    def from_history(
        self, ctx: TaskContext, user: int, positive: int, history: list[int], rng: np.random.Generator
    ) -> Draft | None:
        source: dict[str, Any] = {"history": [ctx.item_id(p) for p in history]}
        summary = None
        if ctx.writer is not None:
            forbidden = [ctx.guard(positive), *(ctx.guard(p) for p in history)]
            seed = int(rng.integers(2**31))

            def check(reply: str) -> tuple[str | None, str]:
                text = paragraph(reply)
                if not text:
                    return None, "empty"
                if len(text) > 400:
                    return None, "too long"
                if any(g.leaks(text) for g in forbidden):
                    return None, "names a title"
                return text, ""

            written = ctx.writer.write(
                "user_summary",
                {
                    "noun": ctx.noun,
                    "history": "\n".join(f"- {ctx.title(p)}" for p in history),
                    "taste": describe_taste(ctx.catalog, history),
                },
                seed=seed,
                check=check,
            )
            summary = written.text
            source.update(writer="llm" if summary else "template", model=ctx.writer.model_id)
            source.update(attempts=written.attempts, rejected=written.rejected)
        if summary is None:
            summary = template_summary(ctx, history, rng)
            source.setdefault("writer", "template")
        if not summary:
            return None
        negatives = ctx.hard_negatives(positive, ~ctx.seen_mask(user), rng)
        return Draft(summary, positive, negatives, user=user, source=source)


def template_summary(ctx: TaskContext, history: list[int], rng: np.random.Generator) -> str:
    """A taste summary from the history, without titles: the values that recur in it more often than in
    the catalog at large (a history full of dramas says little when most items are dramas)."""
    profile = ctx.profile
    n_items = len(ctx.catalog)
    tags: list[str] = []
    facets: list[str] = []
    for info in profile.columns.values():
        if info.kind is ColumnKind.YEAR:
            years = [float(profile.values(p, info.name)[0]) for p in history if profile.values(p, info.name)]
            if years:
                decade = int(np.median(years) // 10 * 10)
                facets.append(f"mostly from the {decade}s")
            continue
        if info.kind not in (ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
            continue
        counts: Counter[str] = Counter()
        for p in history:
            counts.update(str(v) for v in dict.fromkeys(profile.values(p, info.name)))
        catalog_share = ctx.catalog.column_values(info.name) / n_items
        lifted = sorted(
            ((c / (len(history) * float(catalog_share.get(v, 1.0))), v) for v, c in counts.items() if c >= 2),
            key=lambda pair: (-pair[0], pair[1]),
        )
        lifted = [(lift, v) for lift, v in lifted if lift >= 1.5]
        if not lifted:
            continue
        if info.kind is ColumnKind.TAG:
            tags += [value_text(info, v) for _, v in lifted[:2]]
        elif info.kind is ColumnKind.ENTITY:
            facets.append(f"often with {lifted[0][1]}")
        elif counts[lifted[0][1]] >= 0.5 * len(history):
            facets.append(f"{info.label} mostly {lifted[0][1]}")
    if not tags and not facets:
        return ""
    facets = [facets[int(i)] for i in rng.permutation(len(facets))]
    subject = (" and ".join(tags) + f" {ctx.noun}s") if tags else f"{ctx.noun}s"
    lead = str(rng.choice(_SUMMARY_LEADS))
    joiner = str(rng.choice(["; ", ", "]))
    return tidy(f"{lead} {subject}" + "".join(joiner + f for f in facets) + ".")


class HistoryQuery(HistoryTask):
    """10. history + query -> item: the user's history and an explicit request that their real next
    item satisfies; hard negatives violate the request and are new to the user."""

    name: ClassVar[str] = "history_query"

    def from_history(
        self, ctx: TaskContext, user: int, positive: int, history: list[int], rng: np.random.Generator
    ) -> Draft | None:
        options = vague_conditions(ctx, positive, rng)
        for info in ctx.profile.of_kind(ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
            condition = exact_condition(ctx, positive, info, rng)
            if condition is not None and ctx.share(condition) <= 0.5:
                options.append(condition)
        predicates = tuple(pick(rng, options, 1 + int(rng.random() < 0.4)))
        if not predicates:
            return None
        request = compose([p.wordings(ctx.profile.columns) for p in predicates], ctx.noun, rng)
        titles = join_titles([ctx.title(p) for p in history[: max(MIN_HISTORY, ctx.history_len // 2)]], rng)
        shape = str(rng.choice(_REQUEST_SHAPES))
        query = shape.format(
            titles=titles, request=request, Request=request[:1].upper() + request[1:], noun=ctx.noun
        )
        violated = ctx.violations(predicates)
        eligible = (violated > 0) & ~ctx.seen_mask(user)
        negatives = ctx.hard_negatives(positive, eligible, rng, violations=violated)
        source = {"history": [ctx.item_id(p) for p in history], "request": request}
        return Draft(query, positive, negatives, predicates, user=user, source=source)


__all__ = ["HistoryNext", "HistoryQuery", "HistoryTask", "UserSummary", "template_summary"]
