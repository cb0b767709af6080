"""The conversational recommender agent: plan, run tools over a candidate bus, respond, remember.

The names are imported on first access: ``recai agent --help`` and ``recai chat --help`` import
this package without loading the agent's models and tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ["Agent", "Session", "TurnResult"],
        ".context": ["AgentSettings"],
    },
)

__all__ = ["Agent", "AgentSettings", "Session", "TurnResult"]

if TYPE_CHECKING:
    from recai.agent.agent import Agent, Session, TurnResult
    from recai.agent.context import AgentSettings
