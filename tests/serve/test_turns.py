"""A turn's context: a private profile, the shared agent's resources (built once)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from recai.agent.context import AgentContext, TurnContext
from recai.agent.memory import Profile
from recai.data import Dataset
from recai.serve.stand_in import stand_in_model
from tests.serve.conftest import build_agent


def test_a_turn_context_has_its_own_profile_and_the_shared_resources(
    dataset: Dataset, tmp_path: Path
) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path)
    turn = agent.ctx.for_turn(Profile(disliked=[10]))
    assert turn is not agent.ctx and turn.profile.disliked == [10] and agent.ctx.profile.disliked == []
    assert turn.item_index is agent.ctx.item_index and turn.encoder is agent.ctx.encoder
    agent.ctx.__dict__.pop("popularity", None)  # (warm_up's checks used it) as if never built
    assert "popularity" not in agent.ctx.__dict__  # not built yet: the first turn to ask builds it, once
    built = turn.popularity
    assert agent.ctx.__dict__["popularity"] is built and agent.ctx.for_turn().popularity is built
    assert turn.for_turn().popularity is built  # a turn's turn shares the same resources


def test_every_lazy_resource_of_the_context_is_shared() -> None:
    lazy = [name for name, value in vars(AgentContext).items() if isinstance(value, cached_property)]
    assert {"item_index", "itemcf", "sequential", "encoder"} <= set(lazy)
    assert all(isinstance(vars(TurnContext)[name], property) for name in lazy)


def test_turns_leave_the_shared_profile_alone(dataset: Dataset, tmp_path: Path) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path)
    session = agent.session()
    agent.chat(session, "I loved Heat, something similar?")
    assert agent.ctx.profile.liked == []  # the turn's profile is the session's, not the agent's
