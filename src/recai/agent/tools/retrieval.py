"""Soft-condition retrieval: by a free-text description (embeddings) and by similarity to items the user
names (titles grounded with a threshold; item-CF co-occurrence and/or embeddings). Both keep at most
``k`` items, the best by score, restricted to the current candidates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from recai.agent.bus import CandidateBus
from recai.agent.resolver import resolve_or_raise
from recai.agent.tools.base import Tool, ToolError, ToolResult, arguments_schema, titles_argument

if TYPE_CHECKING:
    from recai.agent.context import AgentContext


def ground_titles(
    ctx: AgentContext, titles: list[str], tool: str, *, partial: bool = False
) -> tuple[list[int], list[str]]:
    """Catalog positions for names as people type them (see :mod:`recai.agent.resolver`), with notes on
    how each was read. Names the catalog lacks raise NotInCatalogError; with ``partial`` only when none
    resolved, the others being reported in the notes."""
    resolution = resolve_or_raise(ctx.catalog, titles, tool, partial=partial)
    notes = list(resolution.notes)
    notes += [f"'{name}' is not in the catalog" for name in resolution.missing]
    ctx.not_found.update(resolution.missing)
    return resolution.positions, notes


#: How much content similarity counts next to co-occurrence in similar_to(by="both") (1.0 for each at
#: its best): "people who liked X also liked Y" is the stronger signal where a log exists.
CONTENT_WEIGHT = 0.3

_GENERIC_NOUNS = frozenset(
    {"film", "films", "movie", "movies", "show", "shows", "series", "book", "books", "novel", "novels"}
    | {"song", "songs", "music", "track", "tracks", "album", "albums", "artist", "artists", "band"}
    | {"bands", "game", "games", "product", "products", "item", "items", "stuff", "ones"}
)


def category_named(catalog: Any, name: str) -> str | None:
    """The genre-like column (list or categorical, at most 200 values, not written by users) that has
    ``name`` as a value, ignoring case; None when there is none."""
    from recai.data.schema import ColumnRole

    # "War films" is the genre War: drop the words that only say what kind of thing is meant
    words = [w for w in name.strip().lower().split() if w not in _GENERIC_NOUNS]
    wanted = " ".join(words)
    for spec in catalog.schema.columns:
        if spec.role not in (ColumnRole.MULTI_CATEGORICAL, ColumnRole.CATEGORICAL) or spec.from_interactions:
            continue
        if spec.name not in catalog.items:
            continue
        values = catalog.column_values(spec.name)
        if len(values) <= 200 and wanted in {v.lower() for v in values.index}:
            return spec.name
    return None


def category_value(catalog: Any, column: str, name: str) -> str:
    """The value of ``column`` that :func:`category_named` matched ``name`` to, as the catalog writes it."""
    words = " ".join(w for w in name.strip().lower().split() if w not in _GENERIC_NOUNS)
    return next(v for v in catalog.column_values(column).index if v.lower() == words)


class SemanticSearchTool(Tool):
    """Keeps the candidates whose text matches a description ("something dark and slow"): the soft
    conditions a filter cannot express. Takes no constructor arguments.
    """

    name = "semantic_search"
    facts_for_reply = False
    description = "Find candidates matching a description (mood, theme, style)."
    parameters: ClassVar[dict[str, Any]] = arguments_schema(
        {"query": {"type": "string", "minLength": 2, "maxLength": 300}}
    )

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        index = ctx.resources.item_index
        query = ctx.resources.encoder.encode([args["query"]], "query")
        within = None if bus.unrestricted else ctx.catalog.ids[bus.candidates()].tolist()
        ids, scores = index.search(query, ctx.settings.retrieve_k, within=within)
        positions = ctx.catalog.index_of(ids[0])
        bus.restrict(positions, step=step, tool=self.name, scores=scores[0])
        return ToolResult(
            facts=f"semantic search for '{args['query']}' kept {len(bus)} items", details={"kept": len(bus)}
        )


class SimilarItemsTool(Tool):
    """Keeps the candidates most like the items the user names, by what the same users chose (item-CF)
    and by content; the named items are remembered as liked. Takes no constructor arguments.
    """

    name = "similar_to"
    description = "Find candidates similar to items the user names."
    parameters: ClassVar[dict[str, Any]] = arguments_schema(
        {"titles": titles_argument(5)}, {"by": {"enum": ["collaborative", "content", "both"]}}
    )

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        for name in args["titles"]:
            column = category_named(ctx.catalog, name)
            if column is not None:  # "War films" planned as items like the film "War"
                value = category_value(ctx.catalog, column, name)
                raise ToolError(
                    f"similar_to: '{name}' is a {column} value, not an item: to keep {value} items use "
                    f"filter with list_contains({column}, '{value}') or {column} = '{value}'; for items "
                    "like one item, give its full title"
                )
        seeds, notes = ground_titles(ctx, args["titles"], self.name, partial=True)
        ctx.profile.add("liked", ctx.catalog.ids[seeds].tolist())
        by = args.get("by", "both")
        n = len(ctx.catalog)
        score = np.zeros(n)
        collaborative = by in ("collaborative", "both") and len(ctx.resources.dataset.interactions) > 0
        if collaborative:
            cf = ctx.resources.itemcf.score([np.asarray(seeds)])[0]
            score += cf / (cf.max() or 1.0)
        if by in ("content", "both"):
            vectors = ctx.resources.item_index.vectors()
            positions = ctx.catalog.index_of(ctx.resources.item_index.ids)
            content = np.zeros(n)
            content[positions] = vectors @ vectors[
                [int(np.flatnonzero(positions == s)[0]) for s in seeds]
            ].mean(0)
            # with a log, what the same users chose leads and content breaks ties and fills in items the
            # log barely knows; without one (or by="content"), content is all there is
            weight = CONTENT_WEIGHT if collaborative and by == "both" else 1.0
            score += weight * np.clip(content, 0, None)
        score[seeds] = -np.inf  # the seeds themselves are not recommendations
        candidates = bus.candidates()
        order = np.lexsort((candidates, -score[candidates]))[: ctx.settings.retrieve_k]
        keep = candidates[order]
        keep = keep[np.isfinite(score[keep])]
        bus.restrict(keep, step=step, tool=self.name, scores=score[keep])
        seed_titles = ", ".join(ctx.catalog.display_title(s) for s in seeds)
        facts = f"items similar to {seed_titles}: kept {len(bus)}" + (
            f" ({'; '.join(notes)})" if notes else ""
        )
        return ToolResult(facts=facts, details={"seeds": seed_titles, "kept": len(bus), "by": by})


class CandidateStoreTool(Tool):
    """Makes the items the user lists the candidates ("which of Heat, Alien and Fargo ..."), names read as
    people type them. Takes no constructor arguments.
    """

    name = "user_candidates"
    description = "The items the user lists become the candidates."
    parameters: ClassVar[dict[str, Any]] = arguments_schema({"titles": titles_argument(20)})

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        positions, notes = ground_titles(ctx, args["titles"], self.name, partial=True)
        bus.restrict(positions, step=step, tool=self.name)
        facts = f"the user's candidates: {', '.join(ctx.catalog.display_title(p) for p in bus.candidates())}"
        return ToolResult(
            facts=facts + (f" ({'; '.join(notes)})" if notes else ""), details={"kept": len(bus)}
        )
