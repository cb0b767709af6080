"""Follow-ups start from the previous answer: "only ones from before 1985", "which of those is the
shortest?". Restating the earlier conditions is what small planners get wrong (the refinement drops the
first condition), so the previous turn's candidates are kept and this tool puts them back on the bus:
``shown`` is what was recommended, ``all`` every candidate that answer kept (best first), which a new
filter can narrow without losing the old conditions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from recai.agent.bus import CandidateBus
from recai.agent.tools.base import Tool, ToolError, ToolResult, arguments_schema

if TYPE_CHECKING:
    from recai.agent.context import AgentContext


class PreviousResultsTool(Tool):
    """Puts the previous answer's items back on the bus, so a follow-up ("only the older ones") refines
    that answer without the planner restating its conditions. Takes no constructor arguments.
    """

    name = "previous_results"
    facts_for_reply = False
    description = "The previous answer's items: 'all' (to refine) or 'shown' (to compare)."
    parameters: ClassVar[dict[str, Any]] = arguments_schema({"which": {"enum": ["all", "shown"]}})

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        which = args["which"]
        positions = ctx.previous_shown if which == "shown" else ctx.previous_candidates
        if not positions:
            raise ToolError(
                "previous_results: there is no previous answer with items in this conversation; plan the "
                "request on its own"
            )
        # best first, as the previous answer ranked them: a later 'similarity' rank keeps that order
        scores = [float(len(positions) - i) for i in range(len(positions))]
        bus.restrict(positions, step=step, tool=self.name, scores=scores)
        return ToolResult(
            facts=f"started from the previous answer's {which} items ({len(bus)})",
            details={"which": which, "kept": len(bus)},
        )
