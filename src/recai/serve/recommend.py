"""Recommendations and item search straight from the agent's tools, with no LLM in the loop: the
catalog's SQL filter (with the same guards as the agent's), semantic search, item-CF/content similarity
and the ranker, on a private context so a request never touches another's profile.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

from recai.agent import Agent
from recai.agent.bus import CandidateBus
from recai.agent.memory import Profile
from recai.agent.tools.base import Tool, ToolError
from recai.agent.tools.ranking import RankTool
from recai.agent.tools.retrieval import SemanticSearchTool, SimilarItemsTool
from recai.agent.tools.sql import FilterTool
from recai.serve.cards import ItemCard, ItemCards
from recai.serve.errors import ApiError
from recai.serve.schemas import RecommendRequest, RecommendResponse, ToolStep

SIMILAR_SEEDS = 5  # the similar_to tool takes at most five titles: the most recent ones


def resolve_items(agent: Agent, refs: list[int | str]) -> list[Any]:
    """Catalog ids for ids or titles; an unknown one is a 422 naming it, with suggestions."""
    catalog = agent.dataset.catalog
    out: list[Any] = []
    for ref in refs:
        pos = catalog.index_of([ref], missing="mark")[0]
        if pos >= 0:
            out.append(catalog.ids[int(pos)])
            continue
        if isinstance(ref, int):
            raise ApiError(422, "unknown_item", f"no item with id {ref} in the catalog")
        grounding = catalog.ground(ref)
        if not grounding.resolved:
            close = "; ".join(grounding.did_you_mean()) or "nothing close"
            raise ApiError(
                422, "unknown_item", f"'{ref[:200]}' is not in the catalog (did you mean: {close}?)"
            )
        out.append(grounding.item_id)
    return [i.item() if hasattr(i, "item") else i for i in out]


def recommend(
    agent: Agent, cards: ItemCards, request: RecommendRequest, profile: Profile | None
) -> RecommendResponse:
    """Run filter / semantic search / similarity / rank over the catalog for one history or user."""
    catalog = agent.dataset.catalog
    history = resolve_items(agent, request.history)
    if request.user is not None:
        known = _logged_history(agent, request.user)
        history = [*known, *[i for i in history if i not in known]]
    liked = [*history, *[i for i in (profile.liked if profile else []) if i not in history]]
    ctx = agent.turn_context(
        Profile(
            liked=list(liked),
            disliked=list(profile.disliked) if profile else [],
            seen=list(history) if request.exclude_history else [],
        ),
    )
    by = request.by
    if by == "auto":
        by = "similar" if liked else "popularity"
    if by in ("similar", "preference") and not liked:
        raise ApiError(422, "no_history", f"by='{by}' needs a history or a user with liked items")
    plan: list[tuple[Tool, dict[str, Any]]] = []
    if request.where:
        plan.append((FilterTool(), {"where": request.where}))
    if request.query:
        plan.append((SemanticSearchTool(), {"query": request.query}))
    if by == "similar":
        seeds = catalog.index_of(liked[-SIMILAR_SEEDS:], missing="drop")
        plan.append((SimilarItemsTool(), {"titles": [catalog.display_title(int(p)) for p in seeds]}))
    rank_by = {"similar": "similarity", "preference": "preference", "popularity": "popularity"}[by]
    if request.query and by == "popularity" and request.by == "auto":
        rank_by = "similarity"  # a description alone: keep the semantic order
    # liked items are the history here: excluded exactly when the history is
    plan.append((RankTool(exclude_liked=request.exclude_history), {"by": rank_by}))

    bus = CandidateBus(len(catalog))
    steps: list[ToolStep] = []
    for number, (tool, args) in enumerate(plan, start=1):
        started = time.perf_counter()
        try:
            result = tool.run(tool.validate(args), bus, ctx, number)
        except ToolError as exc:
            raise ApiError(422, "tool_failed", str(exc)) from None
        steps.append(
            ToolStep(
                tool=tool.name,
                args=args,
                output_size=bus.snapshot()["size"],
                latency_ms=round(1000 * (time.perf_counter() - started), 2),
                facts=result.facts,
            )
        )
        if bus.empty:
            break
    positions, scores = bus.top(request.k) if not bus.empty else ([], [])
    items = [cards.card_at(int(p), score=float(s)) for p, s in zip(positions, scores, strict=True)]
    return RecommendResponse(items=items, steps=steps, history=history)


def search(agent: Agent, cards: ItemCards, query: str, k: int) -> list[ItemCard]:
    """Title matches first (substring, then fuzzy), then items whose text is closest in meaning."""
    catalog = agent.dataset.catalog
    found: dict[int, ItemCard] = {}
    folded = _fold(query)
    titles = [_fold(t) for t in catalog.titles]
    for pos in sorted(
        (p for p, t in enumerate(titles) if folded in t), key=lambda p: (not titles[p].startswith(folded), p)
    ):
        if len(found) < k:
            found.setdefault(pos, cards.card_at(pos, score=1.0, match="title"))
    for match in catalog.ground(query, k=k).alternatives:
        pos = int(catalog.index_of([match.item_id])[0])
        if len(found) < k and match.score >= 60:
            found.setdefault(pos, cards.card_at(pos, score=match.score / 100, match="title"))
    if len(found) < k:
        vector = agent.resources.encoder.encode([query], "query")
        ids, scores = agent.resources.item_index.search(vector, k)
        for item_id, score in zip(ids[0], scores[0].tolist(), strict=True):
            pos = int(catalog.index_of([item_id])[0])
            if len(found) < k and score > 0:
                found.setdefault(pos, cards.card_at(pos, score=score, match="semantic"))
    return list(found.values())


def _fold(text: str) -> str:
    """Lower case without accents, so 'amelie' finds 'Amélie'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _logged_history(agent: Agent, user: str) -> list[Any]:
    """The user's events in the dataset's log, oldest first (empty for users the log does not know)."""
    return agent.logged_history(user)
