"""Planner demonstrations derived from the catalog that is actually loaded.

A small planner copies its examples: shown film demos (director, runtime, country) on a catalog of
artists known only by name, it filters on columns that do not exist. So the demonstrations are built for
each catalog from its own schema and values:

- **Traits** of the catalog decide which plan shapes exist: a hard filter needs a list or categorical
  column (a decade needs a year column), a soft search needs item text beyond the title, a people filter
  needs a column of people, and popularity questions need the log. A shape whose columns the catalog
  lacks is simply absent.
- **Values** come from the catalog: frequent genres, a real decade, popular titles written the way people
  type them ("The Matrix" for "Matrix, The (1999)"), the item noun and its verb (watch, listen to, read).
- **Every demonstration is executed once** on the catalog and kept only if it works: a recommendation
  must leave items, a question must return rows. One that does not is dropped, never shown.
- The result is **cached** in the agent's cache folder for the dataset, keyed by the schema, the tools and
  this module's version, so it is rebuilt when any of them changes.

A user can add their own demonstrations (a JSON list of ``{"request": ..., "plan": ...}``); they are
checked against the plan schema and, like the derived ones, must name only columns the catalog has.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlglot import exp

from recai.agent.planner import Demonstration, nested_step
from recai.data.atomic import write_text_atomic
from recai.data.grounding import parse_title
from recai.data.schema import ColumnRole
from recai.data.sql_guard import SqlError, parse_condition, parse_sql

if TYPE_CHECKING:
    from recai.agent.agent import Agent
    from recai.data.catalog import Catalog

#: Bump when the shapes or their wording change: cached demonstrations are rebuilt.
DERIVATION_VERSION = 3

_YEAR_NAMES = ("year", "release_year", "publication_year", "original_publication_year", "year_published")
_PEOPLE = re.compile(
    r"director|actor|cast|star|author|writer|artist|creator|composer|performer|singer|band|brand|maker|"
    r"developer|publisher|studio|manufacturer",
    re.I,
)
_SHORTER = re.compile(r"runtime|duration|length|minutes|pages", re.I)
_CHEAPER = re.compile(r"price|cost", re.I)
#: What people do with the items, by noun (present tense and past participle).
_VERBS = {
    noun: verbs
    for nouns, verbs in (
        (("films", "movies", "shows", "videos", "anime"), ("watch", "watched")),
        (("books", "articles"), ("read", "read")),
        (("artists", "songs", "tracks", "albums", "podcasts"), ("listen to", "listened to")),
        (("games",), ("play", "played")),
        (("recipes",), ("cook", "cooked")),
        (("courses",), ("take", "taken")),
    )
    for noun in nouns
}
#: A mood, by noun, for the soft-search shape (the shape exists only when items have text to search).
_MOODS = {
    noun: mood
    for nouns, mood in (
        (("films", "movies"), ("dark and atmospheric", "dark, atmospheric")),
        (("books",), ("a gripping page-turner", "gripping, suspenseful")),
        (("artists", "songs"), ("mellow and melancholic", "mellow, melancholic")),
        (("games",), ("relaxing and cozy", "relaxing, cozy")),
    )
    for noun in nouns
}


@dataclass
class CatalogTraits:
    """What the derivation needs to know about a catalog (see the module docstring), read once from its
    schema so every demonstration uses the catalog's own columns and values.

    Attributes:
        noun: what an item is called ("films").
        verb: what one does with an item ("watch").
        verb_past: the verb's past tense ("watched").
        title: the title column.
        year: the year column (None: the catalog has none).
        lists: list columns with few values (genres, tags).
        categoricals: one-value category columns (language, country).
        people: columns naming people (director, author).
        measures: numeric columns and their units (runtime, minutes).
        has_text: whether items have text beyond their title (semantic search needs it).
        popularity: the popularity column (None: the catalog has no log).
        titles: popular titles as people type them.
    """

    noun: str
    verb: str
    verb_past: str
    title: str
    year: str | None = None
    lists: list[str] = field(default_factory=list)
    categoricals: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    measures: list[tuple[str, str | None]] = field(default_factory=list)  # (column, unit)
    has_text: bool = False
    popularity: str | None = None
    titles: list[str] = field(default_factory=list)  # popular titles as people type them

    @classmethod
    def of(cls, catalog: Catalog, noun: str) -> CatalogTraits:
        verb, past = _VERBS.get(noun.lower(), ("try", "tried"))
        traits = cls(noun=noun, verb=verb, verb_past=past, title=catalog.title_column)
        schema = catalog.schema
        items = catalog.items
        for spec in schema.columns:
            if spec.name not in items or spec.role in (ColumnRole.ID, ColumnRole.TITLE, ColumnRole.IGNORE):
                continue
            if spec.from_interactions:  # user-written values: not for hard conditions in examples
                continue
            if spec.role is ColumnRole.NUMERIC and spec.name.lower() in _YEAR_NAMES and traits.year is None:
                traits.year = spec.name
            elif spec.role is ColumnRole.NUMERIC and items[spec.name].notna().mean() > 0.5:
                traits.measures.append((spec.name, spec.unit))
            elif spec.role in (ColumnRole.MULTI_CATEGORICAL, ColumnRole.CATEGORICAL):
                distinct = len(catalog.column_values(spec.name))
                if distinct < 2:
                    continue
                if _PEOPLE.search(spec.name):
                    traits.people.append(spec.name)
                elif spec.role is ColumnRole.MULTI_CATEGORICAL:
                    traits.lists.append(spec.name)
                else:
                    traits.categoricals.append(spec.name)
            elif spec.role is ColumnRole.TEXT:
                traits.has_text = True
        traits.has_text = traits.has_text or bool(traits.lists)
        log = catalog.log_columns()
        if log:
            traits.popularity = log[0].name
        elif schema.popularity_column is not None:
            traits.popularity = schema.popularity_column
        traits.titles = typed_titles(catalog, 12)
        return traits


def typed_title(raw: str) -> str:
    """A catalog title the way a person types it: no year, no alternative titles in parentheses, the
    article in front ("Matrix, The (1999)" -> "The Matrix")."""
    main, _alternatives, _year = parse_title(raw)
    match = re.match(r"^(?P<body>.+?),\s*(?P<article>The|A|An)$", main.strip())
    if match:
        main = f"{match.group('article')} {match.group('body')}"
    return main.strip()


def typed_titles(catalog: Catalog, n: int) -> list[str]:
    """Titles of popular items as people type them, each checked to resolve back to its item."""
    popularity = catalog.popularity()
    order = np.argsort(-popularity, kind="stable") if popularity is not None else np.arange(len(catalog))
    out: list[str] = []
    for position in order[: max(200, n * 10)]:
        raw = str(catalog.items[catalog.title_column].iloc[int(position)])
        typed = typed_title(raw)
        words = typed.split()
        if not 1 <= len(words) <= 5 or not re.fullmatch(r"[\w' .&:!-]+", typed) or "'" in typed:
            continue  # a plain title: the examples teach the plan, not unusual spellings
        g = catalog.ground(typed)
        if g.resolved and int(catalog.index_of([g.item_id])[0]) == int(position) and typed not in out:
            out.append(typed)
        if len(out) >= n:
            break
    return out


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _values(catalog: Catalog, column: str, n: int) -> list[str]:
    """Frequent values of a column, skipping the very most frequent (too broad to be an example)."""
    counts = catalog.column_values(column)
    values = [v for v in counts.index if 2 <= len(v) <= 30 and "'" not in v]
    return values[1 : n + 1] if len(values) > n else values[:n]


def _contains(catalog: Catalog, column: str, value: str) -> str:
    if catalog.schema.column(column).role is ColumnRole.MULTI_CATEGORICAL:
        return f"list_contains({column}, {_quote(value)})"
    return f"{column} = {_quote(value)}"


def _step(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool": tool, "args": args}


def _plan(intent: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {"intent": intent, "steps": steps}
    feedback = {k: v for k, v in extra.items() if k in ("liked", "disliked") and v}
    if feedback:
        plan["feedback"] = feedback
    if extra.get("reply"):
        plan["reply"] = extra["reply"]
    return plan


@dataclass
class Candidate:
    """A demonstration before it has been executed: the shape, request, plan and, for a follow-up, the
    earlier plan whose answer it refers to. Only candidates whose plans run and return something become
    demonstrations.

    Attributes:
        shape: the plan shape it shows ("hard_filter", "similar_to", ...).
        request: the user's message.
        plan: the plan that answers it.
        after: the earlier plan a follow-up refers to (None: a first turn).
    """

    shape: str
    request: str
    plan: dict[str, Any]
    after: dict[str, Any] | None = None


def candidate_demonstrations(catalog: Catalog, traits: CatalogTraits) -> list[Candidate]:
    """Every shape the catalog supports, instantiated with its own columns and values."""
    noun, t = traits.noun, traits
    noun_cap = noun[:1].upper() + noun[1:]
    out: list[Candidate] = []

    def add(
        shape: str, request: str, intent: str, steps: list[dict[str, Any]], *, after: Any = None, **extra: Any
    ) -> None:
        out.append(Candidate(shape, request, _plan(intent, steps, **extra), after=after))

    titles = t.titles
    pop = t.popularity

    # hard filter: list or categorical values, with a decade when there is a year
    filters: list[tuple[str, str]] = []  # (condition, description)
    if t.lists:
        values = _values(catalog, t.lists[0], 3)
        filters += [(_contains(catalog, t.lists[0], v), v) for v in values]
    decade = _decade(catalog, t.year) if t.year else None
    if filters and decade is not None:
        condition, value = filters[0]
        add(
            "hard_filter",
            f"Recommend {value.lower()} {noun} from the {decade}s",
            "recommend",
            [
                _step("filter", where=f"{condition} AND {t.year} BETWEEN {decade} AND {decade + 9}"),
                _step("rank", by="popularity"),
            ],
        )
    # a plain value filter: the second value when the first went into the decade filter
    plain = filters[1] if len(filters) > 1 else filters[0] if filters and decade is None else None
    if plain is not None:
        condition, value = plain
        add(
            "hard_filter",
            f"Some good {value.lower()} {noun}, please",
            "recommend",
            [_step("filter", where=condition), _step("rank", by="popularity")],
        )
    for column in t.categoricals[:1]:
        for value in _values(catalog, column, 1):
            label = column.replace("_", " ")
            add(
                "hard_filter",
                f"{noun_cap} with {label} {value}",
                "recommend",
                [_step("filter", where=_contains(catalog, column, value)), _step("rank", by="popularity")],
            )
    for column in t.people[:1]:
        for person in _values(catalog, column, 1):
            add(
                "people_filter",
                f"More {noun} by {person}",
                "recommend",
                [_step("filter", where=_contains(catalog, column, person)), _step("rank", by="popularity")],
            )
    for column, unit in t.measures[:1]:
        limit = _round_limit(catalog.items[column])
        if limit is None:
            continue
        if _SHORTER.search(column):
            phrase = f"shorter than {limit}{' ' + unit if unit else ''}"
        elif _CHEAPER.search(column):
            phrase = f"cheaper than {limit}{' ' + unit if unit else ''}"
        else:
            phrase = f"with {column.replace('_', ' ')} under {limit}{' ' + unit if unit else ''}"
        condition = f"{column} < {limit}"
        if filters:
            condition = f"{filters[0][0]} AND {condition}"
            request = f"{filters[0][1]} {noun} {phrase}"
        else:
            request = f"{noun_cap} {phrase}"
        add(
            "numeric_filter",
            request[:1].upper() + request[1:],
            "recommend",
            [_step("filter", where=condition), _step("rank", by="popularity")],
        )

    # soft search: only when items carry text beyond their title
    if t.has_text:
        said, query = _MOODS.get(noun.lower(), ("fun and relaxing", "fun, relaxing"))
        add(
            "soft_search",
            f"Something {said}",
            "recommend",
            [_step("semantic_search", query=query), _step("rank", by="similarity")],
        )

    # similar to named items
    if titles:
        # similar_to itself remembers its titles as liked: no feedback needed
        add(
            "similar_to",
            f"{noun_cap} like {titles[0]}, please",
            "recommend",
            [_step("similar_to", titles=[titles[0]]), _step("rank", by="similarity")],
        )
    if len(titles) >= 3:
        pair = [titles[1], titles[2]]
        add(
            "similar_to",
            f"I love {pair[0]} and {pair[1]}. What else would I like?",
            "recommend",
            [_step("similar_to", titles=pair), _step("rank", by="preference")],
        )
    if len(titles) >= 4 and (t.year or filters):
        anchor = titles[3]
        if t.year and (cut := _year_cut(catalog, t.year, anchor)) is not None:
            request, condition = f"Something like {anchor} but older, from before {cut}", f"{t.year} < {cut}"
        else:
            condition, value = filters[-1]
            request = f"Something like {anchor}, but {value.lower()}"
        add(
            "similar_filter",
            request,
            "recommend",
            [
                _step("similar_to", titles=[anchor]),
                _step("filter", where=condition),
                _step("rank", by="similarity"),
            ],
        )

    # information questions, answered from the table
    if len(titles) >= 5:
        subject = titles[4]
        column, question = _info_question(t, subject)
        if column is not None:
            add(
                "info",
                question,
                "question",
                [
                    _step(
                        "sql_query",
                        sql=f"SELECT {t.title}, {column} FROM items WHERE {t.title} = {_quote(subject)}",
                    )
                ],
            )

    # popularity, from the log
    if pop is not None:
        add(
            "most_popular",
            f"What are the most popular {noun}?",
            "recommend",
            [_step("rank", by="popularity")],
        )
        if len(titles) >= 7:
            pair = [titles[5], titles[6]]
            add(
                "user_list",
                f"Which is more popular, {pair[0]} or {pair[1]}?",
                "question",
                [
                    _step("user_candidates", titles=pair),
                    _step("sql_query", sql=f"SELECT {t.title}, {pop} FROM items ORDER BY {pop} DESC LIMIT 1"),
                ],
            )

    # follow-ups that refine or compare the previous answer
    base = next((c for c in out if c.shape == "hard_filter"), None) or next(
        (c for c in out if c.shape == "similar_to"), None
    )
    if base is not None:
        refinement = _refinement(catalog, t, base)
        if refinement is not None:
            phrase, condition, by = refinement
            add(
                "refine",
                f"(follow-up) {phrase}",
                "recommend",
                [
                    _step("previous_results", which="all"),
                    _step("filter", where=condition),
                    _step("rank", by=by),
                ],
                after=base.plan,
            )
        compare = _comparison(t)
        if compare is not None:
            phrase, order = compare
            add(
                "which_of_those",
                f"(follow-up) {phrase}",
                "question",
                [
                    _step("previous_results", which="shown"),
                    _step(
                        "sql_query",
                        sql=f"SELECT {t.title}, {order.split()[0]} FROM items ORDER BY {order} LIMIT 1",
                    ),
                ],
                after=base.plan,
            )

    # the user's own history and dislikes
    if pop is not None:
        add("preference", f"What should I {t.verb} next?", "recommend", [_step("rank", by="preference")])
        if len(titles) >= 8:
            add(
                "dislike",
                f"I did not like {titles[7]}. Suggest something else.",
                "recommend",
                [_step("rank", by="preference")],
                disliked=[titles[7]],
            )

    # conversation without tools
    add(
        "chat",
        "Hi! What can you do?",
        "chat",
        [],
        reply=f"Hello! Tell me what {noun} you like, or ask me about any of them.",
    )
    add("chat", "Thanks, that is all for today!", "chat", [], reply="You're welcome! Enjoy.")
    return out


def _decade(catalog: Catalog, column: str) -> int | None:
    years = pd.to_numeric(catalog.items[column], errors="coerce").dropna()
    if years.empty:
        return None
    counts = (years // 10 * 10).astype(int).value_counts()
    # the second most common decade: a real one with many items, not always the latest
    decades = counts.index.tolist()
    return int(decades[1] if len(decades) > 1 else decades[0])


def _year_cut(catalog: Catalog, column: str, title: str) -> int | None:
    g = catalog.ground(title)
    if not g.resolved:
        return None
    year = catalog.row(g.item_id).get(column)
    if year is None or pd.isna(year):
        return None
    return int(year) // 10 * 10


def _round_limit(values: pd.Series) -> int | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return None
    median = float(numbers.median())
    if median <= 0:
        return None
    step = 10 ** max(0, len(str(int(median))) - 1)
    return int(round(median / step) * step) or None


def _info_question(t: CatalogTraits, subject: str) -> tuple[str | None, str]:
    if t.year:
        return t.year, f"What year did {subject} come out?"
    if t.people:
        return t.people[0], f"Who is the {t.people[0].replace('_', ' ')} of {subject}?"
    for column, _unit in t.measures:
        if _SHORTER.search(column):
            return column, f"How long is {subject}?"
    if t.popularity:
        return t.popularity, f"How many people have {t.verb_past} {subject}?"
    return None, ""


def _refinement(catalog: Catalog, t: CatalogTraits, base: Candidate) -> tuple[str, str, str] | None:
    """A follow-up condition that narrows the base answer, its wording, and how to rank what is left."""
    by = "popularity" if base.shape == "hard_filter" else "similarity"
    if t.year:
        decade = _decade(catalog, t.year)
        if decade is not None:
            # for a decade filter, cut inside it; otherwise before that decade
            cut = decade + 5 if "BETWEEN" in json.dumps(base.plan) else decade
            return f"Only ones from before {cut}, please", f"{t.year} < {cut}", by
    for column, unit in t.measures:
        limit = _round_limit(catalog.items[column])
        if limit is not None and _SHORTER.search(column):
            return f"Only ones shorter than {limit}{' ' + unit if unit else ''}", f"{column} < {limit}", by
    if t.lists and base.shape != "hard_filter":
        for value in _values(catalog, t.lists[0], 1):
            return f"Only {value.lower()} ones", _contains(catalog, t.lists[0], value), by
    if t.popularity:
        threshold = (
            int(np.percentile(np.asarray(catalog.log_columns()[0].values), 90))
            if catalog.log_columns()
            else 0
        )
        if threshold > 0:
            return "Only less well-known ones", f"{t.popularity} < {threshold}", by
    return None


def _comparison(t: CatalogTraits) -> tuple[str, str] | None:
    for column, _unit in t.measures:
        if _SHORTER.search(column):
            return "Which of those is the shortest?", f"{column} ASC"
    if t.year:
        return "Which of those is the oldest?", f"{t.year} ASC"
    if t.popularity:
        return "Which of those is the most popular?", f"{t.popularity} DESC"
    return None


# ----------------------------------------------------------------------------- checking
def sql_columns(plan: dict[str, Any]) -> set[str]:
    """Every column name the plan's SQL (sql_query and filter steps) refers to, output aliases of the
    same query excluded."""
    names: set[str] = set()
    for raw in plan.get("steps", []):
        step = nested_step(raw) if isinstance(raw, dict) else {}
        args = step.get("args") or {}
        try:
            if step.get("tool") == "filter" and "where" in args:
                tree = parse_condition(str(args["where"]))
            elif step.get("tool") == "sql_query" and "sql" in args:
                parsed = parse_sql(str(args["sql"]))
                tree = parsed[0] if parsed else None
            else:
                continue
        except SqlError:
            continue
        if tree is None:
            continue
        aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
        names |= {c.name for c in tree.find_all(exp.Column) if c.name.lower() not in aliases}
    return names


def unknown_columns(plan: dict[str, Any], catalog: Catalog) -> set[str]:
    """Columns the plan names that the catalog's SQL table does not have."""
    known = {c.lower() for c in catalog.schema.kept_columns} | {c.name.lower() for c in catalog.log_columns()}
    return {name for name in sql_columns(plan) if name.lower() not in known}


def load_user_demonstrations(
    path: str | Path, catalog: Catalog, schema: dict[str, Any]
) -> list[Demonstration]:
    """A user's own demonstrations: valid plans that name only the catalog's columns."""
    from recai.agent.planner import Demonstrations

    loaded = Demonstrations.load(path, schema=schema, mode="fixed").examples
    for i, demo in enumerate(loaded):
        unknown = unknown_columns(demo.plan, catalog)
        if unknown:
            raise ValueError(
                f"{path}: demonstration {i} ('{demo.request}') names column(s) {sorted(unknown)} that the "
                f"catalog does not have ({', '.join(catalog.schema.kept_columns)})"
            )
    return loaded


@dataclass
class DerivedDemonstrations:
    """The demonstrations kept, and what was dropped and why (for the docs, tests and the curious); cached
    on disk per catalog.

    Attributes:
        examples: the demonstrations kept.
        shapes: each kept demonstration's shape, aligned with ``examples``.
        dropped: the candidates dropped, each with its shape, request and reason.
    """

    examples: list[Demonstration]
    shapes: list[str]
    dropped: list[dict[str, str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": DERIVATION_VERSION,
            "examples": [
                {"shape": s, "request": d.request, "plan": d.plan}
                for s, d in zip(self.shapes, self.examples, strict=True)
            ],
            "dropped": self.dropped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DerivedDemonstrations:
        examples = [Demonstration(e["request"], e["plan"]) for e in data["examples"]]
        return cls(examples, [e["shape"] for e in data["examples"]], list(data.get("dropped", [])))


def derive(agent: Agent, *, progress: Callable[[str], None] | None = None) -> DerivedDemonstrations:
    """Build, execute and keep the demonstrations that work on ``agent``'s catalog (uncached)."""
    catalog = agent.dataset.catalog
    traits = CatalogTraits.of(catalog, agent.item_noun)
    kept: list[Demonstration] = []
    shapes: list[str] = []
    dropped: list[dict[str, str]] = []
    for candidate in candidate_demonstrations(catalog, traits):
        if progress is not None:
            progress(candidate.shape)
        reason = _check(agent, candidate)
        if reason is None:
            kept.append(Demonstration(candidate.request, candidate.plan))
            shapes.append(candidate.shape)
        else:
            dropped.append({"shape": candidate.shape, "request": candidate.request, "why": reason})
    return DerivedDemonstrations(kept, shapes, dropped)


def _check(agent: Agent, candidate: Candidate) -> str | None:
    """Why a demonstration does not work on this catalog, or None when it does."""
    catalog = agent.dataset.catalog
    unknown = unknown_columns(candidate.plan, catalog)
    if unknown:
        return f"names columns the catalog lacks: {sorted(unknown)}"
    if candidate.plan["intent"] == "chat":
        return None
    previous = None
    if candidate.after is not None:
        bus, _, failure, _ = agent.execute_plan(_cheap(candidate.after))
        if failure is not None or bus.empty:
            return f"the earlier answer it follows fails: {failure or 'no items'}"
        previous = bus.top(agent.settings.k if "shown" in json.dumps(candidate.plan) else 1000)[0].tolist()
    bus, facts, failure, _ = agent.execute_plan(_cheap(candidate.plan), previous=previous)
    if failure is not None:
        return failure
    if candidate.plan["intent"] == "recommend" and bus.empty:
        return "no items"
    if candidate.plan["intent"] == "question" and any("found nothing" in f for f in facts):
        return "the lookup returns no rows"
    return None


#: The shapes a planner prompt shows, most important first: one example each, then second examples
#: and compositions (similar-to plus a filter, which is more popular, a numeric filter, a dislike) while
#: the prompt budget allows.
CORE_SHAPES = (
    "similar_to",
    "hard_filter",
    "info",
    "refine",
    "which_of_those",
    "chat",
    "most_popular",
    "preference",
    "soft_search",
    "people_filter",
)
EXTRA_SHAPES = ("hard_filter", "user_list", "similar_filter", "numeric_filter", "dislike")
#: Characters per token of the rendered examples (measured on Qwen2.5's tokenizer: 3.85 to 4.1).
CHARS_PER_TOKEN = 3.9


def core_demonstrations(
    derived: DerivedDemonstrations, budget_tokens: int | None = None
) -> list[Demonstration]:
    """The demonstrations every prompt shows: one of each core shape the catalog supports, then extra
    ones, in the order above, each only while the examples stay within ``budget_tokens`` (None: the
    core shapes only)."""
    by_shape: dict[str, list[Demonstration]] = {}
    for shape, demo in zip(derived.shapes, derived.examples, strict=True):
        by_shape.setdefault(shape, []).append(demo)
    taken: dict[str, int] = {}

    def take(shapes: tuple[str, ...]) -> list[Demonstration]:
        out = []
        for shape in shapes:
            index = taken.get(shape, 0)
            if index < len(by_shape.get(shape, [])):
                out.append(by_shape[shape][index])
                taken[shape] = index + 1
        return out

    # every core shape is shown whatever the budget: without an example of a shape, a small planner
    # reaches for the wrong tool (measured: semantic search for "horror movies" and "Pulp Fictoin")
    core = take(CORE_SHAPES)
    if budget_tokens is None:
        return core
    used = sum((len(d.render()) + 1) / CHARS_PER_TOKEN for d in core)
    for demo in take(EXTRA_SHAPES):
        cost = (len(demo.render()) + 1) / CHARS_PER_TOKEN
        if used + cost <= budget_tokens:
            core.append(demo)
            used += cost
    return core


def _cheap(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as checked: preference ranking becomes popularity ranking. Ranking reorders and never
    empties the candidates, and the check must not train a sequential model just to prove that."""
    steps = [
        {"tool": "rank", "args": {"by": "popularity"}}
        if s.get("tool") == "rank" and (s.get("args") or {}).get("by") == "preference"
        else s
        for s in plan.get("steps", [])
    ]
    return {**plan, "steps": steps}


def derived_demonstrations(agent: Agent) -> DerivedDemonstrations:
    """:func:`derive`, cached in the agent's cache folder for this dataset (see the module docstring)."""
    catalog = agent.dataset.catalog
    key = hashlib.sha256(
        json.dumps(
            {
                "version": DERIVATION_VERSION,
                "schema": catalog.schema.to_dict(),
                "log": [c.name for c in catalog.log_columns()],
                "noun": agent.item_noun,
                "tools": sorted(agent.tools),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    path = agent.resources.cache_dir / f"demonstrations-{key}.json"
    if path.exists():
        try:
            return DerivedDemonstrations.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError):
            pass  # a damaged cache file: derive again
    derived = derive(agent)
    write_text_atomic(path, json.dumps(derived.to_json(), indent=1, ensure_ascii=False))
    return derived
