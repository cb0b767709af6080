"""The knowledge ranker as an agent tool: a sound schema, it only narrows or reorders, it uses the profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from recai.agent import Agent
from recai.agent.agent import default_tools
from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentResources, AgentSettings
from recai.agent.memory import ProfileStore
from recai.agent.tools.base import ToolError
from recai.data import Dataset
from recai.knowledge import KnowledgeBase, KnowledgeRanker
from recai.knowledge.tool import KnowledgeRankTool
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def _last_first(messages: list[Message]) -> str:
    n = len(re.findall(r"^\[\d+\] ", messages[-1]["content"], re.M))
    return json.dumps(list(range(n, 0, -1)))


@pytest.fixture
def tool(dataset: Dataset) -> KnowledgeRankTool:
    kb = KnowledgeBase.build(dataset.catalog, dataset.split(), kinds="attributes")
    llm = ScriptedChatModel(_last_first)
    return KnowledgeRankTool(KnowledgeRanker(llm, dataset.catalog, kb, item_noun="films"), top=3)


def test_schema_and_validation(tool: KnowledgeRankTool) -> None:
    Draft202012Validator.check_schema(tool.parameters)
    assert tool.parameters["additionalProperties"] is False
    assert tool.name in tool.card() and len(tool.description) > 20
    assert tool.validate({"top": 5}) == {"top": 5}
    with pytest.raises(ToolError, match="knowledge_rank"):
        tool.validate({"top": 1})


def test_it_ranks_the_best_candidates_for_what_the_user_liked(
    dataset: Dataset, tool: KnowledgeRankTool
) -> None:
    ctx = AgentContext(AgentResources(dataset, AgentSettings(), progress=False))
    catalog = ctx.catalog
    ctx.profile.liked = [11]  # Reservoir Dogs
    ctx.profile.seen = [13]
    bus = CandidateBus(len(catalog))
    positions = catalog.index_of([10, 12, 13, 16, 17])
    bus.restrict(positions, step=0, tool="setup", scores=[5.0, 4.0, 3.0, 2.0, 1.0])
    result = tool.run(tool.validate({}), bus, ctx, step=1)
    # 13 is seen and removed; the top 3 by score (10, 12, 16) are reordered last-first by the LLM
    assert catalog.ids[bus.candidates()].tolist() == [16, 12, 10]
    assert result.details["by"] == "knowledge" and result.details["knowledge_facts"]
    prompt = tool.ranker.llm.calls[-1][-1]["content"]  # type: ignore[attr-defined]
    assert "- Reservoir Dogs (1992)" in prompt


def test_without_liked_items_it_falls_back_to_popularity(dataset: Dataset, tool: KnowledgeRankTool) -> None:
    ctx = AgentContext(AgentResources(dataset, AgentSettings(), progress=False))
    bus = CandidateBus(len(ctx.catalog))
    result = tool.run({"top": 2}, bus, ctx, step=1)
    assert len(bus) == 2 and result.details["by"] == "popularity"
    assert "popularity" in result.facts
    assert tool.ranker.llm.calls == []  # type: ignore[attr-defined]


def test_with_nothing_retrieved_it_ranks_the_most_popular_unseen_items(
    dataset: Dataset, tool: KnowledgeRankTool
) -> None:
    """An open bus plus a seen item: the candidates are the most popular items the user has not seen,
    by popularity (a restriction to the whole catalog first would lose that order)."""
    ctx = AgentContext(AgentResources(dataset, AgentSettings(), progress=False))
    order = np.lexsort((np.arange(len(ctx.resources.popularity)), -ctx.resources.popularity)).tolist()
    ctx.profile.seen = [ctx.catalog.ids[order[1]]]
    bus = CandidateBus(len(ctx.catalog))
    tool.run({"top": 3}, bus, ctx, step=1)
    assert bus.candidates().tolist() == [order[0], order[2], order[3]]
    # a liked item of lower popularity: the knowledge ranker orders those same three, last shown first
    ctx.profile.liked = [ctx.catalog.ids[order[-1]]]
    bus = CandidateBus(len(ctx.catalog))
    result = tool.run({"top": 3}, bus, ctx, step=1)
    assert result.details["by"] == "knowledge"
    assert bus.candidates().tolist() == [order[3], order[2], order[0]]


def test_an_agent_plans_with_it_as_its_ranking_tool(
    dataset: Dataset, tool: KnowledgeRankTool, tmp_path: Path
) -> None:
    plan = {
        "intent": "recommend",
        "steps": [
            {"tool": "filter", "args": {"where": "year >= 1990"}},
            {"tool": "knowledge_rank", "args": {"top": 3}},
        ],
        "feedback": {"liked": ["Reservoir Dogs"], "disliked": []},
        "reply": "",
    }
    brain = ScriptedChatModel([json.dumps(plan), "Here you go."])
    agent = Agent(
        dataset,
        brain,
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0),
        tools=[*default_tools(), tool],
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        progress=False,
    )
    assert "knowledge_rank" in brain_prompt_tools(agent)
    result = agent.chat(agent.session(), "I loved Reservoir Dogs, something from the 90s or later?")
    steps = result.trace.to_dict()["steps"]
    assert [s["tool"] for s in steps] == ["filter", "knowledge_rank"]
    assert steps[1]["details"]["by"] == "knowledge"
    years = dict(zip(dataset.catalog.ids, dataset.catalog.items["year"], strict=True))
    assert result.items and all(years[i] >= 1990 for i in result.items) and 11 not in result.items
    assert "Reservoir Dogs" in tool.ranker.llm.calls[-1][-1]["content"]  # type: ignore[attr-defined]


def brain_prompt_tools(agent: Agent) -> str:
    """The tool cards the planner is shown."""
    return "\n".join(t.card() for t in agent.tools.values())
