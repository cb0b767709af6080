"""Demonstrations derived from each catalog: the shapes its columns support, executed, never naming a
column the catalog lacks; and the agent behaviours that make it work on catalogs it was not written for
(names people type, names the catalog lacks, follow-ups, known users, items before the reply)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recai.agent import Agent, AgentSettings
from recai.agent.catalog_demos import (
    CORE_SHAPES,
    core_demonstrations,
    derive,
    derived_demonstrations,
    load_user_demonstrations,
    typed_title,
    unknown_columns,
)
from recai.agent.memory import ProfileStore
from recai.agent.planner import plan_schema
from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, Dataset, Interactions
from recai.llm import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def _log(n_items: int, ids: list[Any], *, timed: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(40):
        liked = rng.choice(n_items, size=6, replace=False, p=_zipf(n_items))
        for t, i in enumerate(liked):
            rows.append((f"u{user}", ids[int(i)], 1_600_000_000 + 3600 * (user * 10 + t)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame if timed else frame.drop(columns="timestamp")


def _zipf(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return weights / weights.sum()


def names_only() -> Dataset:
    """Artists known only by name, a log of listens without times (Last.fm's shape)."""
    names = [
        "Radiohead", "The Beatles", "Björk", "Daft Punk", "Muse", "Coldplay", "Air", "Portishead",
        "Massive Attack", "Sigur Rós", "Moby", "Blur", "Oasis", "Pulp", "Suede", "Placebo",
    ]  # fmt: skip
    items = pd.DataFrame({"artist_id": range(100, 100 + len(names)), "name": names})
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="artist_id", role=ColumnRole.ID),
            ColumnSpec(name="name", role=ColumnRole.TITLE),
        ],
        noun="artists",
    )
    catalog = Catalog(items, schema)
    return Dataset(
        "bands", catalog, Interactions(_log(len(names), list(catalog.ids), timed=False), catalog.ids)
    )


def shop() -> Dataset:
    """Products with a brand, a price and tags: no year, no people, no text."""
    rng = np.random.default_rng(1)
    n = 30
    items = pd.DataFrame(
        {
            "sku": [f"S{i:03d}" for i in range(n)],
            "product": [
                f"{c} {k}"
                for c, k in zip(["Red", "Blue", "Green"] * 10, [f"Mug {i}" for i in range(n)], strict=True)
            ],
            "brand": rng.choice(["Acme", "Globex", "Initech"], n),
            "price": np.round(rng.uniform(3, 60, n), 2),
            "tags": [
                list(rng.choice(["kitchen", "office", "gift", "eco", "sale"], 2, replace=False))
                for _ in range(n)
            ],
        }
    )
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="sku", role=ColumnRole.ID),
            ColumnSpec(name="product", role=ColumnRole.TITLE),
            ColumnSpec(name="brand", role=ColumnRole.CATEGORICAL),
            ColumnSpec(name="price", role=ColumnRole.NUMERIC, unit="EUR"),
            ColumnSpec(name="tags", role=ColumnRole.MULTI_CATEGORICAL),
        ],
        noun="products",
    )
    catalog = Catalog(items, schema)
    return Dataset("shop", catalog, Interactions(_log(n, list(catalog.ids), timed=True), catalog.ids))


def _agent(dataset: Dataset, tmp_path: Path, script: list[Any] | None = None, **settings: Any) -> Agent:
    return Agent(
        dataset,
        ScriptedChatModel(script or []),
        settings=AgentSettings(k=3, retrieve_k=10, sasrec_budget_s=2.0, **settings),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        item_noun=dataset.item_noun(),
        progress=False,
    )


@pytest.fixture(params=["films", "names_only", "shop"])
def any_catalog(request: pytest.FixtureRequest, dataset: Dataset) -> Dataset:
    return {"films": lambda: dataset, "names_only": names_only, "shop": shop}[request.param]()


def test_no_demonstration_names_a_column_the_catalog_lacks(any_catalog: Dataset, tmp_path: Path) -> None:
    agent = _agent(any_catalog, tmp_path)
    derived = derive(agent)
    assert derived.examples, derived.dropped
    columns = {c.lower() for c in any_catalog.catalog.schema.kept_columns} | {
        c.name for c in any_catalog.catalog.log_columns()
    }
    for demo in derived.examples:
        assert not unknown_columns(demo.plan, any_catalog.catalog), demo
        text = json.dumps(demo.plan).lower()
        for film_only in ("genres", "director", "runtime", "year"):
            if film_only not in columns:
                assert film_only not in text, demo
    # every kept demonstration ran: a recommendation leaves items, a question returns rows
    assert not [d for d in derived.dropped if "names columns" in d["why"]]


def test_shapes_follow_the_columns(dataset: Dataset, tmp_path: Path) -> None:
    films = derive(_agent(dataset, tmp_path)).shapes
    bands = derive(_agent(names_only(), tmp_path)).shapes
    products = derive(_agent(shop(), tmp_path)).shapes
    for shape in ("hard_filter", "people_filter", "similar_to", "info", "refine", "which_of_those", "chat"):
        assert shape in films, shape
    # names only: no filter on columns it lacks, no soft search over text it lacks
    assert not {"hard_filter", "people_filter", "numeric_filter", "soft_search"} & set(bands)
    assert {"similar_to", "most_popular", "info", "refine", "which_of_those", "preference", "chat"} <= set(
        bands
    )
    # a brand is who makes a product: "More products by Acme" is the people shape; no year, no decade
    assert {"hard_filter", "numeric_filter", "people_filter"} <= set(products)
    assert not any("from the" in d.request for d in derive(_agent(shop(), tmp_path)).examples)


def test_the_prompt_shows_one_example_per_core_shape_in_the_cached_part(
    dataset: Dataset, tmp_path: Path
) -> None:
    agent = _agent(dataset, tmp_path)
    agent.ensure_demonstrations()
    derived = derived_demonstrations(agent)
    core = core_demonstrations(derived)
    shown = {s for s, d in zip(derived.shapes, derived.examples, strict=True) if d in core}
    assert shown <= set(CORE_SHAPES) and len(core) == len(shown)  # one of each core shape, unbudgeted
    fixed = agent.planner.fixed
    assert [d.request for d in fixed[: len(core)]] == [d.request for d in core]  # every core shape, always
    extras = fixed[len(core) :]
    if extras:  # the extra examples only within the budget
        assert len(agent.planner.system) / 3.9 <= agent.settings.planner_prompt_tokens
    roomy = core_demonstrations(derived, budget_tokens=5000)
    assert [d.request for d in roomy[: len(core)]] == [d.request for d in core] and len(roomy) > len(core)
    assert core_demonstrations(derived, budget_tokens=0) == core
    messages = agent.planner.messages("anything", "", "")
    assert fixed[0].request in messages[0]["content"] and fixed[0].request not in messages[1]["content"]


def test_derived_demonstrations_are_cached_per_schema(dataset: Dataset, tmp_path: Path) -> None:
    agent = _agent(dataset, tmp_path)
    first = derived_demonstrations(agent)
    files = list(agent.resources.cache_dir.glob("demonstrations-*.json"))
    assert len(files) == 1
    again = derived_demonstrations(_agent(dataset, tmp_path))
    assert [d.request for d in again.examples] == [d.request for d in first.examples]


def test_a_users_own_demonstrations_are_checked_against_the_catalog(dataset: Dataset, tmp_path: Path) -> None:
    schema = plan_schema(list(_agent(dataset, tmp_path).tools.values()))
    good = tmp_path / "mine.json"
    good.write_text(
        json.dumps(
            [
                {
                    "request": "Short films",
                    "plan": {
                        "intent": "recommend",
                        "steps": [
                            {"tool": "filter", "where": "runtime < 100"},
                            {"tool": "rank", "by": "popularity"},
                        ],
                    },
                }
            ]
        )
    )
    assert load_user_demonstrations(good, dataset.catalog, schema)[0].request == "Short films"
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "request": "Cheap",
                    "plan": {"intent": "recommend", "steps": [{"tool": "filter", "where": "price < 5"}]},
                }
            ]
        )
    )
    with pytest.raises(ValueError, match=r"bad.json.*'Cheap'.*\['price'\]"):
        load_user_demonstrations(bad, dataset.catalog, schema)
    agent = _agent(dataset, tmp_path, demonstrations_file=str(good))
    agent.ensure_demonstrations()
    assert "Short films" in agent.planner.messages("short please", "", "")[1]["content"]


def test_typed_titles() -> None:
    assert typed_title("Matrix, The (1999)") == "The Matrix"
    assert typed_title("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)") == "Amelie"
    assert typed_title("Radiohead") == "Radiohead"


# ----------------------------------------------------------------------------- the agent on any catalog


def _plan(intent: str, steps: list[dict[str, Any]], **extra: Any) -> str:
    return json.dumps({"intent": intent, "steps": steps, **extra})


def test_a_name_the_catalog_lacks_is_said_without_replanning(tmp_path: Path) -> None:
    script = [_plan("recommend", [{"tool": "similar_to", "titles": ["Zorbulon Quartet"]}])]
    agent = _agent(names_only(), tmp_path, script)
    result = agent.chat(agent.session(), "Artists like Zorbulon Quartet")
    assert result.items == [] and result.trace.replans == 0 and result.trace.llm_calls == 1
    assert result.reply.startswith("I could not find “Zorbulon Quartet” in the catalog.")
    assert "Zorbulon Quartet" in (result.trace.not_found or {})


def test_one_missing_name_among_found_ones_is_said_first(tmp_path: Path) -> None:
    script = [
        _plan(
            "recommend",
            [
                {"tool": "similar_to", "titles": ["Radiohead", "Zorbulon Quartet"]},
                {"tool": "rank", "by": "similarity"},
            ],
        ),
        "You might like **Muse**.",
    ]
    agent = _agent(names_only(), tmp_path, script)
    result = agent.chat(agent.session(), "Like Radiohead and Zorbulon Quartet")
    assert result.items and result.reply.startswith("I could not find “Zorbulon Quartet”")


def test_a_follow_up_refines_every_earlier_candidate(dataset: Dataset, tmp_path: Path) -> None:
    script = [
        _plan(
            "recommend",
            [
                {"tool": "filter", "where": "list_contains(genres, 'Crime')"},
                {"tool": "rank", "by": "popularity"},
            ],
        ),
        "Here are some crime films.",
        _plan(
            "recommend",
            [
                {"tool": "previous_results", "which": "all"},
                {"tool": "filter", "where": "year < 1980"},
                {"tool": "rank", "by": "popularity"},
            ],
        ),
        "These are older.",
    ]
    agent = _agent(dataset, tmp_path, script)
    session = agent.session()
    first = agent.chat(session, "Crime films")
    assert len(first.items) == 3 and session.dialogue.turns[-1].candidate_ids  # all candidates kept
    second = agent.chat(session, "Only ones from before 1980")
    rows = [dataset.catalog.row(i) for i in second.items]
    assert rows and all("Crime" in r["genres"] and r["year"] < 1980 for r in rows)


def test_a_known_user_brings_their_logged_history(dataset: Dataset, tmp_path: Path) -> None:
    script = [_plan("recommend", [{"tool": "rank", "by": "popularity"}]), "Try these."]
    agent = _agent(dataset, tmp_path, script)
    session = agent.session("a")  # user "a" of the log: 10, 11, 12, 13
    assert session.profile.history == [10, 11, 12, 13]
    result = agent.chat(session, "What next?")
    assert result.items and not {10, 11, 12, 13} & set(result.items)
    stored = json.loads(next((tmp_path / "profiles").glob("*.json")).read_text())
    assert "history" not in stored  # the log is its source, the profile file does not copy it


def test_items_are_handed_out_before_the_reply(dataset: Dataset, tmp_path: Path) -> None:
    script = [_plan("recommend", [{"tool": "rank", "by": "popularity"}]), "First sentence. Second one."]
    agent = _agent(dataset, tmp_path, script)
    events: list[str] = []
    stream = agent.chat_stream(
        agent.session(), "anything", on_items=lambda ids: events.append(f"items:{len(ids)}")
    )
    events += ["chunk" for _ in stream]
    assert events[0] == "items:3" and events[1:] and set(events[1:]) == {"chunk"}
    assert (
        stream.result is not None
        and stream.result.trace.to_dict()["items_at_s"] <= stream.result.trace.latency_s
    )


def test_preference_ranking_uses_item_cf_without_timestamps(tmp_path: Path) -> None:
    agent = _agent(names_only(), tmp_path)
    assert agent.resources.preference_model == "itemcf"
    timed = _agent(shop(), tmp_path)
    assert timed.resources.preference_model == "sasrec"


def test_plan_repairs_for_what_small_planners_get_wrong(dataset: Dataset, tmp_path: Path) -> None:
    from recai.agent.agent import narrow_follow_up, title_searches_as_similar

    plan = {"intent": "recommend", "steps": [{"tool": "semantic_search", "args": {"query": "Pulp Fictoin"}}]}
    assert title_searches_as_similar(plan, dataset.catalog) == ["Pulp Fictoin"]
    assert plan["steps"][0] == {"tool": "similar_to", "args": {"titles": ["Pulp Fictoin"]}}
    mood = {
        "intent": "recommend",
        "steps": [{"tool": "semantic_search", "args": {"query": "dark and eerie"}}],
    }
    assert title_searches_as_similar(mood, dataset.catalog) == []
    only = {"intent": "recommend", "steps": [{"tool": "filter", "args": {"where": "year < 1990"}}]}
    assert narrow_follow_up(only, "Only ones from before 1990", has_previous=True)
    assert only["steps"][0]["tool"] == "previous_results"
    shorter = {"intent": "recommend", "steps": [{"tool": "filter", "args": {"where": "runtime < 100"}}]}
    assert narrow_follow_up(shorter, "Something shorter than 100 minutes?", has_previous=True)
    from recai.agent.agent import category_searches_as_filters

    genre = {"intent": "recommend", "steps": [{"tool": "semantic_search", "args": {"query": "crime movies"}}]}
    assert category_searches_as_filters(genre, dataset.catalog) == ["crime movies"]
    assert genre["steps"][0] == {"tool": "filter", "args": {"where": "list_contains(genres, 'Crime')"}}
    fresh = {"intent": "recommend", "steps": [{"tool": "filter", "args": {"where": "year < 1990"}}]}
    assert not narrow_follow_up(fresh, "Films from before 1990", has_previous=True)
    assert not narrow_follow_up(fresh, "Only ones from before 1990", has_previous=False)


def test_a_genre_named_as_an_item_is_refused_with_the_filter_to_use(dataset: Dataset, tmp_path: Path) -> None:
    from recai.agent.bus import CandidateBus
    from recai.agent.tools.base import ToolError
    from recai.agent.tools.retrieval import SimilarItemsTool

    ctx = _agent(dataset, tmp_path).turn_context()
    with pytest.raises(ToolError, match=r"'Crime films' is a genres value.*list_contains\(genres, 'Crime'\)"):
        SimilarItemsTool().run({"titles": ["Crime films"]}, CandidateBus(len(dataset.catalog)), ctx, 1)


def test_a_reply_that_contradicts_a_one_item_lookup_is_replaced_by_the_row(
    dataset: Dataset, tmp_path: Path
) -> None:
    question = _plan(
        "question",
        [
            {"tool": "user_candidates", "titles": ["Heat", "Reservoir Dogs"]},
            {"tool": "sql_query", "sql": "SELECT title, runtime FROM items ORDER BY runtime LIMIT 1"},
        ],
    )
    wrong = _agent(dataset, tmp_path, [question, "**Heat (1995)** is the shorter one."])
    result = wrong.chat(wrong.session(), "Which is shorter, Heat or Reservoir Dogs?")
    assert result.reply == "From the catalog: Reservoir Dogs: runtime 99."
    assert result.trace.to_dict()["grounding_answer"]["contradicted"].startswith("**Heat")
    right = _agent(dataset, tmp_path, [question, "**Reservoir Dogs (1992)** is shorter, at 99 minutes."])
    assert right.chat(right.session(), "Which is shorter?").reply.startswith("**Reservoir Dogs (1992)**")


def test_a_list_function_on_a_number_is_refused_with_how_to_compare(dataset: Dataset, tmp_path: Path) -> None:
    from recai.agent.bus import CandidateBus
    from recai.agent.tools.base import ToolError
    from recai.agent.tools.sql import FilterTool

    ctx = _agent(dataset, tmp_path).turn_context()
    with pytest.raises(ToolError, match=r"popularity is a number, not a list: compare it"):
        FilterTool().run(
            {"where": "list_contains(popularity, '50')"}, CandidateBus(len(dataset.catalog)), ctx, 1
        )
