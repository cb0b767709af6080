"""The LLM writes SQL, so the catalog treats it as hostile: an adversarial list, all refused."""

from __future__ import annotations

import pytest

from recai.data import Catalog, SqlError

ADVERSARIAL = [
    "SELECT title FROM items WHERE director = 'Alfred H.",  # an unclosed quote (a cut-off LLM string)
    "DROP TABLE items",
    "DELETE FROM items",
    "DELETE FROM items WHERE 1=1",
    "UPDATE items SET title = 'pwned'",
    "INSERT INTO items (item_id, title) VALUES (1, 'x')",
    "INSERT INTO items SELECT * FROM items",
    "CREATE TABLE evil AS SELECT * FROM items",
    "CREATE VIEW v AS SELECT 1",
    "CREATE MACRO m(x) AS x",
    "ALTER TABLE items ADD COLUMN x INT",
    "ALTER TABLE items RENAME TO other",
    "TRUNCATE items",
    "COPY items TO '/tmp/out.csv'",
    "COPY (SELECT * FROM items) TO '/tmp/out.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '/tmp/db'",
    "IMPORT DATABASE '/tmp/db'",
    "ATTACH '/tmp/other.db' AS other",
    "ATTACH ':memory:' AS m",
    "DETACH other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA database_list",
    "PRAGMA show_tables",
    "SET enable_external_access = true",
    "SET threads = 1",
    "RESET threads",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "ROLLBACK",
    "DESCRIBE items",
    "SHOW TABLES",
    "SUMMARIZE items",
    "EXPLAIN SELECT * FROM items",
    "SELECT 1; DROP TABLE items",
    "SELECT * FROM items; SELECT 1",
    "SELECT 1 `--`; DROP TABLE items",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/hosts')",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM read_json('/tmp/x.json')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'https://example.com/data.csv'",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM main.items",
    "SELECT * FROM other_table",
    "SELECT * FROM sqlite_master",
    "SELECT getenv('HOME')",
    "SELECT current_setting('memory_limit')",
    "SELECT read_text('/etc/passwd')",
    "SELECT read_blob('/etc/passwd')",
    "SELECT query('DROP TABLE items')",
    "SELECT * FROM query_table('items')",
    "WITH x AS (DELETE FROM items RETURNING *) SELECT * FROM x",
    "SELECT title FROM items UNION SELECT getenv('PATH')",
    "SELECT (SELECT read_text('/etc/passwd')) FROM items",
    "SELECT title FROM items WHERE title IN (SELECT * FROM read_csv('/etc/passwd'))",
    "",
    "   ",
    "this is not sql at all",
]


def test_the_list_is_long_enough() -> None:
    assert len(ADVERSARIAL) >= 50


@pytest.mark.parametrize("query", ADVERSARIAL)
def test_adversarial_statements_are_refused(catalog: Catalog, query: str) -> None:
    with pytest.raises(SqlError):
        catalog.sql(query)
    assert len(catalog.sql("SELECT * FROM items").frame) == len(catalog)  # nothing changed


@pytest.mark.parametrize(
    "query",
    [
        "SELECT title, runtime FROM items WHERE list_contains(genres, 'Crime') ORDER BY runtime LIMIT 2",
        "SELECT count(*) AS n, avg(runtime) AS mean FROM items",
        "SELECT title FROM items WHERE lower(title) LIKE '%god%'",
        "WITH old AS (SELECT * FROM items WHERE year < 1980) SELECT title FROM old",
        "SELECT d, count(*) FROM (SELECT unnest(director) AS d FROM items) GROUP BY d",
        "SELECT title FROM items WHERE runtime = (SELECT max(runtime) FROM items)",
        "SELECT lpad(title, 30, '.') AS t, rpad(language, 10, ' ') AS l FROM items",
        "SELECT title, row_number() OVER (PARTITION BY language ORDER BY runtime) AS r FROM items",
        "SELECT [g FOR g IN genres IF g LIKE 'C%'] AS c, list_filter(genres, lambda g: g = 'Crime') AS d FROM items",
        "SELECT {'t': title}.t AS t, strip_accents(title) AS plain FROM items WHERE title ILIKE '%amelie%' "
        "OR strip_accents(title) = 'Amelie'",
        "SELECT arg_max(title, runtime) AS longest, quantile_cont(runtime, 0.5) AS median_runtime FROM items",
        "SELECT title FROM items WHERE make_date(year, 1, 1) > DATE '2001-01-01' - INTERVAL 30 YEAR",
    ],
)
def test_reasonable_queries_pass(catalog: Catalog, query: str) -> None:
    assert len(catalog.sql(query).frame) >= 1
