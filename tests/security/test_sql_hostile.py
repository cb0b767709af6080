"""Hostile SQL against the catalog, the agent's SQL tools and ``POST /recommend`` (the "Hardening" issue,
findings 4-7, plus our own). Every statement must be refused with a ``SqlError`` (a ``ToolError`` in the
tools, a JSON 422 over HTTP) or run harmlessly; nothing may leak system views, crash a turn, return a giant
value into Python or write spill files into the working directory.

The tests go through the public API that the original guard also had (``Catalog.sql``, ``ids_where``,
``check_read_only``), so each finding's test fails on 5308919; gate-by-gate checks import
``recai.data.sql_guard`` inside the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pytest

from recai.agent import Agent, AgentSettings
from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentResources
from recai.agent.memory import ProfileStore
from recai.agent.tools.base import ToolError
from recai.agent.tools.sql import FilterTool, InfoQueryTool
from recai.data import Catalog, Dataset, SqlError
from recai.data.catalog import check_read_only
from recai.llm import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def _system_views() -> list[str]:
    """Every system view an unqualified name reaches in this DuckDB (37 in 2.0: pg_settings, sqlite_master,
    duckdb_tables, duckdb_columns, duckdb_views, pg_class...)."""
    con = duckdb.connect()
    rows = con.execute(
        "SELECT DISTINCT view_name FROM duckdb_views() "
        "WHERE internal AND schema_name IN ('main', 'pg_catalog') ORDER BY 1"
    ).fetchall()
    return [name for (name,) in rows]


SYSTEM_VIEWS = _system_views()
NAMED_IN_THE_ISSUE = ["pg_settings", "sqlite_master", "duckdb_tables", "duckdb_columns", "duckdb_views"]

# Finding 4, verbatim, and the sibling form completed into a statement.
ISSUE_SMUGGLES = [
    "SELECT name, setting FROM pg_settings WHERE EXISTS (WITH pg_settings AS (SELECT 1) SELECT 1)",
    "WITH a AS (SELECT * FROM duckdb_views), duckdb_views AS (SELECT 1) SELECT * FROM a",
]

# A CTE declared anywhere but in scope must not "allow" the name: DuckDB resolves it to the real view.
SMUGGLE_SHAPES = {
    "nested": "SELECT * FROM {v} WHERE EXISTS (WITH {v} AS (SELECT 1) SELECT 1)",
    "sibling": "WITH a AS (SELECT * FROM {v}), {v} AS (SELECT 1) SELECT * FROM a",
    "self": "WITH {v} AS (SELECT * FROM {v}) SELECT * FROM {v}",
    "scalar": "SELECT (WITH {v} AS (SELECT 1) SELECT 1) AS x, * FROM {v}",
    "union": "SELECT count(*) AS n FROM {v} UNION ALL (WITH {v} AS (SELECT 1) SELECT 1)",
    "lateral": "SELECT * FROM items, LATERAL (SELECT * FROM {v}) s WHERE EXISTS (WITH {v} AS (SELECT 1) SELECT 1)",
    "in_cte": "WITH x AS (WITH {v} AS (SELECT 1) SELECT 1) SELECT * FROM x, {v}",
}

# Every statement type DuckDB's parser accepts but the catalog must refuse, some of which the Python enum
# cannot even name (UPDATE EXTENSIONS is type 29).
NOT_SELECT = [
    "UPDATE EXTENSIONS",
    "UPDATE EXTENSIONS (httpfs)",
    "LOAD httpfs",
    "LOAD 'x'",
    "SET VARIABLE x = 1",
    "CREATE SECRET s (TYPE s3)",
    "USE memory",
    "CALL duckdb_settings()",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DEALLOCATE p",
    "EXPLAIN ANALYZE SELECT 1",
    "PIVOT items ON year",
    "UNPIVOT items ON year INTO NAME a VALUE b",
    "COPY FROM DATABASE memory TO other",
    "MERGE INTO items USING items AS s ON true WHEN MATCHED THEN DELETE",
    "ANALYZE",
    "FORCE CHECKPOINT",
    "COMMENT ON TABLE items IS 'x'",
    "ATTACH OR REPLACE ':memory:' AS x",
    "CREATE OR REPLACE TEMP MACRO m() AS 1",
    "DESCRIBE SELECT 1",
    "SUMMARIZE SELECT 1",
    "SHOW ALL TABLES",
]

DEEP_PARENS = "SELECT " + "(" * 300 + "1" + ")" * 300
DEEP_NOTS = "SELECT " + "NOT " * 140 + "true"
DEEP_CONDITIONS = ["(" * 250 + "true" + ")" * 250, "NOT " * 140 + "true"]  # within /recommend's 600 chars

# Functions that must never run, as a user would write them.
FORBIDDEN_CALLS = {
    "getenv": "SELECT getenv('HOME')",
    "read_text": "SELECT read_text('/etc/passwd')",
    "read_blob": "SELECT read_blob('/etc/passwd')",
    "read_csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read_csv_auto": "SELECT * FROM read_csv_auto('/etc/hosts')",
    "read_parquet": "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "read_json": "SELECT * FROM read_json('/tmp/x.json')",
    "glob": "SELECT * FROM glob('/*')",
    "current_setting": "SELECT current_setting('temp_directory')",
    "query": "SELECT * FROM query('SELECT 1')",
    "query_table": "SELECT * FROM query_table('items')",
    "version": "SELECT version()",
    "pragma_version": "SELECT * FROM pragma_version()",
    "pragma_platform": "SELECT * FROM pragma_platform()",
    "pragma_database_size": "SELECT * FROM pragma_database_size()",
    "pragma_table_info": "SELECT * FROM pragma_table_info('items')",
    "duckdb_settings": "SELECT * FROM duckdb_settings()",
    "duckdb_functions": "SELECT * FROM duckdb_functions()",
    "duckdb_extensions": "SELECT * FROM duckdb_extensions()",
    "duckdb_secrets": "SELECT * FROM duckdb_secrets()",
    "duckdb_temporary_files": "SELECT * FROM duckdb_temporary_files()",
    "duckdb_memory": "SELECT * FROM duckdb_memory()",
    "duckdb_databases": "SELECT * FROM duckdb_databases()",
    "duckdb_tables": "SELECT * FROM duckdb_tables()",
    "current_database": "SELECT current_database()",
    "current_schemas": "SELECT current_schemas(true)",
    "getvariable": "SELECT getvariable('x')",
    "json_serialize_sql": "SELECT json_serialize_sql('SELECT 1')",
    "sql_auto_complete": "SELECT * FROM sql_auto_complete('SEL')",
    "which_secret": "SELECT * FROM which_secret('s3://x', 's3')",
    "range": "SELECT * FROM range(10)",
    "generate_series": "SELECT unnest(generate_series(1, 10))",
    "repeat": "SELECT repeat('x', 10)",
    "setseed": "SELECT setseed(0.5)",
    "columns": "SELECT COLUMNS('t.*') FROM items",
}


# ----------------------------------------------------------------------- 4. CTE scope smuggling
@pytest.mark.parametrize("query", ISSUE_SMUGGLES)
def test_the_issue_smuggles_are_refused(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError, match="unknown table"):
        catalog.sql(query)


def test_the_issue_names_are_among_the_system_views() -> None:
    assert set(NAMED_IN_THE_ISSUE) <= set(SYSTEM_VIEWS) and len(SYSTEM_VIEWS) >= 16


@pytest.mark.parametrize("shape", SMUGGLE_SHAPES)
@pytest.mark.parametrize("view", SYSTEM_VIEWS)
def test_no_system_view_is_reachable_through_a_cte_out_of_scope(
    catalog: Catalog, view: str, shape: str
) -> None:
    query = SMUGGLE_SHAPES[shape].format(v=view)
    with pytest.raises(SqlError):
        catalog.sql(query)
    with pytest.raises(SqlError):
        check_read_only(query)


@pytest.mark.parametrize("view", SYSTEM_VIEWS)
def test_the_where_oracle_is_closed(catalog: Catalog, view: str) -> None:
    """A yes/no oracle: the filter kept every item when the smuggled condition held."""
    with pytest.raises(SqlError):
        catalog.ids_where(f"EXISTS (SELECT 1 FROM {view} WHERE EXISTS (WITH {view} AS (SELECT 1) SELECT 1))")


@pytest.mark.parametrize("shape", SMUGGLE_SHAPES)
def test_each_gate_refuses_a_smuggle_on_its_own(shape: str) -> None:
    """sqlglot's tree and DuckDB's own tree are checked independently: either alone refuses."""
    from recai.data.sql_guard import check_duckdb_tree

    query = SMUGGLE_SHAPES[shape].format(v="pg_settings")
    with pytest.raises(SqlError, match="pg_settings"):
        check_read_only(query)
    with pytest.raises(SqlError, match="pg_settings"):
        check_duckdb_tree(duckdb.connect(), query)


def test_a_kelvin_sign_does_not_fold_into_a_k(catalog: Catalog) -> None:
    """Python's lower() folds U+212A into 'k', DuckDB does not: the CTE would not hide duckdb_tables."""
    query = 'WITH "duc\u212adb_tables" AS (SELECT 1) SELECT count(*) AS n FROM duckdb_tables'
    with pytest.raises(SqlError, match="unknown table 'duckdb_tables'"):
        catalog.sql(query)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM (DESCRIBE items)",
        "SELECT * FROM (SUMMARIZE items)",
        "SELECT * FROM (SHOW TABLES)",
        "SELECT * FROM (SHOW ALL TABLES)",
        "SELECT * FROM items PIVOT (count(*) FOR year IN (1990))",
        "TABLE pg_settings",
        "FROM pg_settings",
        "SELECT * FROM items WHERE title IN (TABLE pg_settings)",
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5) SELECT * FROM r",
        "WITH RECURSIVE pg_settings AS (SELECT * FROM pg_settings) SELECT * FROM pg_settings",
        "SELECT * FROM pg_catalog.pg_settings",
        "SELECT * FROM system.main.duckdb_tables",
        "SELECT * FROM information_schema.tables",
        'SELECT * FROM "PG_SETTINGS"',
        "SELECT * FROM items WHERE title = $1",
        "SELECT * FROM items WHERE title = ?",
        "SELECT 'HOME'.getenv()",
        "SELECT title.getenv() FROM items",
    ],
)
def test_other_ways_to_other_relations_are_refused(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError):
        catalog.sql(query)


@pytest.mark.parametrize(
    "query",
    [
        "WITH a AS (SELECT * FROM items), b AS (SELECT * FROM a) SELECT count(*) AS n FROM b",
        "WITH a AS (SELECT 1 AS v) SELECT count(*) AS n FROM items WHERE EXISTS (SELECT * FROM a)",
        "SELECT count(*) AS n FROM items WHERE item_id IN (WITH x AS (SELECT item_id FROM items) SELECT * FROM x)",
        "WITH a AS (SELECT 1 AS n) (SELECT * FROM a) UNION ALL (SELECT * FROM a)",
        "WITH items AS (SELECT * FROM items WHERE year < 1980) SELECT count(*) AS n FROM items",
        "WITH a AS (SELECT 1 AS n) SELECT (SELECT n FROM a) AS n",
        "SELECT u, count(*) AS n FROM items, unnest(genres) AS t(u) GROUP BY u",
        "FROM items SELECT count(*) AS n",
    ],
)
def test_ctes_in_scope_still_work(catalog: Catalog, query: str) -> None:
    assert len(catalog.sql(query).frame) >= 1


# ---------------------------------------------------------------------- 5. wrong exception types
@pytest.mark.parametrize("query", NOT_SELECT)
def test_every_statement_type_is_refused_as_a_sql_error(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError):  # not a ValueError about StatementType 29
        catalog.sql(query)


@pytest.mark.parametrize("query", [DEEP_PARENS, DEEP_NOTS], ids=["parens", "nots"])
def test_deep_nesting_is_a_sql_error(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError, match="nested too deeply"):
        catalog.sql(query)
    with pytest.raises(SqlError):
        check_read_only(query)


@pytest.mark.parametrize("condition", DEEP_CONDITIONS, ids=["parens", "nots"])
def test_deep_conditions_are_sql_errors_in_ids_where(catalog: Catalog, condition: str) -> None:
    with pytest.raises(SqlError):
        catalog.ids_where(condition)


@pytest.fixture
def ctx(dataset: Dataset) -> AgentContext:
    settings = AgentSettings(retrieve_k=5, sasrec_budget_s=2.0)
    return AgentContext(AgentResources(dataset, settings, progress=False, encoder=BagOfWordsEncoder()))


@pytest.mark.parametrize("condition", [*DEEP_CONDITIONS, "x'"], ids=["parens", "nots", "quote"])
def test_the_filter_tool_fails_one_step(ctx: AgentContext, condition: str) -> None:
    with pytest.raises(ToolError):
        FilterTool().run({"where": condition}, CandidateBus(len(ctx.catalog)), ctx, 1)


@pytest.mark.parametrize(
    "query", [DEEP_PARENS, DEEP_NOTS, "UPDATE EXTENSIONS"], ids=["parens", "nots", "update"]
)
@pytest.mark.parametrize("restricted", [False, True], ids=["catalog", "candidates"])
def test_the_info_query_tool_fails_one_step(ctx: AgentContext, query: str, restricted: bool) -> None:
    bus = CandidateBus(len(ctx.catalog))
    if restricted:  # the query is rewritten to the candidates first (sqlglot, outside the catalog)
        bus.restrict(ctx.catalog.index_of([10, 11]), step=0, tool="test")
    with pytest.raises(ToolError):
        InfoQueryTool().run({"sql": query}, bus, ctx, 1)


def _plan(steps: list[dict[str, Any]]) -> str:
    return json.dumps(
        {"intent": "recommend", "steps": steps, "feedback": {"liked": [], "disliked": []}, "reply": ""}
    )


@pytest.mark.parametrize("condition", DEEP_CONDITIONS, ids=["parens", "nots"])
def test_a_hostile_filter_makes_the_agent_replan_not_fail(
    dataset: Dataset, tmp_path: Path, condition: str
) -> None:
    script = [
        _plan([{"tool": "filter", "args": {"where": condition}}]),
        _plan([{"tool": "filter", "args": {"where": "language = 'French'"}}]),
        "**Amélie (2001)** is charming.",
    ]
    agent = Agent(
        dataset,
        ScriptedChatModel(script),
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        progress=False,
    )
    result = agent.chat(agent.session(), "something French")
    assert result.trace.replans == 1 and set(result.items) <= {13, 14}
    assert "filter" in result.trace.steps[0].error


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_recommend_answers_hostile_where_with_json_422(dataset: Dataset, tmp_path: Path) -> None:
    from recai.serve import ServeSettings, create_app

    agent = Agent(
        dataset,
        ScriptedChatModel([]),
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(tmp_path / "profiles"),
        progress=False,
    )
    agent.warm_up()
    app = create_app(agent, ServeSettings())
    oracle = "EXISTS (SELECT 1 FROM pg_settings WHERE name = '{}' AND EXISTS (WITH pg_settings AS (SELECT 1) SELECT 1))"
    hostile = [oracle.format("temp_directory"), oracle.format("no_such_setting"), *DEEP_CONDITIONS]
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://recai.test", timeout=30) as client:
            for where in hostile:
                assert len(where) <= 600
                response = await client.post("/recommend", json={"where": where, "k": 3})
                assert response.status_code == 422, (where[:40], response.status_code, response.text[:200])
                assert response.headers["content-type"].startswith("application/json")
                assert response.json()["error"]["code"] == "tool_failed"
            fine = await client.post("/recommend", json={"where": "language = 'French'", "k": 3})
            assert fine.status_code == 200 and {c["id"] for c in fine.json()["items"]} == {13, 14}
    finally:
        app.state.recai.runner.close(5)


# ------------------------------------------------------------------- 6. unbounded results and spills
CROSS_JOIN_AGG = (  # 8^6 rows of six titles: about 22 MB in one value
    "SELECT string_agg(a.title || b.title || c.title || d.title || e.title || f.title, ',') AS s "
    "FROM items a, items b, items c, items d, items e, items f"
)
DOUBLING = (  # each CTE doubles the titles: 8 rows of about 1.5 MB each
    "WITH a AS (SELECT title || title AS s FROM items), "
    + ", ".join(f"a{i} AS (SELECT s || s AS s FROM {'a' if i == 1 else f'a{i - 1}'})" for i in range(1, 17))
    + " SELECT s FROM a16"
)


@pytest.mark.parametrize("query", [CROSS_JOIN_AGG, DOUBLING], ids=["string_agg", "doubling"])
def test_a_giant_result_is_refused_before_it_reaches_python(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError, match="larger than"):
        catalog.sql(query)


def test_the_issue_string_agg_over_range_is_refused(catalog: Catalog) -> None:
    with pytest.raises(SqlError):
        catalog.sql("SELECT string_agg(CAST(i AS VARCHAR), ',') FROM range(100000000) t(i)")
    with pytest.raises(SqlError):
        catalog.sql("SELECT string_agg(CAST(i AS VARCHAR), ',') FROM (SELECT unnest(range(100000000)) AS i)")


def test_the_byte_cap_is_configurable_and_a_column_cannot_stand_in_for_the_row(
    films: pd.DataFrame, catalog: Catalog
) -> None:
    big = "SELECT title AS _recai_row, lpad('x', 9000000, 'y') AS big FROM items LIMIT 1"
    with pytest.raises(SqlError, match="larger than"):
        catalog.sql(big)
    with pytest.raises(SqlError, match="larger than 100 bytes"):
        catalog.sql("SELECT title FROM items", max_bytes=100)
    assert len(catalog.sql("SELECT title FROM items", max_bytes=1000).frame) == len(catalog)
    assert len(Catalog(films, sql_max_bytes=None).sql(big).frame.iloc[0, 1]) == 9_000_000


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1 AS x; -- why",
        "SELECT 1 AS x;;",
        "SELECT 1 AS x -- no newline",
        "SELECT 1 AS x /* ; */ ;",
        "SELECT count(*) AS x FROM items WHERE title <> 'Amélie;'; /* é */",
    ],
)
def test_the_cap_wrapper_keeps_trailing_comments_and_semicolons_working(catalog: Catalog, query: str) -> None:
    assert len(catalog.sql(query).frame) == 1


# 2 million rows of seven titles (about 180 MB): the original spilled them into ./.tmp
SEVEN_TITLES = (
    "(SELECT a.title || b.title || c.title || d.title || e.title || f.title || g.title AS t "
    "FROM items a, items b, items c, items d, items e, items f, items g)"
)
LARGE_ORDER_BY = f"SELECT t FROM {SEVEN_TITLES} ORDER BY t"
LARGE_DISTINCT = f"SELECT count(DISTINCT t) AS n FROM {SEVEN_TITLES}"


def test_a_large_sort_writes_nothing_into_the_working_directory(
    films: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    catalog = Catalog(films, sql_memory_limit="100MB")
    assert len(catalog.sql(LARGE_ORDER_BY, timeout_s=60).frame) == 1000  # the row cap makes it a top-N
    assert list(cwd.iterdir()) == []
    with pytest.raises(SqlError, match=r"(?i)out of memory"):  # no spilling unless asked for
        catalog.sql(LARGE_DISTINCT, timeout_s=60)
    assert list(cwd.iterdir()) == []


def test_spills_when_asked_for_are_bounded_and_under_recai_home(
    films: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    catalog = Catalog(films, sql_memory_limit="100MB", sql_spill_limit="20MB")
    with pytest.raises(SqlError, match=r"(?i)offload|out of memory|temp"):  # 20 MB is not enough
        catalog.sql(LARGE_DISTINCT, timeout_s=60)
    assert list(cwd.iterdir()) == []
    assert (Path(os.environ["RECAI_HOME"]) / "tmp").is_dir()
    roomy = Catalog(films, sql_memory_limit="100MB", sql_spill_limit="1GB")
    assert roomy.sql(LARGE_DISTINCT, timeout_s=60).frame["n"].iloc[0] > 0
    assert list(cwd.iterdir()) == []


# ------------------------------------------------------------------ defence in depth: the connection
def test_a_hardened_connection_shows_nothing_even_without_the_guard(tmp_path: Path) -> None:
    """What a query that got past every gate would see: empty system views and no paths."""
    from recai.data.sql_guard import harden

    con = duckdb.connect()
    con.execute("CREATE TABLE items AS SELECT 1 AS item_id")
    harden(con)
    for view in SYSTEM_VIEWS:
        assert con.execute(f'SELECT count(*) FROM "{view}"').fetchone()[0] == 0, view
    values = " ".join(str(v) for (v,) in con.execute("SELECT value FROM duckdb_settings()").fetchall())
    for secret in {str(Path.cwd()), str(Path.home()), os.environ["RECAI_HOME"], ".tmp"}:
        assert secret not in values
    for function in ("duckdb_extensions", "duckdb_secrets", "duckdb_databases", "duckdb_temporary_files"):
        try:
            shown = repr(con.execute(f"SELECT * FROM {function}()").fetchall())
        except duckdb.Error as exc:  # refused for want of file access: the message must not name a path
            shown = str(exc)
        assert str(Path.cwd()) not in shown and str(Path.home()) not in shown, (function, shown)
    leak = pd.DataFrame({"secret": [42]})  # noqa: F841 - a replacement scan would read it by name
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM leak").fetchall()
    for setting in (
        "SET enable_external_access = true",
        "SET temp_directory = '.'",
        "SET lock_configuration = false",
    ):
        with pytest.raises(duckdb.Error):
            con.execute(setting)


def test_a_spill_folder_is_the_only_path_a_hardened_connection_names(tmp_path: Path) -> None:
    from recai.data.sql_guard import harden, spill_folder

    con = duckdb.connect()
    folder = spill_folder(tmp_path)
    harden(con, spill_dir=folder, spill_limit="10MB")
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    assert settings["temp_directory"] == str(folder) and folder.parent == tmp_path / "tmp"
    assert settings["max_temp_directory_size"] != "0 bytes"
    values = " ".join(str(v) for v in settings.values())
    assert str(Path.cwd()) not in values and str(Path.home()) not in values.replace(str(tmp_path), "")


# ------------------------------------------------------------------------------------ 7. allow-list
@pytest.mark.parametrize(
    "call",
    [
        "lpad(title, 20, '.')",
        "rpad(title, 20, '.')",
        "list_distinct(genres)",
        "quantile_cont(runtime, 0.5)",
        "date_trunc('year', DATE '2020-03-01')",
    ],
)
def test_the_issue_allow_list_entries_match(catalog: Catalog, call: str) -> None:
    assert len(catalog.sql(f"SELECT {call} AS v FROM items").frame) >= 1


def test_every_allow_list_entry_passes_both_gates_and_runs(catalog: Catalog) -> None:
    from recai.data.sql_guard import ALLOWED_FUNCTIONS, FUNCTION_EXAMPLES, check_duckdb_tree

    assert set(FUNCTION_EXAMPLES) == set(ALLOWED_FUNCTIONS)
    con = duckdb.connect()
    for name, example in FUNCTION_EXAMPLES.items():
        query = f"SELECT {example} AS v FROM items"
        check_read_only(query)
        check_duckdb_tree(con, query)
        assert len(catalog.sql(query).frame) >= 1, name


@pytest.mark.parametrize("name", FORBIDDEN_CALLS)
def test_forbidden_functions_are_refused_by_their_written_name(catalog: Catalog, name: str) -> None:
    with pytest.raises(SqlError, match=rf"(?i)\b{name}\b"):
        catalog.sql(FORBIDDEN_CALLS[name])


def test_forbidden_functions_are_not_on_the_allow_list() -> None:
    from recai.data.sql_guard import ALLOWED_FUNCTIONS

    assert not set(FORBIDDEN_CALLS) & ALLOWED_FUNCTIONS


@pytest.mark.parametrize("query", ["SELECT version()", "SELECT Version()", "SELECT VERSION()"])
def test_errors_name_the_function_as_written(catalog: Catalog, query: str) -> None:
    written = query.removeprefix("SELECT ").removesuffix("()")
    with pytest.raises(SqlError, match=rf"function {written}\(\)") as refused:
        catalog.sql(query)
    assert "CURRENT_VERSION" not in str(refused.value)


def test_a_cpu_bomb_is_interrupted(catalog: Catalog) -> None:
    joined = ", ".join(f"items t{i}" for i in range(10))  # 8^10 rows
    bomb = f"SELECT sum({' + '.join(f't{i}.runtime' for i in range(10))}) AS s FROM {joined}"
    with pytest.raises(SqlError, match="interrupted"):
        catalog.sql(bomb, timeout_s=0.5)
