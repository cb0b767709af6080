"""End-to-end: the agent on `demo` with the real offline brain (Qwen2.5-Coder-1.5B). Assertions are on
structure and catalog facts (conditions obeyed, items real), never on wording."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recai.agent import Agent, AgentSettings


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("sentence_transformers")
    from recai.llm.resolve import KNOWN_MODELS, packaged_parts

    if packaged_parts(KNOWN_MODELS["qwen2.5-1.5b-instruct"])[1]:
        pytest.skip("the offline Qwen2.5-1.5B weights are not installed")
    built = Agent.from_dataset(
        "demo", llm="local:qwen2.5-1.5b-instruct", settings=AgentSettings(sasrec_budget_s=20), progress=False
    )
    yield built


def _rows(agent: Agent, ids: list[int]) -> list[dict]:
    return [agent.dataset.catalog.row(i) for i in ids]


def test_hard_conditions_are_obeyed(agent: Agent) -> None:
    result = agent.chat(agent.session(), "Recommend a crime film from the 1990s")
    assert result.items, result.trace
    for row in _rows(agent, result.items):
        assert 1990 <= row["year"] <= 1999 and "Crime" in row["genres"], (row["title"], result.trace.plans)
    assert result.trace.llm_calls <= 3


def test_a_follow_up_refines_the_previous_request(agent: Agent) -> None:
    session = agent.session()
    agent.chat(session, "Recommend a crime film from the 1990s")
    result = agent.chat(session, "Only ones shorter than 100 minutes please")
    assert result.items, result.trace
    assert all(row["runtime"] < 100 for row in _rows(agent, result.items)), result.trace.plans


def test_soft_and_similar_to_requests_return_real_items(agent: Agent) -> None:
    soft = agent.chat(agent.session(), "Something dark and atmospheric")
    assert soft.items and {s.tool for s in soft.trace.steps} & {
        "semantic_search",
        "similar_to",
        "filter",
    }
    similar = agent.chat(agent.session(), "Films like Spirited Away")
    spirited = agent.dataset.catalog.ground("Spirited Away").item_id
    assert similar.items and spirited not in similar.items


def test_item_questions_are_answered_from_the_catalog(agent: Agent) -> None:
    result = agent.chat(agent.session(), "What year was Heat released?")
    assert "1995" in result.reply, result.trace


def test_chit_chat_needs_no_tools(agent: Agent) -> None:
    result = agent.chat(agent.session(), "Hello! How are you?")
    assert result.items == [] and result.reply
