from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from recai.agent.agent import default_tools
from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext
from recai.agent.tools.base import Tool, ToolError
from recai.agent.tools.previous import PreviousResultsTool
from recai.agent.tools.ranking import RankTool
from recai.agent.tools.retrieval import CandidateStoreTool, SemanticSearchTool, SimilarItemsTool
from recai.agent.tools.sql import FilterTool, InfoQueryTool, ground_condition
from recai.data import Dataset
from recai.testing import ToolSuite
from recai.testing.tool import discover_tools, film_context

GOOD_ARGS: dict[str, dict[str, Any]] = {
    "sql_query": {"sql": "SELECT title, runtime FROM items ORDER BY runtime LIMIT 3"},
    "filter": {"where": "list_contains(genres, 'Crime')"},
    "semantic_search": {"query": "gangster crime film"},
    "similar_to": {"titles": ["Reservoir Dogs"]},
    "user_candidates": {"titles": ["Heat", "Amélie"]},
    "rank": {"by": "popularity"},
    "previous_results": {"which": "all"},
    "knowledge_rank": {"top": 3},
}


def _knowledge_rank(dataset: Dataset) -> Tool:
    from recai.knowledge import KnowledgeBase, KnowledgeRanker
    from recai.knowledge.tool import KnowledgeRankTool
    from recai.llm.scripted import ScriptedChatModel

    kb = KnowledgeBase.build(dataset.catalog, dataset.split(), kinds="attributes")
    llm = ScriptedChatModel(lambda messages: "[3, 2, 1]")
    return KnowledgeRankTool(KnowledgeRanker(llm, dataset.catalog, kb, item_noun="films"), top=3)


#: How to build the tools whose constructor needs more than defaults (the rest take no arguments).
FACTORIES: dict[str, Callable[[Dataset], Tool]] = {"KnowledgeRankTool": _knowledge_rank}
DISCOVERED = discover_tools()


def build(cls: type[Tool], dataset: Dataset) -> Tool:
    factory = FACTORIES.get(cls.__name__)
    return factory(dataset) if factory else cls()


@pytest.fixture
def ctx(dataset: Dataset) -> AgentContext:
    return film_context(dataset)


def test_every_tool_is_discovered_and_has_example_arguments(dataset: Dataset) -> None:
    names = {cls.__name__ for cls in DISCOVERED}
    assert {type(t).__name__ for t in default_tools()} <= names and "KnowledgeRankTool" in names
    for cls in DISCOVERED:
        tool = build(cls, dataset)
        assert tool.name in GOOD_ARGS, f"{cls.__name__}: add example arguments for {tool.name!r} to GOOD_ARGS"


@pytest.mark.parametrize("tool_class", DISCOVERED, ids=lambda c: c.__name__)
class TestEveryTool(ToolSuite):
    """Every Tool class recai defines (found by :func:`discover_tools`, not listed by hand)."""

    @pytest.fixture
    def tool(self, tool_class: type[Tool], dataset: Dataset) -> Tool:
        return build(tool_class, dataset)

    @pytest.fixture
    def tool_args(self, tool: Tool) -> dict[str, Any]:
        return GOOD_ARGS[tool.name]

    @pytest.fixture
    def context(self, ctx: AgentContext) -> AgentContext:
        return ctx


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


def test_previous_results_refines_the_whole_previous_answer_or_compares_what_was_shown(
    ctx: AgentContext,
) -> None:
    bus = CandidateBus(len(ctx.catalog))
    PreviousResultsTool().run({"which": "all"}, bus, ctx, 1)
    assert ctx.catalog.ids[bus.candidates()].tolist() == [10, 11, 12, 16, 17]  # best first, as ranked
    FilterTool().run({"where": "year < 1990"}, bus, ctx, 2)  # the old conditions hold: only old items left
    assert ctx.catalog.ids[bus.candidates()].tolist() == [16, 17]
    shown = CandidateBus(len(ctx.catalog))
    PreviousResultsTool().run({"which": "shown"}, shown, ctx, 1)
    assert ctx.catalog.ids[shown.candidates()].tolist() == [10, 11]
    ctx.previous_candidates, ctx.previous_shown = [], []
    with pytest.raises(ToolError, match="no previous answer"):
        PreviousResultsTool().run({"which": "all"}, CandidateBus(len(ctx.catalog)), ctx, 1)


def test_titles_in_sql_are_resolved_as_people_type_them(ctx: AgentContext) -> None:
    from recai.agent.resolver import NotInCatalogError

    result = InfoQueryTool().run(
        {"sql": "SELECT title, year FROM items WHERE title = 'godfather'"},
        CandidateBus(len(ctx.catalog)),
        ctx,
        1,
    )
    assert "title=The Godfather; year=1972" in result.facts
    bus = CandidateBus(len(ctx.catalog))
    FilterTool().run({"where": "title IN ('pulp fictoin', 'heat')"}, bus, ctx, 1)
    assert sorted(ctx.catalog.ids[bus.candidates()].tolist()) == [10, 12]
    with pytest.raises(NotInCatalogError) as err:
        InfoQueryTool().run(
            {"sql": "SELECT year FROM items WHERE title = 'Zorbulon Returns'"},
            CandidateBus(len(ctx.catalog)),
            ctx,
            1,
        )
    assert "Zorbulon Returns" in err.value.missing
    with pytest.raises(ToolError, match="similar_to"):
        FilterTool().run({"where": "list_contains(title, 'Heat')"}, CandidateBus(len(ctx.catalog)), ctx, 1)
    with pytest.raises(ToolError, match=r"columns are:.*popularity"):
        FilterTool().run({"where": "runtimee < 100"}, CandidateBus(len(ctx.catalog)), ctx, 1)


def test_an_empty_lookup_says_so(ctx: AgentContext) -> None:
    result = InfoQueryTool().run(
        {"sql": "SELECT title FROM items WHERE year > 2100"}, CandidateBus(len(ctx.catalog)), ctx, 1
    )
    assert "found nothing" in result.facts


def test_ambiguous_names_take_the_most_interacted_and_say_so(ctx: AgentContext) -> None:
    from recai.agent.resolver import resolve_titles

    resolution = resolve_titles(ctx.catalog, ["Beauty and the Beast", "Nosuchfilm Atall"])
    popularity = ctx.catalog.popularity()
    expected = max((14, 15), key=lambda i: popularity[int(ctx.catalog.index_of([i])[0])])
    assert ctx.catalog.ids[resolution.positions].tolist() == [expected]
    assert "ambiguous" in resolution.notes[0] and "most interacted" in resolution.notes[0]
    assert list(resolution.missing) == ["Nosuchfilm Atall"]


def test_popularity_is_a_column_on_every_catalog_with_a_log(ctx: AgentContext) -> None:
    frame = ctx.catalog.sql(
        "SELECT title, popularity, trending FROM items ORDER BY popularity DESC, title"
    ).frame
    counts = ctx.resources.dataset.interactions.frame.drop_duplicates(["user_id", "item_id"])[
        "item_id"
    ].value_counts()
    top = ctx.catalog.row(int(counts.idxmax()))["title"]
    assert frame["popularity"].max() == counts.max() and top in frame["title"].head(3).tolist()
    assert "popularity" in ctx.catalog.schema_card()


def test_list_functions_on_a_one_value_column_mean_equality(ctx: AgentContext) -> None:
    sql, _ = ground_condition("list_contains(language, 'french')", ctx)
    assert sql == "language = 'French'"
    bus = CandidateBus(len(ctx.catalog))
    FilterTool().run({"where": "list_has_any(language, ['French'])"}, bus, ctx, 1)
    assert sorted(ctx.catalog.ids[bus.candidates()].tolist()) == [13, 14]
