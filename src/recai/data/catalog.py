"""The item table: one DuckDB table plus the roles of its columns.

The catalog is what keeps an LLM honest: every item a recai component recommends is a row here, every
title an LLM writes is grounded here, and every SQL condition a planner writes runs here, read-only.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from recai.data.errors import DataError, first_flagged
from recai.data.grounding import DEFAULT_THRESHOLD, Grounding, TitleMatcher
from recai.data.home import data_home
from recai.data.schema import CatalogSchema, ColumnRole
from recai.data.sql_guard import (
    ALLOWED_FUNCTIONS,
    DEFAULT_MAX_BYTES,
    TABLE,
    SqlError,
    check_duckdb_tree,
    check_read_only,
    harden,
    parse_condition,
    render,
    run_capped,
    single_select,
    spill_folder,
)

# The guard lives in recai.data.sql_guard; these names stay importable from here.
__all__ = ["ALLOWED_FUNCTIONS", "TABLE", "Catalog", "SqlError", "SqlResult", "check_read_only"]


@dataclass(frozen=True)
class SqlResult:
    """Rows of a catalog query, and whether they were cut, so a caller can say "the first N rows".

    Attributes:
        frame: The rows.
        truncated: True when the query returned more than ``max_rows`` (or ``sql_max_bytes``) allowed.
    """

    frame: pd.DataFrame
    truncated: bool


# Catalog.index is served by recai.embed, a higher layer: recai.embed.catalog_index registers its builder here
# on import
_index_provider: Callable[..., Any] | None = None


def set_index_provider(provider: Callable[..., Any]) -> None:
    """Let ``provider(catalog, encoder, **kwargs)`` answer :meth:`Catalog.index` (recai.embed calls this)."""
    global _index_provider
    _index_provider = provider


class Catalog:
    """An item table with column roles, title grounding, text rendering and a read-only SQL surface.

    Rows have a dense, stable position (0..n-1, the order of the table as loaded) that recommenders use
    as the item index; :meth:`index_of` and :attr:`ids` convert between ids and positions.

    Args:
        items: The item table.
        schema: The column roles (default: inferred from ``items``).
        source: The file the table came from, named in errors.
        grounding_threshold: The lowest fuzzy score at which a free-text title resolves to an item.
        sql_memory_limit: DuckDB's memory limit for catalog queries.
        sql_max_bytes: The most rendered bytes one query returns (then it is truncated); None: no limit.
        sql_spill_limit: Disk a query may spill to (a bounded folder under ``$RECAI_HOME``); None: none.
    """

    def __init__(
        self,
        items: pd.DataFrame,
        schema: CatalogSchema | None = None,
        *,
        source: str | Path | None = None,
        grounding_threshold: float = DEFAULT_THRESHOLD,
        sql_memory_limit: str = "2GB",
        sql_max_bytes: int | None = DEFAULT_MAX_BYTES,
        sql_spill_limit: str | None = None,
    ) -> None:
        if schema is None:
            schema, _ = CatalogSchema.infer(items)
        schema.validate_frame(items, source=source)
        self.schema = schema
        self.source = str(source) if source is not None else None
        self.grounding_threshold = grounding_threshold
        self._items = _normalise_columns(items[schema.kept_columns].reset_index(drop=True), schema, source)
        self._ids = pd.Index(self._items[schema.id_column])
        self._interaction_counts: np.ndarray | None = None
        # columns derived from an interaction log (popularity, trending), built into the SQL table lazily
        self._log_source: Any = None
        self._log_columns: list[LogColumn] | None = None
        self._lock = threading.Lock()
        self._con = duckdb.connect(":memory:")
        self._con.register("_recai_source", self._items)
        self._con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM _recai_source")
        self._con.unregister("_recai_source")
        # No file, network or extension access, no system views, no spill files in the working directory
        # (a bounded folder under $RECAI_HOME only with sql_spill_limit), and nobody may switch it back on.
        self.sql_max_bytes = sql_max_bytes
        harden(
            self._con,
            memory_limit=sql_memory_limit,
            spill_dir=spill_folder(data_home()) if sql_spill_limit else None,
            spill_limit=sql_spill_limit,
        )

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} items, columns={list(self._items.columns)})"

    @property
    def items(self) -> pd.DataFrame:
        """The item table (row position = item index). Treat it as read-only."""
        return self._items

    @property
    def ids(self) -> pd.Index:
        """Item ids in row order."""
        return self._ids

    @property
    def id_column(self) -> str:
        return self.schema.id_column

    @property
    def title_column(self) -> str:
        return self.schema.title_column

    @property
    def titles(self) -> list[str]:
        return self._items[self.title_column].astype(str).tolist()

    def _coerce_ids(self, ids: Iterable[Any]) -> list[Any]:
        values = list(ids)
        if pd.api.types.is_integer_dtype(self._ids.dtype):
            out = []
            for v in values:
                try:
                    out.append(int(v))
                except (TypeError, ValueError):
                    out.append(v)
            return out
        return [str(v) for v in values]

    def index_of(self, ids: Iterable[Any], *, missing: str = "raise") -> np.ndarray:
        """Row positions of ``ids``; ``missing='raise'`` names unknown ids, ``'drop'`` skips them,
        ``'mark'`` returns -1 for them."""
        values = self._coerce_ids(ids)
        pos = self._ids.get_indexer(values) if values else np.empty(0, dtype=np.int64)
        if (pos < 0).any():
            if missing == "raise":
                unknown = [v for v, p in zip(values, pos, strict=True) if p < 0][:5]
                raise KeyError(f"unknown item id(s) {unknown} (catalog ids look like {list(self._ids[:3])})")
            if missing == "drop":
                pos = pos[pos >= 0]
            elif missing != "mark":
                raise ValueError("missing must be 'raise', 'drop' or 'mark'")
        return np.asarray(pos, dtype=np.int64)

    def __contains__(self, item_id: Any) -> bool:
        return bool(self.index_of([item_id], missing="mark")[0] >= 0)

    def row(self, item_id: Any) -> dict[str, Any]:
        """All attributes of one item."""
        return self._items.iloc[int(self.index_of([item_id])[0])].to_dict()

    def title_of(self, item_id: Any) -> str:
        return self.display_title(int(self.index_of([item_id])[0]))

    @cached_property
    def _year_column(self) -> str | None:
        for name in ("year", "release_year"):
            if name in self._items and self.schema.column(name).role is ColumnRole.NUMERIC:
                return name
        return None

    def display_title(self, position: int) -> str:
        """Title with the year when the catalog has one and the title does not already show it."""
        title = str(self._items.iat[position, self._items.columns.get_loc(self.title_column)])
        if self._year_column is None:
            return title
        year = self._items.iat[position, self._items.columns.get_loc(self._year_column)]
        if pd.isna(year) or f"({int(year)})" in title:
            return title
        return f"{title} ({int(year)})"

    def popularity(self) -> np.ndarray | None:
        """Popularity in row order: the schema's popularity column, else interaction counts attached by
        the dataset (:meth:`attach_interaction_counts`), else None."""
        col = self.schema.popularity_column
        if col is not None:
            return self._items[col].astype(float).fillna(0.0).to_numpy()
        return self._interaction_counts

    def attach_interaction_counts(self, counts: np.ndarray) -> None:
        """Let the log's popularity break ties between equally good title matches (remakes)."""
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (len(self),):
            raise ValueError(f"expected {len(self)} counts, got shape {counts.shape}")
        self._interaction_counts = counts
        self.__dict__.pop("_matcher", None)

    def attach_log(self, interactions: Any) -> None:
        """Make the log's popularity queryable: SQL and the schema card get a ``popularity`` column
        (distinct users per item) and, for a log with timestamps, ``trending`` (the same, weighted by
        recency). Computed on first use; a later log (after filtering) replaces the earlier one."""
        with self._lock:  # the table is rebuilt on its next use (log_columns), not for every new Dataset
            self._log_source = interactions
            self._log_columns = None

    def log_columns(self) -> list[LogColumn]:
        """The columns the attached log adds to the SQL table (empty without a log)."""
        if self._log_columns is None:
            with self._lock:
                if self._log_columns is None:
                    built = (
                        _log_columns(self._log_source, set(self._items.columns)) if self._log_source else []
                    )
                    self._rebuild_table(built)
                    self._log_columns = built
        return self._log_columns

    def _rebuild_table(self, extra: list[LogColumn]) -> None:
        """(Re)create the SQL table from the items plus ``extra`` columns (callers hold the lock)."""
        frame = self._items
        if extra:
            frame = frame.assign(**{c.name: c.values for c in extra})
        self._con.register("_recai_source", frame)
        try:
            self._con.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM _recai_source")
        finally:
            self._con.unregister("_recai_source")

    # -------------------------------------------------------------- rendering
    def render(
        self,
        item: Any,
        *,
        columns: Sequence[str] | None = None,
        max_chars: int = 512,
        by_position: bool = False,
        max_list: int | None = None,
    ) -> str:
        """One item as text for prompts and embedders, cut to ``max_chars`` at a word boundary.

        Short facts come first and long text last, so truncation removes synopsis words, not facts.
        ``max_list`` keeps only the first values of list columns (the main cast, not all of it), so a
        short budget still reaches every column.
        """
        pos = int(item) if by_position else int(self.index_of([item])[0])
        return self._render_row(pos, self._render_plan(columns), max_chars, max_list)

    def texts(self, *, columns: Sequence[str] | None = None, max_chars: int = 512) -> list[str]:
        """Rendered text of every item, in row order."""
        plan = self._render_plan(columns)
        return [self._render_row(i, plan, max_chars) for i in range(len(self))]

    def _render_plan(self, columns: Sequence[str] | None) -> list[tuple[str, ColumnRole]]:
        names = list(columns) if columns is not None else self.schema.rendered_columns()
        plan = []
        for name in names:
            if name not in self._items:
                raise KeyError(
                    f"cannot render unknown column '{name}' (columns: {list(self._items.columns)})"
                )
            plan.append((name, self.schema.column(name).role))
        long_last = sorted(plan, key=lambda p: (p[1] is ColumnRole.TEXT,))
        return long_last

    def _render_row(
        self, pos: int, plan: list[tuple[str, ColumnRole]], max_chars: int, max_list: int | None = None
    ) -> str:
        parts: list[str] = []
        names = {name for name, _ in plan}
        for name, role in plan:
            value = self._items.iat[pos, self._items.columns.get_loc(name)]
            if role is ColumnRole.TITLE:
                parts.insert(0, self.display_title(pos) + ".")
                continue
            if role is ColumnRole.ID or (name == self._year_column and self.title_column in names):
                continue
            if max_list is not None and isinstance(value, (list, tuple, np.ndarray)):
                value = list(value)[:max_list]
            text = _format_value(value, role)
            if text:
                unit = self.schema.column(name).unit
                label = name.replace("_", " ").capitalize()
                parts.append(f"{label}: {text}{' ' + unit if unit else ''}".rstrip(".") + ".")
        out = " ".join(parts)
        return _cut(out, max_chars)

    # -------------------------------------------------------------- grounding
    @cached_property
    def _matcher(self) -> TitleMatcher:
        years = self._items[self._year_column].tolist() if self._year_column else None
        return TitleMatcher(
            [self.display_title(i) for i in range(len(self))],
            list(self._ids),
            years=years,
            popularity=self.popularity(),
            threshold=self.grounding_threshold,
        )

    def ground(self, title: str, *, k: int = 5, threshold: float | None = None) -> Grounding:
        """Map a free-text title to an item id, or to nothing with "did you mean" alternatives."""
        return self._matcher.ground(title, k=k, threshold=threshold)

    def ground_many(self, titles: Sequence[str], **kwargs: Any) -> list[Grounding]:
        return self._matcher.ground_many(titles, **kwargs)

    # ------------------------------------------------------------- vectors
    def index(self, encoder: Any = None, **kwargs: Any) -> Any:
        """The item VectorIndex for ``encoder`` (default: the default embedder), built once per catalog and
        cached on disk; see :func:`recai.embed.catalog_index.build_item_index` for the options.

        recai.embed answers this (data sits below embed and never imports it): importing
        :mod:`recai.embed.catalog_index` registers its ``item_index`` here, and the first call loads it if
        nothing has.
        """
        if _index_provider is None:
            # The default provider is loaded on first use, by name: data must not import embed (which
            # imports data), but a user who loads a dataset and asks for its index should not have to
            # know which package answers.
            importlib.import_module("recai.embed.catalog_index")
        if _index_provider is None:
            raise RuntimeError("recai.embed.catalog_index registered no item index provider (Catalog.index)")
        return _index_provider(self, encoder, **kwargs)

    # ------------------------------------------------------------ description
    def column_values(self, column: str) -> pd.Series:
        """Value counts of a categorical or multi-valued column (lists are exploded)."""
        role = self.schema.column(column).role
        values = self._items[column]
        if role is ColumnRole.MULTI_CATEGORICAL:
            values = values.explode()
        return values.dropna().astype(str).value_counts()

    def schema_card(self, *, max_values: int = 8) -> str:
        """A compact description of the table for LLM prompts: columns, roles, ranges, frequent values."""
        lines = [f"Table `{TABLE}` ({len(self)} rows). Columns:"]
        for spec in self.schema.columns:
            if spec.name not in self._items:
                continue
            s = self._items[spec.name]
            sql_type = "list of text" if spec.role is ColumnRole.MULTI_CATEGORICAL else _sql_type(s)
            desc = f" - {spec.description}" if spec.description else ""
            info = ""
            if spec.role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY, ColumnRole.DATE) and s.notna().any():
                lo, hi = s.min(), s.max()
                info = f"; range {_short(lo)} to {_short(hi)}"
            elif spec.role in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
                counts = self.column_values(spec.name)
                top = ", ".join(counts.index[:max_values])
                more = f", ... ({len(counts)} distinct)" if len(counts) > max_values else ""
                info = f"; values: {top}{more}"
                if spec.role is ColumnRole.MULTI_CATEGORICAL:
                    info += f"; test membership with list_contains({spec.name}, 'value')"
            unit = f", in {spec.unit}" if spec.unit else ""
            lines.append(f"- {spec.name} ({sql_type}, {spec.role.value}{desc}{unit}){info}")
        for column in self.log_columns():
            lines.append(f"- {column.name} ({column.sql_type}, from the log: {column.description})")
        return "\n".join(lines)

    def describe(self) -> dict[str, Any]:
        """Numbers for `recai data describe`."""
        return {
            "items": len(self),
            "columns": {c.name: c.role.value for c in self.schema.columns if c.name in self._items},
        }

    # -------------------------------------------------------------------- SQL
    def sql(
        self, query: str, *, max_rows: int = 1000, timeout_s: float = 10.0, max_bytes: int | None = None
    ) -> SqlResult:
        """Run one read-only SELECT over the ``items`` table; anything else is a :class:`SqlError`.

        Three readings must agree (see :mod:`recai.data.sql_guard`): DuckDB's parser sees exactly one
        SELECT (and that parsed statement, not the raw text, is what runs); sqlglot sees one SELECT that
        reads only ``items`` and the CTEs visible where it reads them, with no DDL, DML or table function
        and only allow-listed functions; DuckDB's own parse tree passes the same rules. The connection has
        no file, network or extension access and no system views. A query running past ``timeout_s`` is
        interrupted; a result over ``max_bytes`` (default: the catalog's ``sql_max_bytes``) is refused
        inside DuckDB, before it reaches Python.
        """
        cap = self.sql_max_bytes if max_bytes is None else max_bytes
        return self._run(query, max_rows=max_rows, timeout_s=timeout_s, max_bytes=cap)

    def _run(self, query: str, *, max_rows: int, timeout_s: float, max_bytes: int | None) -> SqlResult:
        self.log_columns()  # the log's columns exist before anything reads the table
        with self._lock:
            statement = single_select(self._con, query)
        check_read_only(statement.query)
        with self._lock:
            parser = self._con.cursor()
        try:
            check_duckdb_tree(parser, statement.query)
        finally:
            parser.close()
        rows, columns = run_capped(
            self._con,
            self._lock,
            statement,
            max_rows=max_rows,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
        )
        truncated = len(rows) > max_rows
        return SqlResult(pd.DataFrame(rows[:max_rows], columns=columns), truncated)

    def ids_where(self, condition: str, *, within: Iterable[Any] | None = None) -> list[Any]:
        """Ids of items satisfying a SQL boolean ``condition`` (a WHERE clause body), in catalog order.

        The condition must parse as one boolean expression: it cannot add rows (``UNION``), reorder
        them or reach other tables; ids it could not produce from the table are dropped regardless.
        """
        where = render(parse_condition(condition))
        query = f"SELECT {_quote(self.id_column)} FROM {TABLE} WHERE {where}"
        # Only the id column comes back, so the byte cap would only cut large catalogs short.
        result = self._run(query, max_rows=len(self) + 1, timeout_s=10.0, max_bytes=None)
        positions = np.unique(self.index_of(result.frame.iloc[:, 0].tolist(), missing="drop"))
        if within is not None:
            allowed = self.index_of(within, missing="drop")
            positions = positions[np.isin(positions, allowed)]
        return self._ids[positions].tolist()


@dataclass(frozen=True)
class LogColumn:
    """A column of the SQL table computed from the interaction log, with what it means for prompts.

    Attributes:
        name: The column's name in the table.
        values: One value per item, in catalog order.
        sql_type: Its DuckDB type.
        description: What it means, for prompts.
    """

    name: str
    values: np.ndarray
    sql_type: str
    description: str


def _log_columns(interactions: Any, taken: set[str]) -> list[LogColumn]:
    from recai.data.popularity import TRENDING_HALF_LIFE_DAYS, trending_counts, user_counts

    def free(*names: str) -> str:
        return next(n for n in names if n not in taken)

    counts = user_counts(interactions)
    out = [
        LogColumn(
            free("popularity", "log_popularity", "n_users"),
            counts,
            "integer",
            "users who chose it (higher: more popular)",
        )
    ]
    trending = trending_counts(interactions)
    if trending is not None:
        out.append(
            LogColumn(
                free("trending", "log_trending"),
                np.round(trending, 3),
                "number",
                f"popularity with recent interactions counting more (half-life {TRENDING_HALF_LIFE_DAYS:g} "
                "days)",
            )
        )
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_type(s: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(s):
        return "integer"
    if pd.api.types.is_float_dtype(s):
        return "number"
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "timestamp"
    return "text"


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value)


def _format_value(value: Any, role: ColumnRole) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value if v is not None and str(v) != "")
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer() and role is not ColumnRole.TEXT:
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value).strip()


def _cut(text: str, max_chars: int) -> str:
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head = text[: max_chars - 3]
    space = head.rfind(" ")
    if space > max_chars // 2:
        head = head[:space]
    return head.rstrip(" ,.;:") + "..."


def _normalise_columns(frame: pd.DataFrame, schema: CatalogSchema, source: str | Path | None) -> pd.DataFrame:
    """Give each column the dtype its role implies, naming the row and field of any bad value."""
    out = frame.copy()
    for spec in schema.columns:
        if spec.name not in out:
            continue
        s = out[spec.name]
        if spec.role is ColumnRole.MULTI_CATEGORICAL:
            out[spec.name] = _as_lists(s, spec.separator)
        elif spec.role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY):
            numeric = pd.to_numeric(s, errors="coerce")
            row = first_flagged(numeric.isna() & s.notna() & (s.astype(str).str.strip() != ""))
            if row is not None:
                raise DataError(f"not a number: {s.iloc[row]!r}", path=source, line=row + 2, field=spec.name)
            out[spec.name] = numeric
        elif spec.role is ColumnRole.DATE and not pd.api.types.is_datetime64_any_dtype(s):
            parsed = pd.to_datetime(s, errors="coerce", format="mixed")
            row = first_flagged(parsed.isna() & s.notna() & (s.astype(str).str.strip() != ""))
            if row is not None:
                raise DataError(f"not a date: {s.iloc[row]!r}", path=source, line=row + 2, field=spec.name)
            out[spec.name] = parsed
        elif spec.role in (ColumnRole.TITLE, ColumnRole.TEXT, ColumnRole.CATEGORICAL):
            out[spec.name] = s.astype("string").astype(object).where(s.notna(), None)
    return out


def _as_lists(s: pd.Series, separator: str | None) -> pd.Series:
    def convert(v: Any) -> list[str]:
        if isinstance(v, (list, tuple, np.ndarray)):
            return [str(x).strip() for x in v if x is not None and str(x).strip()]
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return []
        parts = str(v).split(separator) if separator else [str(v)]
        return [p.strip() for p in parts if p.strip()]

    return s.map(convert).astype(object)
