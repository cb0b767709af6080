"""A turn's context: a private profile, the shared agent's resources (built once)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recai.agent.context import AgentContext, AgentResources
from recai.agent.memory import Profile
from recai.data import Dataset
from recai.serve.stand_in import stand_in_model
from tests.serve.conftest import build_agent


def test_a_turn_context_has_its_own_profile_and_the_shared_resources(
    dataset: Dataset, tmp_path: Path
) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path)
    turn = agent.turn_context(Profile(disliked=[10]))
    other = agent.turn_context()
    assert turn.profile.disliked == [10] and other.profile.disliked == []
    assert turn.resources is agent.resources is other.resources
    agent.resources.__dict__.pop("popularity", None)  # (warm_up's checks used it) as if never built
    built = turn.resources.popularity  # the first turn to ask builds it, once
    assert agent.resources.__dict__["popularity"] is built and other.resources.popularity is built


def test_a_resource_asked_for_by_several_turns_at_once_is_built_once(
    dataset: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recai.data.popularity

    counted = recai.data.popularity.user_counts
    builds: list[int] = []

    def slow_count(interactions: object) -> np.ndarray:
        builds.append(1)
        time.sleep(0.05)  # long enough for every thread to ask before the first build ends
        return counted(interactions)  # type: ignore[arg-type]

    monkeypatch.setattr(recai.data.popularity, "user_counts", slow_count)
    resources = AgentResources(dataset, progress=False)
    assert {"item_index", "itemcf", "sequential", "encoder", "popularity"} <= set(resources.build_locks)
    gate = threading.Barrier(4)
    seen: list[object] = []

    def ask() -> None:
        gate.wait()
        seen.append(AgentContext(resources).resources.popularity)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1 and len({id(value) for value in seen}) == 1


def test_an_encoder_given_to_the_resources_is_the_one_every_turn_uses(dataset: Dataset) -> None:
    encoder = object()
    resources = AgentResources(dataset, progress=False, encoder=encoder)
    assert AgentContext(resources).resources.encoder is encoder


def test_turns_leave_the_shared_profile_alone(dataset: Dataset, tmp_path: Path) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path)
    session = agent.session()
    agent.chat(session, "I loved Heat, something similar?")
    assert agent.turn_context().profile.liked == []  # the turn's profile is the session's, not the agent's
