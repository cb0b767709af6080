"""SQL tools: an information query (a SELECT the planner writes) and a hard-condition filter (a WHERE
clause over the current candidates). The planner is an LLM, so its SQL is treated as hostile: both go
through the catalog's read-only guard (:mod:`recai.data.sql_guard`: DuckDB's and sqlglot's parsers, scoped
table resolution, a function allow-list, a hardened connection, a timeout, a row cap and a byte cap), and
every failure, a query nested too deeply for the parser included, is a ToolError: the step fails and the
planner replans. Filter values are grounded: a misspelt genre or director is corrected to an existing
value (and the correction reported) or refused with suggestions, never silently dropped. Titles in
either tool go through the agent's title resolver, so ``title = 'Heat'`` finds "Heat (1995)" and a title
the catalog lacks is reported as such, not answered with an empty result. A column the catalog does not
have is refused with the list of the columns it does have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rapidfuzz import fuzz, process
from sqlglot import exp

from recai.agent.bus import CandidateBus
from recai.agent.resolver import ground_title_literals
from recai.agent.tools.base import Tool, ToolError, ToolResult, arguments_schema
from recai.data.schema import ColumnRole
from recai.data.sql_guard import TABLE, SqlError, parse_condition, parse_sql, render

if TYPE_CHECKING:
    from recai.agent.context import AgentContext

MAX_IN_LIST = 5000  # beyond this many candidates an information query reads the whole table


class InfoQueryTool(Tool):
    """Answers a question about items with a SELECT the planner writes, over the current candidates when
    there are any, through the catalog's read-only SQL guard. Takes no constructor arguments.
    """

    name = "sql_query"
    description = "A SQL SELECT over `items` answering a question (on the candidates, if any)."
    parameters: ClassVar[dict[str, Any]] = arguments_schema({"sql": {"type": "string", "maxLength": 800}})

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        catalog = ctx.catalog
        tree = _one_statement(args["sql"], self.name)
        notes = repair_tree(tree, ctx, self.name)
        scope = "the whole catalog"
        ids = None
        if not bus.unrestricted and 0 < len(bus) <= MAX_IN_LIST:
            ids = catalog.ids[bus.candidates()].tolist()
            scope = f"the {len(bus)} current candidates"
        query = _scope_to(tree, catalog.id_column, ids)
        try:
            result = catalog.sql(
                query, max_rows=ctx.settings.sql_max_rows, timeout_s=ctx.settings.sql_timeout_s
            )
        except SqlError as exc:
            raise ToolError(f"sql_query refused or failed: {_explain(exc, catalog)}") from None
        frame = result.frame
        if frame.empty:
            lines = [f"The lookup over {scope} found nothing (0 rows)."]
        else:
            lines = [
                f"SQL result over {scope} ({len(frame)} row{'s' if len(frame) != 1 else ''}"
                f"{', more not shown' if result.truncated else ''}):"
            ]
        for row in frame.itertuples(index=False):
            lines.append("; ".join(f"{col}={_short(v)}" for col, v in zip(frame.columns, row, strict=True)))
        if notes:
            lines.append("(" + "; ".join(notes) + ")")
        facts = _cut_lines(lines, ctx.settings.facts_chars)
        return ToolResult(
            facts=facts,
            details={
                "sql": query,
                "rows": len(frame),
                "truncated": result.truncated,
                "titles": notes,
                # a one-row answer naming an item: the reply must name it too (see the agent)
                "answer": _short(frame.iloc[0][catalog.title_column])
                if len(frame) == 1 and catalog.title_column in frame.columns
                else None,
            },
        )


class FilterTool(Tool):
    """Keeps the candidates matching a hard condition (a SQL WHERE clause the planner writes), with
    misspelt values corrected or refused rather than silently dropped. Takes no constructor arguments.
    """

    name = "filter"
    facts_for_reply = False  # the request says what was asked; corrections are passed on anyway
    description = "Keep the candidates matching a SQL WHERE condition."
    parameters: ClassVar[dict[str, Any]] = arguments_schema({"where": {"type": "string", "maxLength": 600}})

    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        catalog = ctx.catalog
        condition, corrections = ground_condition(args["where"], ctx)
        within = None if bus.unrestricted else catalog.ids[bus.candidates()].tolist()
        try:
            ids = catalog.ids_where(condition, within=within)
        except SqlError as exc:
            raise ToolError(f"filter failed: {_explain(exc, catalog)}") from None
        before = len(bus)
        positions = catalog.index_of(ids)
        if not bus.unrestricted:  # keep the bus order (and scores) of what survives
            keep = set(positions.tolist())
            positions = np.array([p for p in bus.candidates() if p in keep], dtype=np.int64)
        bus.restrict(positions, step=step, tool=self.name)
        note = f"filter `{condition}` kept {len(bus)} of {before} items"
        if corrections:
            note += "; corrected " + ", ".join(corrections)
        return ToolResult(
            facts=note, details={"where": condition, "corrections": corrections, "kept": len(bus)}
        )


def _one_statement(query: str, tool: str) -> exp.Expression:
    try:  # every failure, a RecursionError on deep nesting included, is a failed step the planner can fix
        statements = [s for s in parse_sql(query) if s is not None and type(s).__name__ != "Semicolon"]
    except SqlError as exc:
        raise ToolError(f"{tool}: {exc}") from None
    if len(statements) != 1:
        raise ToolError(f"{tool}: exactly one statement is allowed, got {len(statements)}")
    return statements[0]


def _scope_to(tree: exp.Expression, id_column: str, ids: list[Any] | None) -> str:
    """The query, with every reference to `items` rewritten into a subquery over the given ids when
    there are any (still one SELECT)."""
    try:
        if ids is not None:
            literals = ", ".join(repr(i) if isinstance(i, str) else str(int(i)) for i in ids)
            scoped = parse_sql(f'(SELECT * FROM {TABLE} WHERE "{id_column}" IN ({literals}))')[0]
            if scoped is None:
                raise SqlError("could not scope the query to the candidates")
            for table in list(tree.find_all(exp.Table)):
                if table.name.lower() == TABLE:
                    alias = table.alias or TABLE
                    table.replace(
                        exp.Subquery(
                            this=scoped.this.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))
                        )
                    )
        return render(tree)
    except SqlError as exc:
        raise ToolError(f"sql_query: {exc}") from None


def _explain(error: SqlError, catalog: Any) -> str:
    """DuckDB's error, with the catalog's real columns when it was about a column that does not exist."""
    text = str(error)
    if "not found" in text.lower() and "column" in text.lower():
        columns = [*catalog.schema.kept_columns, *(c.name for c in catalog.log_columns())]
        text += f"; the table's columns are: {', '.join(columns)}"
    return text


def ground_condition(condition: str, ctx: AgentContext) -> tuple[str, list[str]]:
    """Fix what LLMs get wrong in filters over categorical and list columns.

    - `col = 'v'` / `col IN (...)` on a list column become `list_contains` / `list_has_any`;
    - every string compared with a categorical or list column is matched against the column's real
      values: a case difference is fixed silently, a near miss is corrected and reported, an unknown
      value raises ToolError with suggestions.
    """
    try:  # a RecursionError on deep nesting included: a failed step, never a failed turn
        tree = parse_condition(condition)
    except SqlError as exc:
        raise ToolError(
            f"filter: {str(exc).replace('not a single condition', 'not a single SQL condition')}"
        ) from None
    wrapped = exp.Paren(this=tree)  # a repair may replace the whole condition: give it a parent
    corrections = repair_tree(wrapped, ctx, "filter")
    try:
        return render(wrapped.this), corrections
    except SqlError as exc:
        raise ToolError(f"filter: {exc}") from None


def repair_tree(tree: exp.Expression, ctx: AgentContext, tool: str) -> list[str]:
    """The repairs of :func:`ground_condition`, in place on any parsed SQL (a whole SELECT of
    ``sql_query`` too: "WHERE genres = 'Horror'" fails the same way there). Returns the corrections."""
    catalog = ctx.catalog
    roles = {c.name: c.role for c in catalog.schema.columns}
    corrections: list[str] = []
    title = catalog.title_column
    for node in tree.find_all(exp.ArrayContains, exp.ArrayOverlaps):
        target = node.this
        if isinstance(target, exp.Column) and target.name.lower() == title.lower():
            raise ToolError(
                f"{tool}: {title} is the item's name, not a list: to find items like one the user names, "
                f"use similar_to with its title; to keep one item, use {title} = '...'"
            )
    corrections += ground_title_literals(tree, catalog, tool)
    numbers = {
        c.name for c in catalog.schema.columns if c.role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY)
    }
    numbers |= {c.name for c in catalog.log_columns()}
    for node in tree.find_all(exp.ArrayContains, exp.ArrayOverlaps):
        target = node.this
        if isinstance(target, exp.Column) and target.name in numbers:
            raise ToolError(
                f"{tool}: {target.name} is a number, not a list: compare it ({target.name} < 50, "
                f"{target.name} BETWEEN 10 AND 20)"
            )

    def column_of(node: exp.Expression) -> str | None:
        inner = node.this if isinstance(node, (exp.Lower, exp.Upper, exp.Paren, exp.Any)) else node
        if isinstance(inner, exp.Paren):
            inner = inner.this
        return inner.name if isinstance(inner, exp.Column) and inner.name in roles else None

    def fix(column: str, literal: exp.Literal) -> None:
        value = literal.this
        grounded, note = _ground_value(catalog, column, value, tool)
        if grounded != value:
            literal.set("this", grounded)
        if note:
            corrections.append(note)

    for node in list(tree.walk()):
        if isinstance(node, (exp.EQ, exp.NEQ, exp.In, exp.ArrayContains, exp.ArrayOverlaps)):
            left = node.this
            rights = node.expressions if isinstance(node, exp.In) else [node.expression]
            column = column_of(left)
            if column is None and isinstance(node, exp.EQ):  # 'v' = ANY(col)
                column, rights = column_of(node.expression), [node.this]
            if column is None or roles[column] not in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
                continue
            literals = [r for r in rights if isinstance(r, exp.Literal) and r.is_string]
            for r in rights:
                if isinstance(r, exp.Array):
                    literals += [x for x in r.expressions if isinstance(x, exp.Literal) and x.is_string]
            for lit in literals:
                fix(column, lit)
            if roles[column] is ColumnRole.MULTI_CATEGORICAL and isinstance(node, (exp.EQ, exp.In, exp.NEQ)):
                col = exp.column(column)
                if isinstance(node, exp.In):
                    replacement: exp.Expression = exp.ArrayOverlaps(
                        this=col, expression=exp.Array(expressions=literals)
                    )
                elif isinstance(node.this, exp.Literal):  # 'v' = ANY(col) is already list semantics
                    continue
                else:
                    replacement = exp.ArrayContains(
                        this=col, expression=literals[0] if literals else node.expression
                    )
                    if isinstance(node, exp.NEQ):
                        replacement = exp.Not(this=replacement)
                node.replace(replacement)
            elif roles[column] is ColumnRole.CATEGORICAL and isinstance(node, exp.ArrayContains) and literals:
                # list_contains on a one-value column (language, country): it means equality
                node.replace(exp.EQ(this=exp.column(column), expression=literals[0]))
            elif roles[column] is ColumnRole.CATEGORICAL and isinstance(node, exp.ArrayOverlaps) and literals:
                node.replace(exp.In(this=exp.column(column), expressions=literals))
    return corrections


def _ground_value(catalog: Any, column: str, value: str, tool: str = "filter") -> tuple[str, str | None]:
    values = catalog.column_values(column)
    known = list(values.index)
    lower = {v.lower(): v for v in known}
    if value in values.index:
        return value, None
    if value.lower() in lower:
        return lower[value.lower()], None
    match = process.extractOne(value, known, scorer=fuzz.WRatio, score_cutoff=88) if known else None
    if match is not None and fuzz.ratio(value.lower(), match[0].lower()) >= 80:
        return match[0], f"{column} '{value}' -> '{match[0]}'"
    title = catalog.ground(value, threshold=90)
    if title.resolved:  # "like Alien" written as a genre: the planner meant an item
        raise ToolError(
            f"{tool}: '{value}' is not a {column} value but an item in the catalog "
            f"({catalog.title_of(title.item_id)}): to find items like it, use similar_to with its title"
        )
    suggestions = [m[0] for m in process.extract(value, known, scorer=fuzz.WRatio, limit=3)]
    raise ToolError(
        f"{tool}: no {column} called '{value}' in the catalog; did you mean: {', '.join(suggestions)}?"
    )


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _cut_lines(lines: list[str], budget: int) -> str:
    out, used = [], 0
    for line in lines:
        if used + len(line) > budget and out:
            out.append(f"... ({len(lines) - len(out)} more lines)")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)
