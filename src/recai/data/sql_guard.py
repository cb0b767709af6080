"""The guard in front of a catalog's SQL surface, and the DuckDB connection behind it.

Planners are LLMs and ``POST /recommend`` takes a WHERE clause from the network, so every query is hostile.
A query runs only when three independent readings of it agree that it is one read-only SELECT over the
catalog:

1. DuckDB's statement splitter sees exactly one statement, of type SELECT (:func:`single_select`);
2. sqlglot's tree (:func:`check_read_only`) holds no DDL, DML, RECURSIVE or table function but
   ``unnest``, calls only allow-listed functions, and every table reference names ``items`` or a CTE
   visible in *its own* scope;
3. DuckDB's own parse tree (:func:`check_duckdb_tree`, from ``json_serialize_sql``) passes the same
   function and scope rules, so where sqlglot and DuckDB read a query differently the stricter one wins.

Behind the gates, :func:`harden` sets the connection up as if they had failed: no file, network or
extension access, no spill files (or a bounded folder under ``$RECAI_HOME``), no Python replacement scans,
empty stand-ins for every system view an unqualified name could reach, neutral directory settings, a memory
limit, and a locked configuration. :func:`run_capped` adds a row cap, a byte cap checked inside DuckDB
(a giant value never reaches Python) and a timeout. Every refusal or failure is a :class:`SqlError`.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from recai.errors import RecaiError

TABLE = "items"
DEFAULT_MAX_BYTES = 8 * 2**20  # a few MB of rendered rows: far more than any prompt can use


class SqlError(ValueError, RecaiError):
    """A query was refused (not a single read-only SELECT over the catalog) or failed in DuckDB."""


# The functions a catalog query may call, by the DuckDB name a user writes, each with a call that runs on
# any catalog (the allow-list test runs every one). Anything else (getenv, read_text, read_csv, glob,
# current_setting, query, query_table, version, pragma_* and duckdb_* functions, any extension function) is
# refused: an allow-list fails closed on what we did not foresee.
FUNCTION_EXAMPLES: dict[str, str] = {
    # aggregates
    "count": "count(*)",
    "sum": "sum(1)",
    "avg": "avg(1)",
    "min": "min(1)",
    "max": "max(1)",
    "median": "median(1)",
    "stddev": "stddev(1)",
    "stddev_samp": "stddev_samp(1)",
    "stddev_pop": "stddev_pop(1)",
    "variance": "variance(1)",
    "var_samp": "var_samp(1)",
    "var_pop": "var_pop(1)",
    "quantile": "quantile(1, 0.5)",
    "quantile_cont": "quantile_cont(1, 0.5)",
    "quantile_disc": "quantile_disc(1, 0.5)",
    "mode": "mode(1)",
    "any_value": "any_value(1)",
    "first": "first(1)",
    "last": "last(1)",
    "arg_min": "arg_min('a', 1)",
    "arg_max": "arg_max('a', 1)",
    "array_agg": "array_agg(1)",
    "list": "list(1)",
    "string_agg": "string_agg('a', ',')",
    "group_concat": "group_concat('a', ',')",
    "listagg": "listagg('a', ',')",
    "bool_and": "bool_and(true)",
    "bool_or": "bool_or(true)",
    # window functions
    "row_number": "row_number() OVER ()",
    "rank": "rank() OVER ()",
    "dense_rank": "dense_rank() OVER ()",
    # text
    "lower": "lower('A')",
    "upper": "upper('a')",
    "length": "length('abc')",
    "trim": "trim(' a ')",
    "ltrim": "ltrim(' a')",
    "rtrim": "rtrim('a ')",
    "substring": "substring('abc', 1, 2)",
    "substr": "substr('abc', 1, 2)",
    "concat": "concat('a', 'b')",
    "concat_ws": "concat_ws('-', 'a', 'b')",
    "replace": "replace('abc', 'b', 'x')",
    "left": "left('abc', 2)",
    "right": "right('abc', 2)",
    "strpos": "strpos('abc', 'b')",
    "instr": "instr('abc', 'b')",
    "position": "position('b' IN 'abc')",
    "starts_with": "starts_with('abc', 'a')",
    "ends_with": "ends_with('abc', 'c')",
    "prefix": "prefix('abc', 'a')",
    "suffix": "suffix('abc', 'c')",
    "contains": "contains('abc', 'b')",
    "lpad": "lpad('ab', 4, 'x')",
    "rpad": "rpad('ab', 4, 'x')",
    "string_split": "string_split('a,b', ',')",
    "str_split": "str_split('a,b', ',')",
    "reverse": "reverse('abc')",
    "strip_accents": "strip_accents('Amélie')",
    "regexp_matches": "regexp_matches('abc', 'b')",
    "regexp_extract": "regexp_extract('abc', 'b')",
    "regexp_replace": "regexp_replace('abc', 'b', 'x')",
    "regexp_full_match": "regexp_full_match('abc', 'a.c')",
    # numbers
    "abs": "abs(-1)",
    "round": "round(1.25, 1)",
    "floor": "floor(1.5)",
    "ceil": "ceil(1.5)",
    "ceiling": "ceiling(1.5)",
    "sqrt": "sqrt(4)",
    "power": "power(2, 3)",
    "pow": "pow(2, 3)",
    "exp": "exp(1)",
    "ln": "ln(2)",
    "log": "log(100)",
    "log10": "log10(100)",
    "log2": "log2(8)",
    "sign": "sign(-2)",
    "greatest": "greatest(1, 2)",
    "least": "least(1, 2)",
    # conditions and types
    "coalesce": "coalesce(NULL, 1)",
    "ifnull": "ifnull(NULL, 1)",
    "nullif": "nullif(1, 2)",
    "if": "if(true, 1, 2)",
    "cast": "CAST(1 AS VARCHAR)",
    "try_cast": "TRY_CAST('1' AS INTEGER)",
    # dates
    "year": "year(DATE '2020-03-01')",
    "month": "month(DATE '2020-03-01')",
    "day": "day(DATE '2020-03-01')",
    "extract": "extract(year FROM DATE '2020-03-01')",
    "date_part": "date_part('year', DATE '2020-03-01')",
    "date_trunc": "date_trunc('month', DATE '2020-03-01')",
    "datediff": "datediff('day', DATE '2020-01-01', DATE '2020-03-01')",
    "date_diff": "date_diff('day', DATE '2020-01-01', DATE '2020-03-01')",
    "strftime": "strftime(DATE '2020-03-01', '%Y')",
    "make_date": "make_date(2020, 3, 1)",
    "current_date": "current_date",
    "today": "today()",
    # lists
    "list_contains": "list_contains(['a'], 'a')",
    "array_contains": "array_contains(['a'], 'a')",
    "list_has": "list_has(['a'], 'a')",
    "array_has": "array_has(['a'], 'a')",
    "list_has_any": "list_has_any(['a'], ['a', 'b'])",
    "array_has_any": "array_has_any(['a'], ['a', 'b'])",
    "list_has_all": "list_has_all(['a', 'b'], ['a'])",
    "array_has_all": "array_has_all(['a', 'b'], ['a'])",
    "len": "len([1, 2])",
    "array_length": "array_length([1, 2])",
    "list_filter": "list_filter([1, 2], lambda x: x > 1)",
    "array_filter": "array_filter([1, 2], lambda x: x > 1)",
    "list_transform": "list_transform([1, 2], lambda x: x + 1)",
    "list_apply": "list_apply([1, 2], lambda x: x + 1)",
    "list_sort": "list_sort([2, 1])",
    "array_sort": "array_sort([2, 1])",
    "list_slice": "list_slice([1, 2, 3], 1, 2)",
    "array_slice": "array_slice([1, 2, 3], 1, 2)",
    "list_distinct": "list_distinct([1, 1])",
    "array_distinct": "array_distinct([1, 1])",
    "list_unique": "list_unique([1, 1])",
    "array_unique": "array_unique([1, 1])",
    "list_extract": "list_extract([1, 2], 1)",
    "array_to_string": "array_to_string(['a', 'b'], ',')",
    "list_aggregate": "list_aggregate([1, 2], 'sum')",
    "list_value": "list_value(1, 2)",
    "unnest": "unnest([1, 2])",
    "struct_pack": "struct_pack(a := 1)",
}
ALLOWED_FUNCTIONS = frozenset(FUNCTION_EXAMPLES)

# Names DuckDB's parser writes for syntax rather than for a call: [1, 2], {'a': 1}, (1, 2), list
# comprehensions, EXTRACT, SIMILAR TO, AT TIME ZONE, INTERVAL n DAY (YEAR...), LIKE ... ESCAPE,
# count(*), s.field.
_SYNTAX_FUNCTIONS = frozenset(
    {
        "list_value",
        "struct_pack",
        "row",
        "list_apply",
        "list_filter",
        "struct_extract",
        "date_part",
        "regexp_full_match",
        "timezone",
        "to_years",
        "to_months",
        "to_weeks",
        "to_days",
        "to_hours",
        "to_minutes",
        "to_seconds",
        "trunc",
        "count_star",
        "like_escape",
        "unnest",
    }
)
_ALLOWED_NAMES = ALLOWED_FUNCTIONS | _SYNTAX_FUNCTIONS

# Operators, as DuckDB's parse tree names them.
_DUCKDB_OPERATORS = frozenset(
    {"+", "-", "*", "/", "//", "%", "**", "^", "||", "~~", "!~~", "~~*", "!~~*", "~~~", "!~~~", "^@",
     "&", "|", "<<", ">>", "~", "@", "&&", "@>", "<@", "->>", "like_escape"}
)  # fmt: skip

# sqlglot nodes that are never part of a read-only query over the catalog.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "Command",
        "Pragma",
        "Set",
        "Copy",
        "Attach",
        "Detach",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Into",
        "LoadData",
        "Install",
        "Export",
        "Describe",
        "Summarize",
        "Show",
        "Pivot",
        "Unpivot",
        "Placeholder",
    )
    if hasattr(exp, name)
)
_SQLGLOT_OPERATORS = (exp.Binary, exp.Connector, exp.Unary, exp.Predicate)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(name: str) -> str:
    """A name as DuckDB compares it: case-insensitive in ASCII only. Python's ``lower()`` would also fold
    the Kelvin sign into ``k``, so a CTE named ``duc\u212adb_tables`` would seem to hide the real
    ``duckdb_tables`` that DuckDB still resolves."""
    return name.translate(_ASCII_LOWER)


def _allowed_classes() -> frozenset[type[exp.Expression]]:
    """The sqlglot classes the allow-list's own examples parse into: for calls sqlglot builds from special
    syntax (CAST, EXTRACT, TRIM(... FROM ...), current_date), where it keeps no written name."""
    classes: set[type[exp.Expression]] = set()
    for example in FUNCTION_EXAMPLES.values():
        root = sqlglot.parse_one(f"SELECT {example}", read="duckdb").expressions[0]
        # the call itself, under any OVER (...) or IGNORE NULLS wrapper sqlglot puts around it
        node = next(n for n in root.walk() if isinstance(n, exp.Func))
        if not isinstance(node, exp.Anonymous):
            classes.add(type(node))
    return frozenset(classes)


_ALLOWED_CLASSES = _allowed_classes() | {exp.Unnest}  # unnest(...) in FROM parses into its own class


# ----------------------------------------------------------------------------------- gate 1: DuckDB split
def single_select(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    """The one SELECT statement in ``query``, as DuckDB's own parser splits and types it."""
    if not query or not query.strip():
        raise SqlError("empty query")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise SqlError(f"could not parse SQL: {_first_line(exc)}") from None
    except Exception as exc:  # anything DuckDB's binding raises is a refusal, not a crash
        raise SqlError(f"could not parse SQL: {type(exc).__name__}: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlError(f"exactly one statement is allowed, got {len(statements)}")
    try:
        kind = statements[0].type
    except ValueError:  # a statement type the Python enum does not know (UPDATE EXTENSIONS: "29")
        raise SqlError(
            "only SELECT queries are allowed, got a statement DuckDB's Python API cannot name"
        ) from None
    if kind != duckdb.StatementType.SELECT:
        raise SqlError(f"only SELECT queries are allowed, got {kind.name}")
    return statements[0]


# ------------------------------------------------------------------------------------ gate 2: sqlglot
def parse_sql(text: str) -> list[exp.Expression | None]:
    """sqlglot's DuckDB reading of ``text``; every failure (a syntax error, nesting too deep for Python's
    recursion limit, a sqlglot bug) is a :class:`SqlError`."""
    return _sqlglot(lambda: sqlglot.parse(text, read="duckdb"))


def parse_condition(condition: str) -> exp.Expression:
    """One boolean expression (a WHERE body): nothing that could add, reorder or reach other rows."""
    if not condition or not condition.strip():
        raise SqlError("not a single condition: empty")
    try:
        return _sqlglot(lambda: sqlglot.parse_one(condition, read="duckdb", into=exp.Condition))
    except SqlError as exc:
        raise SqlError(f"not a single condition: {str(exc).removeprefix('could not parse SQL: ')}") from None


def _sqlglot(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except RecursionError:
        raise SqlError("could not parse SQL: the query is nested too deeply") from None
    except sqlglot.errors.SqlglotError as exc:  # ParseError, TokenError (an unclosed quote)
        raise SqlError(f"could not parse SQL: {_first_line(exc)}") from None
    except Exception as exc:
        raise SqlError(f"could not parse SQL: {type(exc).__name__}: {_first_line(exc)}") from None


def render(tree: exp.Expression) -> str:
    """``tree`` as DuckDB SQL; a tree too deep to render is a :class:`SqlError`, not a RecursionError."""
    try:
        return tree.sql(dialect="duckdb")
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:
        raise SqlError(f"could not render SQL: {type(exc).__name__}: {_first_line(exc)}") from None


def check_read_only(query: str, *, tables: Sequence[str] = (TABLE,)) -> None:
    """Refuse anything but one SELECT that reads only ``tables`` and the CTEs visible where it reads them."""
    if not query or not query.strip():
        raise SqlError("empty query")
    # A trailing comment parses as an empty statement: it is not a second statement.
    statements = [s for s in parse_sql(query) if s is not None and type(s).__name__ != "Semicolon"]
    if len(statements) != 1:
        raise SqlError(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SqlError(f"only SELECT queries are allowed, got {tree.key.upper()}")
    try:
        for node in tree.walk():
            if isinstance(node, _FORBIDDEN_NODES):
                raise SqlError(f"{node.key.upper()} is not allowed in a read-only query")
            refused = _refused_function(node, query)
            if refused is not None:
                raise SqlError(f"function {refused}() is not allowed in catalog queries")
        _check_scopes(tree, tables)
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None


def _refused_function(node: exp.Expression, query: str) -> str | None:
    """The name (as written, where sqlglot kept it) of a call that is not on the allow-list, else None.
    Operators (AND, =, IN, NOT...) that sqlglot also models as functions are not calls, unless written as
    one (``regexp_matches(a, b)`` parses into the same class as ``a ~ b``)."""
    if not isinstance(node, exp.Func):
        return None
    name = node.name if isinstance(node, exp.Anonymous) else _written_name(node, query)
    if name is not None:
        return None if fold(name) in _ALLOWED_NAMES else name
    if isinstance(node, _SQLGLOT_OPERATORS) or type(node) in _ALLOWED_CLASSES:
        return None
    return node.sql_name()


def _written_name(node: exp.Expression, query: str) -> str | None:
    """The function name as it appears in ``query``: sqlglot records where it read it (``lpad`` parses
    into PAD, ``version`` into CURRENT_VERSION, ``date_trunc`` into TIMESTAMP_TRUNC)."""
    start, end = node.meta.get("start"), node.meta.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return None
    text = query[start : end + 1]
    return text if _IDENTIFIER.fullmatch(text) else None


def _check_scopes(tree: exp.Expression, tables: Sequence[str]) -> None:
    """Resolve every table reference in its own scope, as DuckDB does: the CTEs of a WITH are visible in
    the query that carries it and everything nested in it; a CTE's body sees the enclosing scopes and the
    *earlier* siblings, never itself or later ones (it would read the real table of that name instead)."""
    allowed = {fold(t) for t in tables}
    stack: list[tuple[exp.Expression, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, visible = stack.pop()
        if isinstance(node, (exp.With, exp.CTE)):
            raise SqlError("WITH is only allowed at the start of a query or subquery")
        if isinstance(node, exp.Table):
            _check_table(node, allowed | visible, tables)
        children = list(node.iter_expressions())
        withs = [c for c in children if isinstance(c, exp.With)]
        if len(withs) > 1:
            raise SqlError("one WITH per query")
        if withs:
            with_ = withs[0]
            if with_.args.get("recursive"):
                raise SqlError("WITH RECURSIVE is not allowed in catalog queries")
            outer = visible
            for cte in with_.expressions:
                if not isinstance(cte, exp.CTE):
                    raise SqlError(f"unexpected {cte.key.upper()} in WITH")
                # the body (and anything else the CTE holds) sees the enclosing scopes + earlier siblings
                stack.extend(
                    (c, visible) for c in cte.iter_expressions() if not isinstance(c, exp.TableAlias)
                )
                visible = visible | {fold(cte.alias_or_name)}
            stack.extend((c, outer) for c in with_.iter_expressions() if not isinstance(c, exp.CTE))
        stack.extend((c, visible) for c in children if not isinstance(c, exp.With))


def _check_table(table: exp.Table, allowed: set[str] | frozenset[str], tables: Sequence[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise SqlError(f"table functions are not allowed: {_short_sql(table)}")
    if table.db or table.catalog:
        raise SqlError(f"only the table(s) {sorted(tables)} can be read, not {_short_sql(table)}")
    if fold(table.name) not in allowed:
        raise SqlError(f"unknown table '{table.name}': only {sorted(tables)} can be read")


# ------------------------------------------------------------------------------ gate 3: DuckDB's tree
_EXPRESSION_CLASSES = frozenset(
    {"CASE", "CAST", "COLUMN_REF", "COMPARISON", "CONJUNCTION", "CONSTANT", "FUNCTION", "OPERATOR", "STAR",
     "SUBQUERY", "WINDOW", "COLLATE", "LAMBDA", "LAMBDA_REF", "POSITIONAL_REFERENCE", "BETWEEN", "TYPE"}
)  # fmt: skip
_TABLE_REFS = frozenset(
    {"INVALID", "BASE_TABLE", "SUBQUERY", "JOIN", "TABLE_FUNCTION", "EXPRESSION_LIST", "CTE", "EMPTY",
     "EMPTY_FROM", "PIVOT", "SHOW_REF", "COLUMN_DATA", "DELIM_GET", "BOUND_TABLE_REF"}
)  # fmt: skip
_ALLOWED_TABLE_REFS = frozenset(
    {"BASE_TABLE", "SUBQUERY", "JOIN", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY"}
)
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE"})


def check_duckdb_tree(
    con: duckdb.DuckDBPyConnection, query: str, *, tables: Sequence[str] = (TABLE,)
) -> None:
    """Apply the function and scope rules to DuckDB's own parse of ``query`` (``json_serialize_sql``), so a
    query that sqlglot reads differently from DuckDB is judged by what DuckDB will run. Unknown node kinds
    are refused: this gate fails closed when DuckDB's tree format changes."""
    try:
        text = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()[0]
        doc = json.loads(text)
    except RecursionError:
        raise SqlError("the query is nested too deeply") from None
    except Exception as exc:
        raise SqlError(f"DuckDB could not serialise the query: {_first_line(exc)}") from None
    if not isinstance(doc, dict) or doc.get("error") or not isinstance(doc.get("statements"), list):
        message = doc.get("error_message") if isinstance(doc, dict) else None
        raise SqlError(f"DuckDB could not serialise the query: {message or 'unexpected output'}")
    if len(doc["statements"]) != 1:
        raise SqlError(f"exactly one statement is allowed, got {len(doc['statements'])}")
    allowed = {fold(t) for t in tables}
    stack: list[tuple[Any, frozenset[str]]] = [(doc["statements"][0], frozenset())]
    while stack:
        obj, visible = stack.pop()
        if isinstance(obj, list):
            stack.extend((v, visible) for v in obj)
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type") if isinstance(obj.get("type"), str) else None
        cls = obj.get("class") if isinstance(obj.get("class"), str) else None
        if cls is not None:
            _check_duckdb_expression(obj, cls)
        elif kind is not None and kind.endswith("_NODE") and kind not in _QUERY_NODES:
            raise SqlError(
                f"{kind.removesuffix('_NODE').replace('_', ' ')} is not allowed in catalog queries"
            )
        elif kind in _TABLE_REFS:
            _check_duckdb_table(obj, kind, allowed | visible, tables)
        if "cte_map" in obj:
            entries = obj["cte_map"].get("map") if isinstance(obj["cte_map"], dict) else None
            if not isinstance(entries, list):
                raise SqlError("DuckDB's parse tree has an unexpected WITH: refused")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                    raise SqlError("DuckDB's parse tree has an unexpected WITH: refused")
                stack.append((entry.get("value"), visible))  # the body: enclosing scopes + earlier siblings
                visible = visible | {fold(entry["key"])}
        stack.extend((v, visible) for k, v in obj.items() if k != "cte_map")


def _check_duckdb_expression(obj: dict[str, Any], cls: str) -> None:
    if cls not in _EXPRESSION_CLASSES:
        raise SqlError(f"{cls.replace('_', ' ').lower()} expressions are not allowed in catalog queries")
    if cls in ("FUNCTION", "WINDOW"):
        name = fold(str(obj.get("function_name", "")))
        if name in _ALLOWED_NAMES or (obj.get("is_operator") and name in _DUCKDB_OPERATORS):
            return
        raise SqlError(f"function {name}() is not allowed in catalog queries")


def _check_duckdb_table(obj: dict[str, Any], kind: str, allowed: set[str], tables: Sequence[str]) -> None:
    if kind not in _ALLOWED_TABLE_REFS:
        raise SqlError(f"{kind.replace('_', ' ').lower()} is not allowed in catalog queries")
    if kind == "TABLE_FUNCTION":
        function = obj.get("function")
        name = function.get("function_name") if isinstance(function, dict) else None
        if name != "unnest":
            raise SqlError(f"table functions are not allowed: {name}()")
    elif kind == "BASE_TABLE":
        name = str(obj.get("table_name", ""))
        path = (
            obj.get("qualified_name", {}).get("path", [name])
            if isinstance(obj.get("qualified_name"), dict)
            else [name]
        )
        if obj.get("schema_name") or obj.get("catalog_name") or len(path) > 1:
            raise SqlError(f"only the table(s) {sorted(tables)} can be read, not {'.'.join(map(str, path))}")
        if fold(name) not in allowed:
            raise SqlError(f"unknown table '{name}': only {sorted(tables)} can be read")


# -------------------------------------------------------------------------------- the connection
def harden(
    con: duckdb.DuckDBPyConnection,
    *,
    memory_limit: str = "2GB",
    spill_dir: Path | None = None,
    spill_limit: str | None = None,
) -> None:
    """Leave a query that got past the guard nothing to read or write, then lock the configuration.

    - No file, network or extension access (``enable_external_access``, no autoloading, no Python
      replacement scans that would read a DataFrame variable by its name).
    - No spill files unless ``spill_dir`` is given; then they go there, bounded by ``spill_limit``. DuckDB's
      default, ``./.tmp`` in the working directory, is never used.
    - Directory settings that name nothing, so ``pg_settings``, or the error of a function that would
      read a directory, shows neither the home folder nor the working directory.
    - An empty stand-in for every system view an unqualified name resolves to (``pg_settings``,
      ``sqlite_master``, ``duckdb_tables``...), so even a scope bug in the guard reads nothing. Qualified
      names (``system.main.duckdb_tables``) remain reachable here: the guard refuses every qualified name.
    """
    database = con.execute("SELECT current_database()").fetchone()[0]
    views = con.execute(
        "SELECT DISTINCT view_name FROM duckdb_views() "
        "WHERE internal AND schema_name IN ('main', 'pg_catalog')"  # what an unqualified name can reach
    ).fetchall()
    for (name,) in views:
        target = f"{_quote(database)}.main.{_quote(name)}"
        con.execute(f"CREATE VIEW IF NOT EXISTS {target} AS SELECT NULL AS hidden WHERE false")
    con.execute("SELECT json_serialize_sql('SELECT 1')")  # gate 3 needs it: fail here, not on every query
    spill = str(spill_dir) if spill_dir is not None and spill_limit else ""
    for setting, value in (
        ("temp_directory", spill),
        ("max_temp_directory_size", spill_limit if spill else "0B"),
        ("home_directory", _NOWHERE),  # else DuckDB derives paths under $HOME, and names them in errors
        ("extension_directory", _NOWHERE),
        ("secret_directory", ""),
        ("memory_limit", memory_limit),
        ("autoinstall_known_extensions", False),
        ("autoload_known_extensions", False),
        ("allow_community_extensions", False),
        ("python_enable_replacements", False),
        ("enable_external_access", False),
        ("lock_configuration", True),
    ):
        literal = str(value).lower() if isinstance(value, bool) else "'" + str(value).replace("'", "''") + "'"
        con.execute(f"SET {setting} = {literal}")


_NOWHERE = "/nonexistent"


def spill_folder(home: Path) -> Path:
    """A private spill folder for one catalog connection under ``home`` (``$RECAI_HOME``): its parent is
    made here, the folder itself by DuckDB on the first spill (and removed with its files on close)."""
    parent = home / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return parent / f"sql-{secrets.token_hex(6)}"


def run_capped(
    con: duckdb.DuckDBPyConnection,
    lock: threading.Lock,
    statement: Any,
    *,
    max_rows: int,
    max_bytes: int | None,
    timeout_s: float,
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """At most ``max_rows + 1`` rows of ``statement`` and its column names, interrupted after ``timeout_s``.

    With ``max_bytes``, the rows are first measured inside DuckDB (each row rendered as text) and the query
    fails there when they exceed it, so a giant value (a string_agg over a cross join, a doubled string) is
    never copied into Python.
    """
    with lock:
        cursor = con.cursor()
    try:
        if max_bytes is not None:
            statement = single_select(cursor, _capped_query(statement.query, max_rows, max_bytes))
        timer = threading.Timer(timeout_s, cursor.interrupt)
        timer.start()
        try:
            cursor.execute(statement)
            rows = cursor.fetchmany(max_rows + 1)
            columns = [d[0] for d in cursor.description or []]
        except duckdb.InterruptException:
            raise SqlError(f"query interrupted after {timeout_s:g} s") from None
        except duckdb.Error as exc:
            message = _first_line(exc)
            if _CAP_MARK in message:
                message = f"the result is larger than {max_bytes:,} bytes; select fewer rows or columns"
            raise SqlError(message) from None
        except Exception as exc:  # a value Python cannot hold, a bug: still one failed query, not a crash
            raise SqlError(f"query failed: {type(exc).__name__}: {_first_line(exc)}") from None
        finally:
            timer.cancel()
    finally:
        cursor.close()
    return rows, columns


_CAP_MARK = "recai: result too large"


def _capped_query(query: str, max_rows: int, max_bytes: int) -> str:
    """``query`` wrapped so DuckDB itself refuses a result over ``max_bytes`` (and stops at max_rows + 1).

    The text is DuckDB's own statement (gate 1), less trailing semicolons; it is re-checked by gate 1 after
    wrapping. The row alias is random so a column of the user's cannot stand in for the row.
    """
    body = _strip_trailing_semicolons(query)
    rows, row = f"_recai_rows_{secrets.token_hex(6)}", f"_recai_row_{secrets.token_hex(6)}"
    return (
        f"WITH {rows} AS MATERIALIZED (SELECT * FROM (\n{body}\n) LIMIT {int(max_rows) + 1})\n"
        f"SELECT * FROM {rows} WHERE CASE WHEN (SELECT coalesce(sum(strlen(CAST({row} AS VARCHAR))), 0) "
        f"FROM {rows} AS {row}) > {int(max_bytes)} THEN error('{_CAP_MARK}') ELSE true END"
    )


def _strip_trailing_semicolons(query: str) -> str:
    """``query`` without the semicolons (and comments around them) after its last token."""
    data = query.encode("utf-8")  # DuckDB's token positions are byte offsets
    end = len(data)
    for position, kind in reversed(duckdb.tokenize(query)):
        if kind == duckdb.token_type.comment:
            continue
        if kind == duckdb.token_type.operator and data[position : position + 1] == b";":
            end = position
            continue
        break
    return data[:end].decode("utf-8")


# ------------------------------------------------------------------------------------------ helpers
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _short_sql(node: exp.Expression) -> str:
    try:
        return node.sql(dialect="duckdb")[:200]
    except RecursionError:
        return node.key.upper()
