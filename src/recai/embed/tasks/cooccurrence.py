"""2. item -> item: an item's title as the query, an item consumed near it in users' sequences as the
positive, and items never consumed near it as hard negatives."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.context import TaskContext

#: Positives are drawn from the anchor's closest partners, weighted by cosine-normalised counts.
TOP_PARTNERS = 10
MIN_COUNT = 2
_SHAPES = (
    "{title}",
    "similar to {title}",
    "more like {title}",
    "If I liked {title}, what else?",
    "{noun}s like {title}",
    "people who liked {title} also liked",
    "something in the spirit of {title}",
)


class ItemToItem(EmbedTask):
    """Co-occurrence means: within ``window`` events of each other in one user's time-ordered sequence
    (see :attr:`CatalogProfile.cooccurrence`). Hard negatives have a co-occurrence count of zero with the
    anchor, and are close to the positive in attributes and text."""

    name: ClassVar[str] = "item_item"

    def anchors(self, ctx: TaskContext) -> list[int]:
        co = ctx.profile.cooccurrence
        if co is None:
            return []
        return [int(i) for i in np.flatnonzero(co.max(axis=1).toarray().ravel() >= MIN_COUNT)]

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        co = ctx.profile.cooccurrence
        if co is None:
            return None
        row = co[anchor].toarray().ravel()
        row[anchor] = 0
        partners = np.flatnonzero(row >= MIN_COUNT)
        if partners.size == 0:
            return None
        counts = np.asarray(co.sum(axis=1)).ravel()
        strength = row[partners] / np.sqrt(np.maximum(counts[partners], 1.0))
        top = partners[np.argsort(-strength, kind="stable")[:TOP_PARTNERS]]
        weights = row[top] / row[top].sum()
        positive = int(rng.choice(top, p=weights))
        query = str(rng.choice(_SHAPES)).format(title=ctx.title(anchor), noun=ctx.noun)
        eligible = row == 0
        eligible[anchor] = False
        negatives = ctx.hard_negatives(positive, eligible, rng)
        source = {"anchor": ctx.item_id(anchor), "cooccurrences": int(row[positive])}
        return Draft(query, positive, negatives, source=source)
