"""The knowledge ranker as an agent tool: an alternative to ``rank`` that asks an LLM, with knowledge.

Add it to an agent's tools (``Agent.from_dataset(..., tools=[*default_tools(), KnowledgeRankTool(r)])``).
It ranks the ``top`` best candidates on the bus (default 20) for the items the user said they liked,
keeps them in the LLM's order, and drops the rest; disliked, already-seen and liked items are removed
first, as ``rank`` does. With no liked item yet there is no history to reason from, so it orders by training
popularity and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from recai.agent.bus import CandidateBus
from recai.agent.tools.base import Tool, ToolError, ToolResult
from recai.knowledge.ranker import KnowledgeRanker

if TYPE_CHECKING:
    from recai.agent.context import AgentContext


class KnowledgeRankTool(Tool):
    """Lets an agent order its candidates with the knowledge ranker (see the module docstring).

    Args:
        ranker: The knowledge ranker, built for the agent's catalog.
        top: How many of the best candidates on the bus it ranks unless the call says otherwise.
    """

    name = "knowledge_rank"
    orders_candidates = True
    description = (
        "Order the best candidates with an LLM that is given what is known about them (attributes, "
        "what similar users chose, reasoning paths to the items the user likes); slower than 'rank'."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"top": {"type": "integer", "minimum": 2, "maximum": 50}},
        "additionalProperties": False,
    }

    def __init__(self, ranker: KnowledgeRanker, *, top: int = 20) -> None:
        self.ranker = ranker
        self.top = top

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        catalog = ctx.catalog
        if len(catalog) != len(self.ranker.catalog):
            raise ToolError(f"{self.name}: the ranker was built for another catalog")
        excluded = set(catalog.index_of(ctx.profile.excluded(), missing="drop").tolist())
        top = int(args.get("top", self.top))
        if bus.unrestricted:  # nothing retrieved yet: the most popular items are the candidates
            order = np.lexsort((np.arange(len(ctx.resources.popularity)), -ctx.resources.popularity))
            shown = [int(p) for p in order if int(p) not in excluded][:top]
        else:
            bus.discard(excluded, step=step, tool=self.name)
            shown = [int(p) for p in bus.top(top)[0]]
        if not shown:
            raise ToolError(f"{self.name}: no candidates left to rank")
        liked = [int(p) for p in catalog.index_of(ctx.profile.liked, missing="drop")]
        if not liked:
            scores = ctx.resources.popularity[shown]
            order = np.lexsort((np.arange(len(shown)), -scores))
            ranked = [shown[i] for i in order]
            facts = f"ranked {len(ranked)} candidates by popularity (no liked items yet to reason from)"
            details: dict[str, Any] = {"by": "popularity"}
        else:
            result = self.ranker.rank(liked, shown, key=tuple(liked))
            ranked = result.positions
            repaired = {k: v for k, v in result.counts.items() if v}
            facts = f"ranked {len(ranked)} candidates with the knowledge ranker"
            details = {
                "by": "knowledge",
                "knowledge_facts": [line for c in result.calls for line in c.selection.lines],
                "repairs": repaired,
            }
        scores = np.linspace(1.0, 0.0, num=len(ranked), endpoint=False) if ranked else np.zeros(0)
        bus.restrict(ranked, step=step, tool=self.name, scores=scores)
        return ToolResult(facts=facts, details=details)
