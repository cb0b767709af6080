"""Tasks whose query states attributes of the positive: all of them (4), one to three (5), vague
conditions (8), and a negative condition (9).

Every query is a set of predicates the positive satisfies; hard negatives are the items closest to the
positive that violate at least one of them (fewest violations first: near misses are the hardest).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.conditions import exact_condition, pick, vague_conditions
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.predicates import HasValue, InRange, Not, Predicate
from recai.embed.tasks.profile import ColumnKind
from recai.embed.tasks.wording import article, attribute_pair, compose, tidy

#: Partial-attribute queries add attributes (up to three) while more than this share of the catalog
#: satisfies them, and are dropped when even three leave more than :data:`MAX_PARTIAL_SHARE`.
TARGET_PARTIAL_SHARE = 0.3
MAX_PARTIAL_SHARE = 0.5
#: A negated value is drawn from the values of this many items closest to the positive.
NEIGHBOURS = 50
_FULL_SHAPES = (
    "{facts}",
    "Find the {noun}: {facts}",
    "Which {noun} is this? {facts}",
    "{A} {noun} with these details: {facts}",
    "Details: {facts}",
)
_PAIR_JOINERS = ("; ", ", ", " | ")


def _draft(
    ctx: TaskContext, positive: int, predicates: tuple[Predicate, ...], query: str, rng: np.random.Generator
) -> Draft:
    violated = ctx.violations(predicates)
    negatives = ctx.hard_negatives(positive, violated > 0, rng, violations=violated)
    return Draft(query, positive, negatives, predicates)


class FullAttributes(EmbedTask):
    """4. full attributes -> item: every attribute, including the long text, with the title masked."""

    name: ClassVar[str] = "full_attributes"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        profile = ctx.profile
        columns = [c for c in profile.columns if profile.values(anchor, c)]
        if not columns:
            return None
        columns = [columns[int(i)] for i in rng.permutation(len(columns))]
        predicates: list[Predicate] = []
        for name in columns:
            info = profile.columns[name]
            for value in profile.values(anchor, name):
                if info.kind in (ColumnKind.TAG, ColumnKind.ENTITY, ColumnKind.CATEGORY):
                    predicates.append(HasValue(name, str(value)))
            if info.kind in (ColumnKind.YEAR, ColumnKind.QUANTITY, ColumnKind.DATE):
                exact = exact_condition(ctx, anchor, info, rng)
                if exact is not None:
                    predicates.append(exact)
        guard = ctx.guard(anchor)
        facts = guard.mask(ctx.catalog.render(anchor, columns=columns, by_position=True, max_chars=0))
        room = ctx.max_query_chars - len(facts) - 40
        if profile.text_columns and room > 80:
            text = ctx.catalog.render(anchor, columns=profile.text_columns, by_position=True, max_chars=room)
            facts = f"{facts} {guard.mask(text)}".strip()
        shape = str(rng.choice(_FULL_SHAPES))
        query = shape.format(facts=facts, noun=ctx.noun, A=article(ctx.noun).capitalize())
        return _draft(ctx, anchor, tuple(predicates), query, rng)


class PartialAttributes(EmbedTask):
    """5. partial attributes -> item: one to three attributes as stated in the data."""

    name: ClassVar[str] = "partial_attributes"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        options = [
            p
            for info in ctx.profile.columns.values()
            if (p := exact_condition(ctx, anchor, info, rng)) is not None
        ]
        order = pick(rng, options, len(options))
        k = int(rng.integers(1, 4))
        chosen = order[:k]
        while ctx.satisfying(chosen).mean() > TARGET_PARTIAL_SHARE and len(chosen) < min(3, len(order)):
            chosen = order[: len(chosen) + 1]
        if not chosen or ctx.satisfying(chosen).mean() > MAX_PARTIAL_SHARE:
            return None
        predicates = tuple(chosen)
        if rng.random() < 0.5:
            pairs = [self._pair(ctx, p) for p in predicates]
            query = str(rng.choice(_PAIR_JOINERS)).join(pairs)
        else:
            query = compose([p.wordings(ctx.profile.columns) for p in predicates], ctx.noun, rng)
        return _draft(ctx, anchor, predicates, tidy(query), rng)

    @staticmethod
    def _pair(ctx: TaskContext, predicate: Predicate) -> str:
        info = ctx.profile.columns[predicate.columns[0]]
        if isinstance(predicate, HasValue):
            return attribute_pair(info, None, value=predicate.value)
        assert isinstance(predicate, InRange)
        return attribute_pair(info, predicate.low, predicate.high)


class VagueCondition(EmbedTask):
    """8. vague condition -> item: "before 1990", "under 100 minutes", "something recent", "a popular
    one", sometimes with a category to narrow it."""

    name: ClassVar[str] = "vague_condition"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        chosen = pick(rng, vague_conditions(ctx, anchor, rng), 1 + int(rng.random() < 0.5))
        if not chosen:
            return None
        if rng.random() < 0.4:
            values = [
                p
                for info in ctx.profile.of_kind(ColumnKind.TAG, ColumnKind.CATEGORY)
                if (p := exact_condition(ctx, anchor, info, rng)) is not None and ctx.share(p) <= 0.5
            ]
            chosen += pick(rng, values, 1)
        predicates = tuple(chosen)
        query = compose([p.wordings(ctx.profile.columns) for p in predicates], ctx.noun, rng)
        return _draft(ctx, anchor, predicates, query, rng)


class NegativeCondition(EmbedTask):
    """9. negative condition -> item: "not horror", "without Tom Hanks", usually next to a condition the
    positive meets ("a thriller, but not horror"). The negated value is one that items close to the
    positive have; the hard negatives are items that have it (they violate the negation), those that
    meet the other condition first."""

    name: ClassVar[str] = "negative_condition"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        profile = ctx.profile
        anchor_condition: Predicate | None = None
        if rng.random() < 0.7:
            options = [
                p
                for info in profile.of_kind(ColumnKind.TAG, ColumnKind.CATEGORY, ColumnKind.ENTITY)
                if (p := exact_condition(ctx, anchor, info, rng)) is not None
            ]
            options += vague_conditions(ctx, anchor, rng)
            chosen = pick(rng, options, 1)
            anchor_condition = chosen[0] if chosen else None
        base = ctx.mask(anchor_condition) if anchor_condition is not None else np.ones(len(ctx.catalog), bool)
        closeness = ctx.closeness(anchor)
        near = [int(i) for i in np.argsort(-closeness, kind="stable") if base[i] and i != anchor][:NEIGHBOURS]
        kinds = (ColumnKind.TAG, ColumnKind.CATEGORY) if rng.random() < 0.8 else (ColumnKind.ENTITY,)
        counts: dict[Predicate, int] = {}
        for info in profile.of_kind(*kinds):
            if anchor_condition is not None and info.name in anchor_condition.columns:
                continue  # "French, not English" says nothing the first part does not
            own = {str(v) for v in profile.values(anchor, info.name)}
            for item in near:
                for value in profile.values(item, info.name):
                    if str(value) not in own:
                        key = HasValue(info.name, str(value))
                        counts[key] = counts.get(key, 0) + 1
        # a person ("without Tom Hanks") is only worth negating when several close items have them
        least = 2 if kinds == (ColumnKind.ENTITY,) else 1
        candidates = [(value, hits) for value, hits in counts.items() if hits >= least]
        if not candidates:
            return None
        weights = np.array([h for _, h in candidates], dtype=float)
        negated = candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))][0]
        predicates = (*(() if anchor_condition is None else (anchor_condition,)), Not(negated))
        query = compose([p.wordings(profile.columns) for p in predicates], ctx.noun, rng)
        violated = ctx.violations(predicates)
        negatives = ctx.hard_negatives(anchor, ctx.mask(negated), rng, violations=violated)
        return Draft(query, anchor, negatives, predicates)
