"""A turn's view of the agent: a private profile, the shared agent's resources (built once)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from recai.agent.context import AgentContext
from recai.agent.memory import Profile
from recai.data import Dataset
from recai.serve.stand_in import stand_in_model
from recai.serve.turns import TurnContext, agent_view
from tests.serve.conftest import build_agent


def test_a_view_has_its_own_profile_and_the_shared_resources(dataset: Dataset, tmp_path: Path) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path)
    view = agent_view(agent, Profile(disliked=[10]))
    assert (
        view.ctx is not agent.ctx and view.ctx.profile.disliked == [10] and agent.ctx.profile.disliked == []
    )
    assert view.llm is agent.llm and view.planner is agent.planner and view.tools is agent.tools
    assert view.ctx.item_index is agent.ctx.item_index and view.ctx.encoder is agent.ctx.encoder
    assert "popularity" not in agent.ctx.__dict__  # not built yet: the first view to ask builds it, once
    built = view.ctx.popularity
    assert agent.ctx.__dict__["popularity"] is built and agent_view(agent).ctx.popularity is built


def test_every_lazy_resource_of_the_context_is_shared() -> None:
    lazy = [name for name, value in vars(AgentContext).items() if isinstance(value, cached_property)]
    assert {"item_index", "itemcf", "sequential", "encoder"} <= set(lazy)
    assert all(isinstance(vars(TurnContext)[name], property) for name in lazy)
