"""Templated requests for every plan shape, built from the catalog's schema (so any dataset works).

A planner that is only ever shown what a user simulator happens to say sees a few plan shapes many
times. These templates make sure the recorded data also holds the rarer ones: hard conditions only, soft
(free-text) conditions only, both, similar-to (alone and with a condition), information questions, the
user's own candidates, chit-chat, and refinements of a previous turn. Each turn carries a declarative
check of what a correct answer must satisfy, so "success" is decided without an LLM judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recai.agent.trace import TurnTrace
from recai.data.catalog import Catalog
from recai.data.schema import ColumnRole

SHAPES = (
    "hard",
    "soft",
    "hard_soft",
    "similar",
    "similar_hard",
    "question",
    "candidates",
    "chat",
    "refine",
)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "his",
        "her",
        "their",
        "its",
        "this",
        "that",
        "who",
        "whom",
        "which",
        "what",
        "when",
        "where",
        "while",
        "into",
        "after",
        "before",
        "about",
        "over",
        "under",
        "than",
        "then",
        "they",
        "them",
        "he",
        "she",
        "it",
        "one",
        "two",
        "three",
        "has",
        "have",
        "had",
        "not",
        "but",
        "all",
        "any",
        "some",
        "more",
        "most",
        "other",
        "such",
        "only",
        "own",
        "same",
        "so",
        "too",
        "very",
        "can",
        "will",
        "just",
        "also",
        "out",
        "up",
        "down",
        "off",
        "again",
        "further",
        "once",
        "young",
        "old",
        "new",
        "man",
        "woman",
        "men",
        "women",
    ]
)
_CHAT = (
    "Hi!",
    "Hello there.",
    "Thanks, that's all for now.",
    "Thank you so much!",
    "Good evening!",
    "What can you do?",
)


@dataclass
class TurnCheck:
    """What a correct answer to one templated turn satisfies (all given fields must hold): templated
    requests know their answer's shape, so a recorded turn can be judged without a judge model.

    Attributes:
        intent: the plan's intent.
        nonempty: at least one item returned.
        column: every item has ``value`` in this categorical or list column.
        value: the value ``column`` must hold.
        numeric: every item has ``numeric`` < ``below``.
        below: the bound for ``numeric``.
        exclude: item ids that must not be returned (the seeds).
        within: item ids the answer must come from (the user's list).
        tool: a step of this tool ran without error.
    """

    intent: str
    nonempty: bool = False  # at least one item returned
    column: str | None = None  # every item has ``value`` in this categorical / list column
    value: str | None = None
    numeric: str | None = None  # every item has ``numeric`` < ``below``
    below: float | None = None
    exclude: list[Any] = field(default_factory=list)  # item ids that must not be returned (the seeds)
    within: list[Any] = field(default_factory=list)  # item ids the answer must come from (user's list)
    tool: str | None = None  # a step of this tool ran without error


@dataclass
class TemplateTurn:
    """One user message of a templated conversation and what its answer must satisfy.

    Attributes:
        text: the user's message.
        check: what a correct answer satisfies.
    """

    text: str
    check: TurnCheck


@dataclass
class TemplateRequest:
    """One scripted conversation (one turn, or two for a refinement) with its intended plan shape, for
    recording the teacher's plans on requests whose right answer is known.

    Attributes:
        id: the request's id.
        shape: the plan shape it asks for.
        turns: its turns, in order.
    """

    id: str
    shape: str
    turns: list[TemplateTurn]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_turn(check: TurnCheck, catalog: Catalog, trace: TurnTrace, items: Sequence[Any]) -> bool:
    """Whether a turn's outcome (its trace and returned item ids) satisfies ``check``."""
    final = trace.plans[-1].plan if trace.plans else {"intent": "chat", "steps": []}
    if final.get("intent") != check.intent or trace.planner_error:
        return False
    if check.intent == "chat":
        return not final.get("steps")
    if check.nonempty and not items:
        return False
    if check.tool is not None:
        ran = [s for s in trace.steps_of(len(trace.plans)) if s.tool == check.tool]
        if not ran or any(s.error is not None for s in ran):
            return False
    if check.exclude and set(items) & set(check.exclude):
        return False
    if check.within and not set(items) <= set(check.within):
        return False
    if items and (check.column is not None or check.numeric is not None):
        frame = catalog.items
        for pos in catalog.index_of(list(items), missing="drop").tolist():
            if check.column is not None:
                cell = frame.iat[pos, frame.columns.get_loc(check.column)]
                values = list(cell) if isinstance(cell, (list, tuple, np.ndarray)) else [cell]
                if str(check.value).lower() not in {str(v).lower() for v in values}:
                    return False
            if check.numeric is not None:
                cell = frame.iat[pos, frame.columns.get_loc(check.numeric)]
                if cell is None or not float(cell) < float(check.below or 0):
                    return False
    return True


class RequestTemplates:
    """Draws templated requests from a catalog: its categorical values, numeric ranges, titles, text, so
    tool-learning data covers every plan shape on any catalog.

    Args:
        catalog: the catalog whose values the requests use.
        item_noun: what the items are called in the requests ("films").
        seed: the seed of the draws.
    """

    def __init__(self, catalog: Catalog, *, item_noun: str = "items", seed: int = 0) -> None:
        self.catalog = catalog
        self.noun = item_noun
        self.rng = np.random.default_rng(seed)
        schema = catalog.schema
        self.categorical = {}
        for spec in schema.columns:
            if spec.role in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
                counts = catalog.column_values(spec.name)
                common = [str(v) for v, c in counts.items() if c >= 2 and str(v).strip()][:30]
                if common:
                    self.categorical[spec.name] = common
        self.numeric = [
            s.name
            for s in schema.columns
            if s.role is ColumnRole.NUMERIC and catalog.items[s.name].notna().sum() >= 2
        ]
        self.text = [s.name for s in schema.columns if s.role is ColumnRole.TEXT]
        popularity = catalog.popularity()
        order = np.argsort(-popularity, kind="stable") if popularity is not None else np.arange(len(catalog))
        self.popular = [int(p) for p in order[: max(10, min(100, len(catalog) // 3))]]

    # -------------------------------------------------------------- pieces
    def _pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def _condition(self) -> tuple[str, str, str] | None:
        """(column, value, phrase) for a hard condition on a categorical column."""
        if not self.categorical:
            return None
        column = self._pick(sorted(self.categorical))
        value = self._pick(self.categorical[column])
        label = column.replace("_", " ")
        listed = self.catalog.schema.column(column).role is ColumnRole.MULTI_CATEGORICAL
        verb = f"whose {label} include {value}" if listed else f"where the {label} is {value}"
        phrase = self._pick([f"with {label} {value}", verb])
        return column, value, phrase

    def _numeric_limit(self) -> tuple[str, float] | None:
        if not self.numeric:
            return None
        column = self._pick(self.numeric)
        values = self.catalog.items[column].dropna().astype(float)
        return column, float(np.round(values.quantile(float(self.rng.uniform(0.4, 0.8)))))

    def _keywords(self) -> str:
        """A few content words of a random item's text: a soft description that matches something."""
        if self.text:
            frame = self.catalog.items
            pos = self._pick(self.popular)
            text = str(frame.iat[pos, frame.columns.get_loc(self.text[0])])
            words = [w for w in re.findall(r"[a-zA-Z]{4,}", text.lower()) if w not in _STOP]
            if len(words) >= 2:
                start = int(self.rng.integers(max(1, len(words) - 2)))
                return " ".join(words[start : start + 3])
        if self.categorical:
            column = self._pick(sorted(self.categorical))
            return f"a {self._pick(self.categorical[column]).lower()} feeling"
        return "something memorable"

    def _title(self) -> tuple[str, Any]:
        pos = self._pick(self.popular)
        return self.catalog.display_title(pos), self.catalog.ids[pos]

    # -------------------------------------------------------------- shapes
    def make(self, shape: str, index: int) -> TemplateRequest | None:
        """One request of ``shape`` (None when the catalog lacks what the shape needs)."""
        noun = self.noun
        rid = f"{shape}-{index}"
        recommend = TurnCheck(intent="recommend", nonempty=True)
        if shape == "chat":
            return TemplateRequest(rid, shape, [TemplateTurn(self._pick(_CHAT), TurnCheck(intent="chat"))])
        if shape == "soft":
            words = self._keywords()
            text = self._pick([f"Something about {words}", f"I'm in the mood for {noun} about {words}"])
            return TemplateRequest(rid, shape, [TemplateTurn(text, recommend)])
        if shape in ("hard", "hard_soft", "similar_hard", "refine"):
            condition = self._condition()
            if condition is None:
                return None
            column, value, phrase = condition
            check = TurnCheck(intent="recommend", nonempty=True, column=column, value=value)
            if shape == "hard":
                text = self._pick([f"Show me {noun} {phrase}", f"Any {noun} {phrase}?"])
                return TemplateRequest(rid, shape, [TemplateTurn(text, check)])
            if shape == "hard_soft":
                text = f"{noun.capitalize()} {phrase}, about {self._keywords()}"
                return TemplateRequest(rid, shape, [TemplateTurn(text, check)])
            if shape == "similar_hard":
                title, item = self._title()
                check.exclude = [item]
                text = f"Something like {title} but {phrase}"
                return TemplateRequest(rid, shape, [TemplateTurn(text, check)])
            limit = self._numeric_limit()  # refine: a condition, then a numeric limit on top of it
            if limit is None:
                return None
            numeric, below = limit
            refined = TurnCheck(
                intent="recommend", nonempty=True, column=column, value=value, numeric=numeric, below=below
            )
            label = numeric.replace("_", " ")
            second = self._pick(
                [f"Only ones with {label} under {below:g}", f"Any of those below {below:g} in {label}?"]
            )
            first = TemplateTurn(f"Show me {noun} {phrase}", check)
            return TemplateRequest(rid, shape, [first, TemplateTurn(second, refined)])
        if shape == "similar":
            title, item = self._title()
            text = self._pick(
                [f"{noun.capitalize()} like {title}", f"I loved {title}, what else would I like?"]
            )
            return TemplateRequest(
                rid, shape, [TemplateTurn(text, TurnCheck(intent="recommend", nonempty=True, exclude=[item]))]
            )
        if shape == "candidates":
            picks = list(dict.fromkeys(self._title() for _ in range(3)))
            if len(picks) < 2:
                return None
            names = [t for t, _ in picks]
            listed = ", ".join(names[:-1]) + f" or {names[-1]}"
            check = TurnCheck(intent="recommend", nonempty=True, within=[i for _, i in picks])
            return TemplateRequest(rid, shape, [TemplateTurn(f"Which should I pick: {listed}?", check)])
        if shape == "question":
            title, _ = self._title()
            columns = sorted(self.categorical) + self.numeric
            if not columns:
                return None
            column = self._pick(columns).replace("_", " ")
            text = self._pick([f"What is the {column} of {title}?", f"Tell me the {column} of {title}."])
            check = TurnCheck(intent="question", tool="sql_query")
            return TemplateRequest(rid, shape, [TemplateTurn(text, check)])
        raise ValueError(f"unknown plan shape '{shape}' (known: {', '.join(SHAPES)})")


def template_requests(
    catalog: Catalog,
    *,
    per_shape: int = 10,
    shapes: Sequence[str] = SHAPES,
    item_noun: str = "items",
    seed: int = 0,
) -> list[TemplateRequest]:
    """``per_shape`` requests of each shape (exact texts may repeat on small catalogs; filtering dedups)."""
    templates = RequestTemplates(catalog, item_noun=item_noun, seed=seed)
    out = []
    for shape in shapes:
        for i in range(per_shape):
            request = templates.make(shape, i)
            if request is not None:
                out.append(request)
    return out
