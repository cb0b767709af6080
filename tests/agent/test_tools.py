from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentSettings
from recai.agent.tools.base import Tool, ToolError, ToolResult
from recai.agent.tools.ranking import RankTool
from recai.agent.tools.retrieval import CandidateStoreTool, SemanticSearchTool, SimilarItemsTool
from recai.agent.tools.sql import FilterTool, InfoQueryTool, ground_condition
from recai.data import Dataset
from tests.agent.fakes import BagOfWordsEncoder

GOOD_ARGS: dict[str, dict[str, Any]] = {
    "sql_query": {"sql": "SELECT title, runtime FROM items ORDER BY runtime LIMIT 3"},
    "filter": {"where": "list_contains(genres, 'Crime')"},
    "semantic_search": {"query": "gangster crime film"},
    "similar_to": {"titles": ["Reservoir Dogs"]},
    "user_candidates": {"titles": ["Heat", "Amélie"]},
    "rank": {"by": "popularity"},
}
TOOLS = [
    InfoQueryTool(),
    FilterTool(),
    SemanticSearchTool(),
    SimilarItemsTool(),
    CandidateStoreTool(),
    RankTool(),
]


@pytest.fixture
def ctx(dataset: Dataset) -> AgentContext:
    context = AgentContext(dataset, AgentSettings(retrieve_k=5, sasrec_budget_s=2.0), progress=False)
    context.encoder = BagOfWordsEncoder()
    return context


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
class TestToolConformance:
    """Every tool: a sound schema, validation that names the field, and it never grows the bus."""

    def test_schema_and_card(self, tool: Tool) -> None:
        Draft202012Validator.check_schema(tool.parameters)
        assert tool.parameters["additionalProperties"] is False
        assert tool.name in tool.card() and len(tool.description) > 20

    def test_bad_arguments_name_the_problem(self, tool: Tool) -> None:
        with pytest.raises(ToolError, match=tool.name):
            tool.validate({"unexpected": 1})
        with pytest.raises(ToolError, match="must be an object"):
            tool.validate(["not", "an", "object"])
        assert tool.validate(GOOD_ARGS[tool.name]) == GOOD_ARGS[tool.name]

    def test_it_only_narrows_or_reorders(self, tool: Tool, ctx: AgentContext) -> None:
        bus = CandidateBus(len(ctx.catalog))
        bus.restrict(ctx.catalog.index_of([10, 11, 12, 13, 14, 15]), step=0, tool="setup")
        before = set(bus.candidates().tolist())
        result = tool.run(tool.validate(GOOD_ARGS[tool.name]), bus, ctx, step=1)
        assert isinstance(result, ToolResult)
        assert set(bus.candidates().tolist()) <= before


def test_filter_grounds_values_and_fixes_list_columns(ctx: AgentContext) -> None:
    sql, notes = ground_condition("language = 'french' AND director = 'Quentin Tarantinno'", ctx)
    assert "language = 'French'" in sql and "ARRAY_CONTAINS(director, 'Quentin Tarantino')" in sql
    assert notes == ["director 'Quentin Tarantinno' -> 'Quentin Tarantino'"]
    with pytest.raises(ToolError, match=r"no genres called 'Telenovela'.*did you mean"):
        ground_condition("list_contains(genres, 'Telenovela')", ctx)
    sql, _ = ground_condition("genres IN ('crime', 'Romance')", ctx)
    assert sql == "ARRAY_HAS_ANY(genres, ['Crime', 'Romance'])" or "Crime" in sql
    bus = CandidateBus(len(ctx.catalog))
    FilterTool().run({"where": "director = 'Quentin Tarantino' AND runtime < 120"}, bus, ctx, 1)
    assert ctx.catalog.ids[bus.candidates()].tolist() == [11]


def test_a_filter_that_matches_nothing_empties_the_bus(ctx: AgentContext) -> None:
    bus = CandidateBus(len(ctx.catalog))
    FilterTool().run({"where": "year > 2100"}, bus, ctx, 1)
    assert bus.empty


def test_a_filter_with_an_unclosed_quote_is_a_tool_error(ctx: AgentContext) -> None:
    """A cut-off string from the LLM must lead to a replan, not a crash."""
    with pytest.raises(ToolError, match="not a single SQL condition"):
        FilterTool().run(
            {"where": "list_contains(director, 'Alfred H."}, CandidateBus(len(ctx.catalog)), ctx, 1
        )


def test_info_query_is_scoped_to_the_candidates(ctx: AgentContext) -> None:
    bus = CandidateBus(len(ctx.catalog))
    CandidateStoreTool().run({"titles": ["Heat", "Reservoir Dogs", "The Godfather"]}, bus, ctx, 1)
    result = InfoQueryTool().run(
        {"sql": "SELECT title, runtime FROM items ORDER BY runtime LIMIT 1"}, bus, ctx, 2
    )
    assert "title=Reservoir Dogs; runtime=99" in result.facts and "3 current candidates" in result.facts
    with pytest.raises(ToolError, match="refused or failed"):
        InfoQueryTool().run({"sql": "DROP TABLE items"}, CandidateBus(len(ctx.catalog)), ctx, 1)


def test_similar_to_grounds_titles_and_remembers_them(ctx: AgentContext) -> None:
    bus = CandidateBus(len(ctx.catalog))
    SimilarItemsTool().run({"titles": ["Reservoir Dogs"], "by": "content"}, bus, ctx, 1)
    ids = ctx.catalog.ids[bus.candidates()].tolist()
    assert 11 not in ids and ids[0] == 10  # the other Tarantino crime film
    bus = CandidateBus(len(ctx.catalog))
    SimilarItemsTool().run({"titles": ["Reservoir Dogs"], "by": "collaborative"}, bus, ctx, 1)
    assert set(ctx.catalog.ids[bus.candidates()[:3]].tolist()) == {10, 12, 13}  # co-watched by user a
    assert 11 in ctx.profile.liked
    with pytest.raises(ToolError, match="not in the catalog"):
        SimilarItemsTool().run({"titles": ["Reservoir Cats"]}, CandidateBus(len(ctx.catalog)), ctx, 1)


def test_semantic_search_ranks_by_description(ctx: AgentContext) -> None:
    bus = CandidateBus(len(ctx.catalog))
    SemanticSearchTool().run({"query": "Animation Family"}, bus, ctx, 1)
    assert ctx.catalog.ids[bus.candidates()[0]] == 15
    assert len(bus) <= ctx.settings.retrieve_k


def test_rank_excludes_disliked_seen_and_liked(ctx: AgentContext) -> None:
    ctx.profile.add("disliked", [10])
    ctx.profile.add("seen", [16])
    ctx.profile.add("liked", [11])  # the user knows it: recommending it back helps no one
    bus = CandidateBus(len(ctx.catalog))
    RankTool().run({"by": "preference"}, bus, ctx, 1)
    ids = ctx.catalog.ids[bus.candidates()].tolist()
    assert not {10, 11, 16} & set(ids)
    bus = CandidateBus(len(ctx.catalog))
    RankTool().run({"by": "popularity"}, bus, ctx, 1)
    ids = ctx.catalog.ids[bus.candidates()].tolist()
    assert not {10, 11, 16} & set(ids) and ids[0] in (12, 13, 17)
    scores = bus.current_scores()
    assert np.all(np.diff(scores) <= 0)


def test_preference_ranking_without_history_says_so(ctx: AgentContext) -> None:
    result = RankTool().run({"by": "preference"}, CandidateBus(len(ctx.catalog)), ctx, 1)
    assert "no known preferences" in result.facts


def test_discard_keeps_the_order_and_scores_of_the_rest() -> None:
    bus = CandidateBus(6)
    bus.discard([1, 4], step=1, tool="t")
    assert bus.candidates().tolist() == [0, 2, 3, 5]  # an open bus becomes every other item
    bus.restrict([5, 3, 0], step=2, tool="t", scores=[3.0, 2.0, 1.0])
    bus.discard({3, 9}, step=3, tool="t")
    assert bus.candidates().tolist() == [5, 0] and bus.current_scores().tolist() == [3.0, 1.0]
    bus.discard([], step=4, tool="t")
    assert len(bus) == 2
