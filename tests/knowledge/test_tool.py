"""The knowledge ranker as an agent tool: a sound schema, it only narrows or reorders, it uses the profile."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentSettings
from recai.agent.tools.base import ToolError
from recai.data import Dataset
from recai.knowledge import KnowledgeBase, KnowledgeRanker
from recai.knowledge.tool import KnowledgeRankTool
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel


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
    ctx = AgentContext(dataset, AgentSettings(), progress=False)
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
    ctx = AgentContext(dataset, AgentSettings(), progress=False)
    bus = CandidateBus(len(ctx.catalog))
    result = tool.run({"top": 2}, bus, ctx, step=1)
    assert len(bus) == 2 and result.details["by"] == "popularity"
    assert "popularity" in result.facts
    assert tool.ranker.llm.calls == []  # type: ignore[attr-defined]
