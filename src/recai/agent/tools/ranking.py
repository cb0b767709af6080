"""Ranking the candidates: by popularity, by the similarity scores already on the bus, or by the user's
preferences with a sequential model (SASRec) conditioned on what the user said they liked and what the
profile remembers. Disliked and already-seen items are always removed, and liked ones (the user knows
them) unless the tool is built with ``exclude_liked=False``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from recai.agent.bus import CandidateBus
from recai.agent.tools.base import Tool, ToolResult, arguments_schema

if TYPE_CHECKING:
    from recai.agent.context import AgentContext


class RankTool(Tool):
    """Orders the candidates by popularity, by their search scores or by the user's preferences, and
    removes what the user knows: every recommending plan ends with a ranking.

    Args:
        exclude_liked: also remove items the user said they liked (they know them).
    """

    name = "rank"
    orders_candidates = True
    facts_for_reply = False
    description = (
        "Order by 'popularity', 'similarity' (to the search) or 'preference' (the user's taste); drops "
        "known items unless include_seen."
    )
    parameters: ClassVar[dict[str, Any]] = arguments_schema(
        {"by": {"enum": ["popularity", "similarity", "preference"]}}, {"include_seen": {"type": "boolean"}}
    )

    def __init__(self, *, exclude_liked: bool = True) -> None:
        self.exclude_liked = exclude_liked

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        catalog = ctx.catalog
        include_seen = bool(args.get("include_seen", False))
        excluded = set(
            catalog.index_of(
                ctx.profile.excluded(liked=self.exclude_liked and not include_seen, seen=not include_seen),
                missing="drop",
            ).tolist()
        )
        bus.discard(excluded, step=step, tool=self.name)
        candidates = bus.candidates()
        by = args["by"]
        if by == "similarity" and bus.scores is not None:
            scores = bus.current_scores()
        elif by == "preference":
            history = catalog.index_of(ctx.profile.preference_history(), missing="drop")
            if len(history):
                scores = ctx.resources.preference_scores(np.asarray(history, dtype=np.int64))[candidates]
                by = f"preference ({ctx.resources.preference_model}, {len(history)} known items)"
            else:  # nothing known about the user yet: fall back to popularity, and say so
                scores = ctx.resources.popularity[candidates]
                by = "popularity (no known preferences yet)"
        else:
            scores = ctx.resources.popularity[candidates]
        bus.rescore(np.asarray(scores, dtype=np.float64), step=step, tool=self.name)
        return ToolResult(
            facts=f"ranked {len(bus)} candidates by {by}", details={"by": by, "excluded": len(excluded)}
        )
