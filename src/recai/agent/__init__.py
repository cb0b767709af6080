"""The conversational recommender agent: plan, run tools over a candidate bus, respond, remember."""

from recai.agent.agent import Agent, Session, TurnResult
from recai.agent.context import AgentSettings

__all__ = ["Agent", "AgentSettings", "Session", "TurnResult"]
