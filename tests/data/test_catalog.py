from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, DataError, SqlError
from recai.data.catalog import check_read_only


def test_ids_map_to_dense_stable_positions(catalog: Catalog) -> None:
    assert list(catalog.ids) == [10, 11, 12, 13, 14, 15, 16, 17]
    assert catalog.index_of([12, 10]).tolist() == [2, 0]
    assert catalog.index_of(["12"]).tolist() == [2]  # ids typed as text still resolve
    assert catalog.index_of([99, 11], missing="mark").tolist() == [-1, 1]
    assert catalog.index_of([99, 11], missing="drop").tolist() == [1]
    with pytest.raises(KeyError, match="99"):
        catalog.index_of([99])
    assert 10 in catalog and 99 not in catalog


def test_render_puts_facts_first_and_respects_the_length_bound(catalog: Catalog) -> None:
    text = catalog.render(10)
    assert text.startswith("Pulp Fiction (1994).")
    assert "Genres: Crime, Drama." in text and "Runtime: 154 min." in text
    assert "Year:" not in text  # already in the title
    short = catalog.render(10, max_chars=40)
    assert len(short) <= 40 and short.endswith("...")
    assert catalog.render(10, columns=["title", "language"]) == "Pulp Fiction (1994). Language: English."
    assert len(catalog.texts()) == len(catalog)
    with pytest.raises(KeyError, match="nope"):
        catalog.render(10, columns=["nope"])


def test_long_text_is_cut_before_facts(films: pd.DataFrame, film_schema: CatalogSchema) -> None:
    films = films.assign(synopsis=["word " * 200] * len(films))
    schema = CatalogSchema(columns=[*film_schema.columns, ColumnSpec(name="synopsis", role=ColumnRole.TEXT)])
    text = Catalog(films, schema).render(10, max_chars=200)
    assert "Runtime: 154 min." in text and "Synopsis: word" in text and len(text) <= 200


def test_schema_card_lists_roles_ranges_and_frequent_values(catalog: Catalog) -> None:
    card = catalog.schema_card(max_values=2)
    assert "Table `items` (8 rows)" in card
    assert "year (integer, numeric); range 1946 to 2001" in card
    assert "genres (list of text, multi_categorical" in card and "values: Crime, Drama" in card
    assert "list_contains(genres, 'value')" in card
    assert "runtime (integer, numeric, in min)" in card


def test_sql_reads_the_item_table(catalog: Catalog) -> None:
    res = catalog.sql(
        "SELECT title FROM items WHERE list_contains(genres, 'Crime') AND runtime < 160 ORDER BY runtime"
    )
    assert res.frame["title"].tolist() == ["Reservoir Dogs", "Pulp Fiction"]
    assert not res.truncated
    cut = catalog.sql("SELECT item_id FROM items ORDER BY item_id", max_rows=3)
    assert cut.truncated and len(cut.frame) == 3
    assert catalog.ids_where("language = 'French'") == [13, 14]
    assert catalog.ids_where("language = 'French'", within=[14, 15]) == [14]
    with_cte = catalog.sql("WITH c AS (SELECT * FROM items WHERE year < 1980) SELECT count(*) AS n FROM c")
    assert with_cte.frame["n"].iloc[0] == 3


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE items",
        "DELETE FROM items",
        "INSERT INTO items (item_id) VALUES (1)",
        "UPDATE items SET title = 'x'",
        "CREATE TABLE t AS SELECT * FROM items",
        "SELECT 1; DROP TABLE items",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM other_table",
        "COPY items TO '/tmp/x.csv'",
        "ATTACH 'x.db' AS x",
        "PRAGMA database_list",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT * FROM main.items",
        "",
    ],
)
def test_sql_refuses_anything_but_one_read_only_select(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError):
        catalog.sql(query)
    assert len(catalog.sql("SELECT * FROM items").frame) == len(catalog)


def test_sql_errors_are_reported_not_raised_raw(catalog: Catalog) -> None:
    with pytest.raises(SqlError, match=r"no_such_column|not found|Referenced column"):
        catalog.sql("SELECT no_such_column FROM items")


def test_check_read_only_accepts_set_operations() -> None:
    check_read_only("SELECT item_id FROM items UNION SELECT item_id FROM items")


def test_the_guard_is_still_importable_from_the_catalog_module() -> None:
    from recai.data import catalog, sql_guard

    assert catalog.check_read_only is sql_guard.check_read_only and catalog.SqlError is sql_guard.SqlError
    assert catalog.ALLOWED_FUNCTIONS is sql_guard.ALLOWED_FUNCTIONS and "lpad" in catalog.ALLOWED_FUNCTIONS


@pytest.mark.parametrize(
    ("query", "visible"),
    [
        ("WITH a AS (SELECT 1) SELECT * FROM a", True),
        ("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", True),  # an earlier sibling
        ("WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b", False),  # a later sibling
        ("WITH a AS (SELECT * FROM a) SELECT * FROM a", False),  # itself: DuckDB reads the real table
        ("WITH a AS (SELECT 1) SELECT * FROM (SELECT * FROM a)", True),  # a nested scope
        ("SELECT * FROM a WHERE EXISTS (WITH a AS (SELECT 1) SELECT 1)", False),  # an inner scope
        ("SELECT * FROM a UNION ALL (WITH a AS (SELECT 1) SELECT * FROM a)", False),  # another branch
        ("WITH a AS (SELECT 1) SELECT * FROM a UNION ALL SELECT * FROM a", True),  # the WITH covers both
    ],
)
def test_check_read_only_resolves_ctes_in_their_scope(query: str, visible: bool) -> None:
    if visible:
        check_read_only(query)
    else:
        with pytest.raises(SqlError, match="unknown table 'a'"):
            check_read_only(query)


def test_bad_values_name_the_row_and_field(films: pd.DataFrame, film_schema: CatalogSchema) -> None:
    bad = films.astype({"runtime": object})
    bad.loc[3, "runtime"] = "long"
    with pytest.raises(DataError, match=r"items.csv, line 5, field 'runtime': not a number: 'long'"):
        Catalog(bad, film_schema, source="items.csv")
    dup = films.copy()
    dup.loc[2, "item_id"] = 10
    with pytest.raises(
        DataError, match=r"line 4, field 'item_id': duplicate item id 10 \(first seen on line 2\)"
    ):
        Catalog(dup, film_schema, source="items.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) \['runtime'\]"):
        Catalog(films.drop(columns=["runtime"]), film_schema)


def test_multi_valued_text_is_split_with_the_declared_separator() -> None:
    schema = CatalogSchema(
        columns=[
            ColumnSpec(name="id", role=ColumnRole.ID),
            ColumnSpec(name="name", role=ColumnRole.TITLE),
            ColumnSpec(name="tags", role=ColumnRole.MULTI_CATEGORICAL, separator=";"),
        ]
    )
    cat = Catalog(pd.DataFrame({"id": ["x", "y"], "name": ["A", "B"], "tags": ["red; blue", None]}), schema)
    assert cat.items["tags"].tolist() == [["red", "blue"], []]
    assert cat.ids_where("list_contains(tags, 'blue')") == ["x"]


def test_popularity_breaks_title_ties(catalog: Catalog) -> None:
    counts = np.zeros(len(catalog))
    counts[catalog.index_of([15])[0]] = 10
    catalog.attach_interaction_counts(counts)
    g = catalog.ground("Beauty and the Beast")
    assert g.item_id == 15 and g.ambiguous
    assert g.did_you_mean(2) == ["Beauty and the Beast (1991)", "Beauty and the Beast (1946)"]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1 `--`; DROP TABLE items",  # sqlglot and DuckDB disagree on backticks: both gates must pass
        "SELECT 1 `--`; INSERT INTO items (item_id, title) VALUES (999, 'Hallucinated')",
        "CHECKPOINT",
        "DESCRIBE items",
        "SUMMARIZE items",
    ],
)
def test_parser_disagreements_cannot_smuggle_statements(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError):
        catalog.sql(query)
    assert catalog.sql("SELECT count(*) AS n FROM items").frame["n"].iloc[0] == len(catalog)


def test_a_trailing_comment_is_not_a_second_statement(catalog: Catalog) -> None:
    assert catalog.sql("SELECT 1 AS x; -- why").frame["x"].tolist() == [1]


@pytest.mark.parametrize(
    "condition",
    [
        "false UNION ALL SELECT 123456789",
        "false UNION ALL SELECT title FROM items",
        "year < 2000 ORDER BY random()",
        "true) UNION ALL (SELECT 5",
    ],
)
def test_ids_where_conditions_cannot_add_or_reorder_rows(catalog: Catalog, condition: str) -> None:
    with pytest.raises(SqlError, match="not a single condition"):
        catalog.ids_where(condition)


def test_ids_where_returns_catalog_order_without_duplicates(catalog: Catalog) -> None:
    ids = catalog.ids_where("item_id IN (SELECT item_id FROM items WHERE year > 1990) OR year < 1950")
    assert ids == [10, 11, 12, 13, 14, 15]
