"""Supervised fine-tuning data for a generative recommender (RecLM-gen): eight tasks from one dataset.

Every example is a short chat (optional system message, user request, assistant answer) that the
training code renders with the model's own chat template. Items are always written as item spans
(``<|item_start|>Heat (1995)<|item_end|>``), in prompts and answers alike.

List tasks (scored by :mod:`recai.gen.metrics`):

- ``sequential``: history -> top-k list. The label starts with the user's held-out next item; with a
  teacher recommender (e.g. SASRec fitted on the training log) the rest of the list is the teacher's
  top-k, otherwise it is the user's own later items (so the list may be shorter than ``k``, and asks
  for as many as it has);
- ``count``: "recommend exactly n", n drawn from 1..k;
- ``category``: "k items whose <column> (do not) include C", with history;
- ``category_cold``: the same without history (popular items of the category);
- ``category_share``: "at least / at most p% of the list from C".

Catalog-grounding tasks (train only): ``item_title`` (attributes -> which item), ``item_category``
(item -> its categories) and ``general`` (a small share of plain questions built from the catalog:
what an item is about, which of two came out first, an attribute's value).

Leak-free by construction: training examples are cut from the training log of a leave-one-out split
(the target is a later training event, never a validation or test one); test examples use the training
plus validation events as history and the held-out test event as target, and their control category is
drawn independently of the target (it would otherwise hint at it). A teacher must be fitted on the
training log only (:func:`fit_teacher` does that). A test example whose prompt a training example of
the same task already asked word for word is skipped (``category_cold`` prompts come from a small
space). Each example has its own random generator derived from the seed, the task, the part and the
attempt, so a rebuild gives byte-identical files.

Each task is a :class:`GenTask` (:class:`recai.train.tasks.Task`): to add one, subclass it, set ``name``,
``anchor`` and ``has_test``, implement ``make(ctx, anchor, rng)`` with the :class:`GenContext` helpers,
and pass an instance to :func:`build_gen_data` among the task names.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import plain_value
from recai.data.schema import ColumnRole
from recai.data.splits import Split
from recai.gen.examples import Control, GenData, GenExample
from recai.gen.items import DEFAULT_FORMAT, ItemNames, SpanFormat
from recai.gen.templates import plural, render
from recai.train.tasks import Task, TaskRegistry, build_parts, seeded_rng

if TYPE_CHECKING:
    from recai.rec.base import Recommender

#: Rounds over the anchors before a task gives up short of its count.
MAX_ROUNDS = 20
_SHARES = (0.2, 0.4, 0.6, 0.8)


def category_column(catalog: Catalog, column: str | None = None) -> str | None:
    """The column used for category control: ``column``, else the first multi-valued categorical column,
    else the first categorical one, else None (a name-only catalog such as Last.fm's: its control and
    item-category tasks then give no examples, the other tasks are unaffected)."""
    schema = catalog.schema
    if column is not None:
        role = schema.column(column).role
        if role not in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
            raise ValueError(f"category column '{column}' is {role.value}, not categorical")
        return column
    for role in (ColumnRole.MULTI_CATEGORICAL, ColumnRole.CATEGORICAL):
        found = [c for c in schema.by_role(role) if c in catalog.items]
        if found:
            return found[0]
    return None


def item_values(catalog: Catalog, column: str) -> list[frozenset[str]]:
    """The category values of every item (by row position) in ``column``."""
    out = []
    for value in catalog.items[column].tolist():
        if isinstance(value, (list, tuple, np.ndarray)):
            out.append(frozenset(str(v) for v in value if v is not None and str(v).strip()))
        elif value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
            out.append(frozenset())
        else:
            out.append(frozenset([str(value)]))
    return out


def satisfies(values: frozenset[str], control: Control) -> bool:
    """Whether one item with category ``values`` is inside the control's category (``not_in`` negates)."""
    inside = control.value in values
    return not inside if control.mode == "not_in" else inside


def fit_teacher(split: Split, name: str = "sasrec", **params: Any) -> Recommender:
    """The recommender ``name`` (of :data:`recai.rec.MODELS`, hyperparameters ``params``) fitted on the
    split's training log only (validation for early stopping), so its top-k never carries a held-out
    event into training labels."""
    from recai.rec import MODELS

    return MODELS.build(name, params).fit(split.train, valid=split.valid)


@dataclass(frozen=True)
class Anchor:
    """A moment in one user's log: what came before (positions, oldest first) and what came next.

    Attributes:
        user: the user's id.
        history: catalog positions the user consumed before this moment, oldest first.
        future: the next item first, then later ones not in the history (train); the held-out test
            item alone (test).
        part: "train" (a cut point of a training sequence) or "test" (a test user's held-out event).
    """

    user: Any
    history: tuple[int, ...]
    future: tuple[int, ...]
    part: str


class GenContext:
    """What every gen task reads while building: the catalog and its item names, the split, the
    teacher, the category column, and the helpers that render prompts, answers and examples.

    Args:
        dataset: the dataset to build from.
        split: the leave-one-out split whose training log gives training anchors (default: the
            dataset's own leave-one-out split).
        teacher: a recommender fitted on the training log only; its top-k fills list labels after the
            next item (without one, training lists are the user's own later items).
        k: the longest list a task asks for.
        min_k: the shortest list a control task asks for.
        history_len: the most recent history items shown in a prompt.
        category: the categorical column for category control (default: the first multi-valued
            categorical column, else the first categorical one).
        noun: what an item is called in prompts (default: the dataset's ``item_noun``, else "item").
        system: a system message for every example, or None.
        fmt: the item-span markers.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        split: Split | None = None,
        teacher: Any | None = None,
        k: int = 10,
        min_k: int = 3,
        history_len: int = 10,
        category: str | None = None,
        noun: str | None = None,
        system: str | None = None,
        fmt: SpanFormat = DEFAULT_FORMAT,
    ) -> None:
        if k < 1 or not 1 <= min_k <= k:
            raise ValueError(f"need 1 <= min_k <= k, got min_k={min_k}, k={k}")
        if history_len < 1:
            raise ValueError("history_len must be at least 1")
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.split = split if split is not None else dataset.split("leave_one_out")
        self.teacher = teacher
        self.k = k
        self.min_k = min_k
        self.history_len = history_len
        self.noun = noun or str(dataset.meta.get("item_noun", "item"))
        self.nouns = plural(self.noun)
        self.system = system
        self.names = ItemNames(self.catalog, fmt)
        n = len(self.catalog)
        self.counts = self.split.train.item_counts().astype(np.float64)
        self.popular = np.lexsort((np.arange(n), -self.counts))  # most popular first, ties by position
        self.history_log = self.split.train_and_valid()
        self.column = category_column(self.catalog, category)
        self.multi = (
            self.column is not None
            and self.catalog.schema.column(self.column).role is ColumnRole.MULTI_CATEGORICAL
        )
        self.values = item_values(self.catalog, self.column) if self.column else [frozenset()] * n
        sizes: dict[str, int] = {}
        for vals in self.values:
            for v in vals:
                sizes[v] = sizes.get(v, 0) + 1
        # A value is usable when both "in" and "not in" lists of k items exist.
        self.eligible = sorted(v for v, c in sizes.items() if c >= k and n - c >= k)
        self.value_weights = np.array([sizes[v] for v in self.eligible], dtype=np.float64)
        self._teacher_cache: dict[tuple[int, ...], list[int]] = {}

    # ------------------------------------------------------------ anchors
    def train_anchor(self, user: Any, seq: np.ndarray, t: int) -> Anchor | None:
        """The anchor before event ``t`` of a training sequence (every item involved is a training event)."""
        if not 1 <= t < len(seq):
            return None
        history = tuple(int(i) for i in seq[:t])
        seen = set(history)
        if int(seq[t]) in seen:
            return None  # a re-consumption is no recommendation target
        future: list[int] = []
        for item in seq[t:]:
            item = int(item)
            if item not in seen and item not in future:
                future.append(item)
            if len(future) >= self.k:
                break
        return Anchor(user, history, tuple(future), "train")

    def test_anchor(self, user: Any) -> Anchor | None:
        """The anchor of a test user: training and validation events as history, the test event next."""
        target = int(self.split.test.sequence(user)[-1])
        try:
            history = tuple(int(i) for i in self.history_log.sequence(user))
        except KeyError:
            return None
        if not history or target in history:
            return None
        return Anchor(user, history, (target,), "test")

    def _teacher_top(self, history: tuple[int, ...], n: int) -> list[int]:
        cached = self._teacher_cache.get(history)
        if cached is None or len(cached) < n:
            positions, _ = self.teacher.recommend(list(history), n)
            cached = self._teacher_cache[history] = [int(p) for p in positions]
        return cached[:n]

    def ranked(self, anchor: Anchor) -> Iterator[int]:
        """Items for the anchor's lists, best first, never from its history: the next item, the teacher's
        top items (when there is a teacher), the user's later items, then the rest by popularity."""
        seen = set(anchor.history)
        emitted: set[int] = set()

        def fresh(items: Sequence[int]) -> Iterator[int]:
            for item in items:
                item = int(item)
                if item not in seen and item not in emitted:
                    emitted.add(item)
                    yield item

        yield from fresh(anchor.future[:1])
        if self.teacher is not None:
            yield from fresh(self._teacher_top(anchor.history, min(len(self.catalog), 4 * self.k + 50)))
        yield from fresh(anchor.future[1:])
        yield from fresh(self.popular.tolist())

    # ------------------------------------------------------------- render
    def span(self, position: int) -> str:
        """The item as the model reads and writes it: its name between the span markers."""
        return self.names.span(position)

    def history_text(self, anchor: Anchor) -> str:
        """The anchor's most recent ``history_len`` items, one span per line."""
        return "\n".join(f"- {self.span(p)}" for p in anchor.history[-self.history_len :])

    def answer_list(self, items: Sequence[int], rng: np.random.Generator) -> str:
        """A numbered list of item spans in one of the answer wordings."""
        listing = "\n".join(f"{i}. {self.span(p)}" for i, p in enumerate(items, start=1))
        if len(items) == 1:
            return render("answer_one", rng, noun=self.noun, list=listing)
        return render("answer_list", rng, k=len(items), nouns=self.nouns, list=listing)

    def condition(self, value: str, negate: bool) -> str:
        """The category condition in words ("whose genres include Drama")."""
        label = self.column.replace("_", " ")
        if self.multi:
            return f"whose {label} {'do not include' if negate else 'include'} {value}"
        return f"whose {label} {'is not' if negate else 'is'} {value}"

    def messages(self, user_text: str, answer: str) -> tuple[dict[str, str], ...]:
        """The chat of one example: the system message (when set), the request, the answer."""
        messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": answer})
        return tuple(messages)

    def ids(self, positions: Sequence[int]) -> tuple[Any, ...]:
        """Catalog ids (plain Python values) of ``positions``."""
        ids = self.catalog.ids
        return tuple(plain_value(ids[int(p)]) for p in positions)

    def list_example(
        self,
        task: str,
        anchor: Anchor | None,
        items: Sequence[int],
        prompt: str,
        rng: np.random.Generator,
        control: Control | None = None,
    ) -> GenExample:
        """A list task's example: ``prompt`` answered with ``items``, with what scoring it needs."""
        history = anchor.history[-self.history_len :] if anchor is not None else ()
        return GenExample(
            id="",
            task=task,
            messages=self.messages(prompt, self.answer_list(items, rng)),
            items=self.ids(items),
            target=self.ids(anchor.future[:1])[0] if anchor is not None and anchor.future else None,
            history=self.ids(history),
            seen=self.ids(anchor.history) if anchor is not None else (),
            k=len(items),
            control=control,
            user=plain_value(anchor.user) if anchor is not None else None,
        )

    def qa_example(
        self, task: str, prompt: str, answer: str, items: Sequence[int], *, subject: str | None = None
    ) -> GenExample:
        """A question about catalog items (no list to score): ``items`` are the items it is about."""
        return GenExample(
            id="",
            task=task,
            messages=self.messages(prompt, answer),
            items=self.ids(items),
            meta={"kind": subject} if subject else {},
        )

    def pick_k(self, rng: np.random.Generator) -> int:
        """A list length between ``min_k`` and ``k``."""
        return int(rng.integers(self.min_k, self.k + 1))

    def pick_value(
        self, rng: np.random.Generator, anchor: Anchor | None, want_inside: bool, aware: bool
    ) -> str:
        """A category value; with ``aware`` one that the next item has (``want_inside``) or lacks."""
        if aware and anchor is not None and anchor.future:
            own = self.values[anchor.future[0]]
            pool = [v for v in self.eligible if (v in own) == want_inside]
            if pool:
                return pool[int(rng.integers(len(pool)))]
        p = self.value_weights / self.value_weights.sum()
        return self.eligible[int(rng.choice(len(self.eligible), p=p))]

    def year_column(self) -> str | None:
        """The catalog's numeric year column, if any."""
        for name in ("year", "release_year"):
            if name in self.catalog.items and self.catalog.schema.column(name).role is ColumnRole.NUMERIC:
                return name
        return None

    def attribute_columns(self) -> list[str]:
        """Categorical and numeric columns a plain question may ask about (not the category column or
        the year, which every display title shows)."""
        schema = self.catalog.schema
        roles = (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL, ColumnRole.NUMERIC)
        skip = {self.column, self.year_column()}
        return [
            c.name
            for c in schema.columns
            if c.role in roles and c.name in self.catalog.items and c.name not in skip
        ]


class GenTask(Task[GenContext, Any, GenExample]):
    """Base of the gen pillar's tasks: one chat example from an anchor of the kind ``anchor`` names.

    A ``"user"`` task gets an :class:`Anchor` (a cut point of a training user's log in the train part,
    a test user's held-out event in the test part; ``anchor.part`` says which); an ``"item"`` task gets
    a catalog position. Build examples with :meth:`GenContext.list_example` (a list the gen metrics
    score) or :meth:`GenContext.qa_example`.

    Attributes:
        anchor: "user" or "item": what :meth:`make` starts from.
        has_test: whether the task has a test part (the list tasks); grounding tasks train only.
        one_per_anchor: at most one training example per anchor (a user's cut point, an item).
    """

    anchor: ClassVar[Literal["user", "item"]] = "user"
    one_per_anchor: ClassVar[bool] = True

    def applies(self, ctx: GenContext) -> bool:
        """Whether the catalog can give this task any example; one that cannot is skipped at once
        instead of trying every anchor for many rounds."""
        return True


class Sequential(GenTask):
    """History -> top-k list: the next item first, then the teacher's top items or the user's later ones."""

    name = "sequential"

    def make(self, ctx: GenContext, anchor: Anchor, rng: np.random.Generator) -> GenExample | None:
        if anchor.part == "train" and ctx.teacher is None:
            items = list(anchor.future[: ctx.k])
        else:
            items = _take(ctx.ranked(anchor), ctx.k)
        prompt = render("sequential", rng, nouns=ctx.nouns, history=ctx.history_text(anchor), k=len(items))
        return ctx.list_example(self.name, anchor, items, prompt, rng)


class Count(GenTask):
    """A list of exactly n items ("recommend exactly n"), n drawn from 1..k."""

    name = "count"

    def make(self, ctx: GenContext, anchor: Anchor, rng: np.random.Generator) -> GenExample | None:
        n = int(rng.integers(1, ctx.k + 1))
        items = _take(ctx.ranked(anchor), n)
        noun = ctx.noun if n == 1 else ctx.nouns
        prompt = render("count", rng, nouns=noun, noun=ctx.noun, history=ctx.history_text(anchor), k=n)
        return ctx.list_example(self.name, anchor, items, prompt, rng)


class ControlTask(GenTask):
    """A list under a category constraint (:class:`Control`): it needs a category value for which both
    "in" and "not in" lists of ``k`` items exist, so a catalog without one gives no examples."""

    def applies(self, ctx: GenContext) -> bool:
        return bool(ctx.eligible)

    def make(self, ctx: GenContext, anchor: Any, rng: np.random.Generator) -> GenExample | None:
        return self.controlled(ctx, anchor, rng) if ctx.eligible else None

    @abstractmethod
    def controlled(self, ctx: GenContext, anchor: Any, rng: np.random.Generator) -> GenExample | None:
        """The example, knowing that ``ctx.eligible`` holds at least one value."""


class Category(ControlTask):
    """A list of k items whose <column> (does not) include C, with the user's history."""

    name = "category"

    def controlled(self, ctx: GenContext, anchor: Anchor, rng: np.random.Generator) -> GenExample | None:
        negate = bool(rng.integers(2))
        aware = anchor.part == "train" and bool(rng.integers(2))
        value = ctx.pick_value(rng, anchor, not negate, aware)
        control = Control(ctx.column, value, "not_in" if negate else "in")
        k = ctx.pick_k(rng)
        items = _take((p for p in ctx.ranked(anchor) if satisfies(ctx.values[p], control)), k)
        if len(items) < k:
            return None
        prompt = render(
            "category",
            rng,
            nouns=ctx.nouns,
            history=ctx.history_text(anchor),
            k=k,
            condition=ctx.condition(value, negate),
        )
        return ctx.list_example(self.name, anchor, items, prompt, rng, control)


class CategoryCold(ControlTask):
    """A list of k items whose <column> (does not) include C, without history: popular items of it.

    Its anchors are catalog positions only to number the attempts; the example does not depend on them.
    """

    name = "category_cold"
    anchor = "item"
    one_per_anchor = False

    def controlled(self, ctx: GenContext, anchor: int, rng: np.random.Generator) -> GenExample | None:
        negate = bool(rng.integers(2))
        value = ctx.pick_value(rng, None, not negate, False)
        control = Control(ctx.column, value, "not_in" if negate else "in")
        k = ctx.pick_k(rng)
        pool = [int(p) for p in ctx.popular if satisfies(ctx.values[p], control)][: 3 * k]
        if len(pool) < k:
            return None
        weights = ctx.counts[pool] + 1.0
        chosen = rng.choice(len(pool), size=k, replace=False, p=weights / weights.sum())
        items = [pool[i] for i in sorted(chosen)]  # in popularity order
        prompt = render("category_cold", rng, nouns=ctx.nouns, k=k, condition=ctx.condition(value, negate))
        return ctx.list_example(self.name, None, items, prompt, rng, control)


class CategoryShare(ControlTask):
    """A list of which at least / at most p% are from category C, with the user's history."""

    name = "category_share"

    def controlled(self, ctx: GenContext, anchor: Anchor, rng: np.random.Generator) -> GenExample | None:
        at_least = bool(rng.integers(2))
        share = float(_SHARES[int(rng.integers(len(_SHARES)))])
        k = max(ctx.pick_k(rng), 5) if ctx.k >= 5 else ctx.k
        aware = anchor.part == "train" and bool(rng.integers(2))
        value = ctx.pick_value(rng, anchor, at_least, aware)
        control = Control(ctx.column, value, "at_least" if at_least else "at_most", share)
        inside = math.ceil(share * k - 1e-9) if at_least else math.floor(share * k + 1e-9)
        items: list[int] = []
        n_in = n_out = 0
        for p in ctx.ranked(anchor):
            if value in ctx.values[p]:
                if n_in < inside:
                    items.append(p)
                    n_in += 1
            elif n_out < k - inside:
                items.append(p)
                n_out += 1
            if len(items) == k:
                break
        if len(items) < k:
            return None
        rule = f"{'at least' if at_least else 'at most'} {round(share * 100)}% of them are {ctx.nouns} " + (
            ctx.condition(value, False)
        )
        prompt = render(
            "category_share", rng, nouns=ctx.nouns, history=ctx.history_text(anchor), k=k, share_rule=rule
        )
        return ctx.list_example(self.name, anchor, items, prompt, rng, control)


class GroundingTask(GenTask):
    """A question about catalog items that grounds the model in the catalog: it starts from a catalog
    position and has no test part (no list to score)."""

    anchor = "item"
    has_test = False


class ItemTitle(GroundingTask):
    """Attributes -> which item: the catalog facts of an item, answered with its span."""

    name = "item_title"

    def applies(self, ctx: GenContext) -> bool:
        return bool(self._described_by(ctx.catalog))

    @staticmethod
    def _described_by(catalog: Catalog) -> list[str]:
        """The columns that describe an item without naming it."""
        return [
            c
            for c in catalog.schema.rendered_columns()
            if c in catalog.items and c not in (catalog.title_column, catalog.id_column)
        ]

    def make(self, ctx: GenContext, anchor: int, rng: np.random.Generator) -> GenExample | None:
        catalog = ctx.catalog
        columns = self._described_by(catalog)
        if not columns:
            return None
        description = catalog.render(anchor, columns=columns, max_chars=300, by_position=True).strip()
        if not description:
            return None
        prompt = render("item_title", rng, noun=ctx.noun, description=description)
        answer = render("answer_item", rng, item=ctx.span(anchor))
        return ctx.qa_example(self.name, prompt, answer, [anchor])


class ItemCategory(GroundingTask):
    """Item -> its categories in the category column."""

    name = "item_category"

    def applies(self, ctx: GenContext) -> bool:
        return ctx.column is not None

    def make(self, ctx: GenContext, anchor: int, rng: np.random.Generator) -> GenExample | None:
        values = sorted(ctx.values[anchor])
        if not values:
            return None
        label = ctx.column.replace("_", " ")
        prompt = render("item_category", rng, column=label, item=ctx.span(anchor))
        answer = render("answer_category", rng, column=label, item=ctx.span(anchor), values=", ".join(values))
        return ctx.qa_example(self.name, prompt, answer, [anchor])


class General(GroundingTask):
    """Plain questions built from the catalog: what an item is about, which of two came out first, an
    attribute's value (a small share of training, so the model keeps answering questions)."""

    name = "general"
    one_per_anchor = False

    def applies(self, ctx: GenContext) -> bool:
        return bool(_general_kinds(ctx))

    def make(self, ctx: GenContext, anchor: int, rng: np.random.Generator) -> GenExample | None:
        kinds = _general_kinds(ctx)
        if not kinds:
            return None
        kind = kinds[int(rng.integers(len(kinds)))]
        catalog = ctx.catalog
        position = anchor
        span = ctx.span(position)
        if kind == "describe":
            column = catalog.schema.by_role(ColumnRole.TEXT)[0]
            text = _first_sentences(catalog.items[column].iat[position], 300)
            if not text:
                return None
            return ctx.qa_example(
                self.name, render("general_describe", rng, item=span), text, [position], subject=kind
            )
        if kind == "compare_year":
            column = ctx.year_column()
            assert column is not None
            other = int(rng.integers(len(catalog)))
            years = catalog.items[column]
            a, b = years.iat[position], years.iat[other]
            if other == position or _missing(a) or _missing(b) or int(a) == int(b):
                return None
            first, second = (position, other) if rng.integers(2) else (other, position)
            earlier, later = (position, other) if int(a) < int(b) else (other, position)
            prompt = render("general_compare_year", rng, first=ctx.span(first), second=ctx.span(second))
            answer = render(
                "answer_compare_year",
                rng,
                earlier=ctx.span(earlier),
                later=ctx.span(later),
                earlier_year=int(years.iat[earlier]),
                later_year=int(years.iat[later]),
            )
            return ctx.qa_example(self.name, prompt, answer, [first, second], subject=kind)
        columns = ctx.attribute_columns()
        column = columns[int(rng.integers(len(columns)))]
        value = catalog.items[column].iat[position]
        if isinstance(value, (list, tuple, np.ndarray)):
            text = ", ".join(str(v) for v in value)
        elif _missing(value):
            text = ""
        else:
            unit = catalog.schema.column(column).unit
            shown = int(value) if isinstance(value, float) and value.is_integer() else value
            text = f"{shown}{' ' + unit if unit else ''}"
        if not text.strip():
            return None
        label = column.replace("_", " ")
        prompt = render("general_attribute", rng, column=label, item=span)
        answer = render("answer_attribute", rng, column=label, item=span, value=text)
        return ctx.qa_example(self.name, prompt, answer, [position], subject=kind)


def _general_kinds(ctx: GenContext) -> list[str]:
    kinds = []
    if ctx.catalog.schema.by_role(ColumnRole.TEXT):
        kinds.append("describe")
    if ctx.year_column() is not None:
        kinds.append("compare_year")
    if ctx.attribute_columns():
        kinds.append("attribute")
    return kinds


#: The eight built-in tasks by name, in their default order.
GEN_TASKS: TaskRegistry[GenTask] = TaskRegistry(
    "gen", (Sequential, Count, Category, CategoryCold, CategoryShare, ItemTitle, ItemCategory, General)
)
TASKS: tuple[str, ...] = GEN_TASKS.names
LIST_TASKS: tuple[str, ...] = tuple(name for name in TASKS if GEN_TASKS[name].has_test)
GROUNDING_TASKS: tuple[str, ...] = tuple(name for name in TASKS if not GEN_TASKS[name].has_test)


class GenTaskBuilder:
    """Builds examples of each task for the train and test parts; :func:`build_gen_data` is the front door.

    Args:
        dataset: the dataset to build from.
        seed: the seed every anchor order and every example's generator derive from.
        **settings: :class:`GenContext`'s settings (split, teacher, k, min_k, history_len, category,
            noun, system, fmt).
    """

    def __init__(self, dataset: Dataset, *, seed: int = 0, **settings: Any) -> None:
        self.ctx = GenContext(dataset, **settings)
        self.seed = seed

    def generate(
        self,
        task: str | GenTask,
        n: int,
        part: str = "train",
        *,
        avoid: Sequence[GenExample] = (),
        progress: bool = False,
    ) -> list[GenExample]:
        """Up to ``n`` examples of ``task`` (a name or a task of your own) for ``part`` ('train' or
        'test'); fewer when anchors run out.

        An example whose prompt is word for word one of ``avoid``'s (the training examples, when building
        a test part) is skipped: answering it would measure recall of a training answer, which happens
        for ``category_cold``, whose prompts come from a small space (value, mode, k, wording).
        """
        avoided = {_prompt_key(e) for e in avoid}
        task = GEN_TASKS.for_part(task, part)
        out: list[GenExample] = []
        if not task.applies(self.ctx):
            return out
        seen_keys: set[Any] = set()
        bar = tqdm(total=n, desc=f"{task.name} ({part})", disable=not progress, unit="ex")
        for attempt, key in self._attempts(task, part):
            if len(out) >= n:
                break
            if key in seen_keys:
                continue
            rng = seeded_rng(self.seed, task.name, part, attempt)
            example = self._make(task, part, key, rng)
            if example is None or (avoided and _prompt_key(example) in avoided):
                continue
            if part == "train" and task.one_per_anchor:
                seen_keys.add(key)  # one example per (user, cut point) or catalog item
            out.append(replace(example, id=f"{task.name}-{part}-{len(out):06d}"))
            bar.update(1)
        bar.close()
        return out

    def _attempts(self, task: GenTask, part: str) -> Iterator[tuple[int, Any]]:
        """(attempt number, anchor key) pairs in a seeded order, in rounds."""
        order_rng = seeded_rng(self.seed, task.name, part, "order")
        attempt = 0
        if task.anchor == "item":
            n = len(self.ctx.catalog)
            for _ in range(MAX_ROUNDS):
                for position in order_rng.permutation(n):
                    yield attempt, int(position)
                    attempt += 1
            return
        split = self.ctx.split
        if part == "test":
            users = sorted(split.test.user_ids, key=str)
            for i in seeded_rng(self.seed, "test-users").permutation(len(users)):
                yield attempt, users[int(i)]
                attempt += 1
            return
        indptr, _ = split.train.sequence_arrays()
        users = [u for u in range(split.train.n_users) if indptr[u + 1] - indptr[u] >= 2]
        for _ in range(MAX_ROUNDS):
            for i in order_rng.permutation(len(users)):
                u = users[int(i)]
                t = int(order_rng.integers(1, indptr[u + 1] - indptr[u]))  # cut before event t
                yield attempt, (u, t)
                attempt += 1

    def _make(self, task: GenTask, part: str, key: Any, rng: np.random.Generator) -> GenExample | None:
        if task.anchor == "item":
            return task.make(self.ctx, int(key), rng)
        if part == "test":
            anchor = self.ctx.test_anchor(key)
        else:
            u, t = key
            train = self.ctx.split.train
            indptr, codes = train.sequence_arrays()
            anchor = self.ctx.train_anchor(train.user_ids[u], codes[indptr[u] : indptr[u + 1]], t)
        if anchor is None or not anchor.future:
            return None
        return task.make(self.ctx, anchor, rng)


def _take(items: Iterator[int] | Sequence[int], n: int) -> list[int]:
    out = []
    for item in items:
        if len(out) >= n:
            break
        out.append(int(item))
    return out


def _prompt_key(example: GenExample) -> tuple[tuple[str, str], ...]:
    """What the model is asked, for spotting a test prompt that training already showed word for word."""
    return tuple((m["role"], m["content"]) for m in example.messages[:-1])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _first_sentences(text: Any, max_chars: int) -> str:
    if _missing(text):
        return ""
    text = " ".join(str(text).split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    end = cut.rfind(". ")
    return cut[: end + 1] if end > max_chars // 3 else cut.rsplit(" ", 1)[0] + "..."


def build_gen_data(
    dataset: Dataset,
    tasks: Sequence[str | GenTask] | None = None,
    *,
    per_task: int = 500,
    test_per_task: int = 100,
    general_share: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    **settings: Any,
) -> GenData:
    """Train and test examples of ``tasks`` (default: all eight; names or tasks of your own).

    ``per_task`` training examples per task, except ``general``, which makes up ``general_share`` of the
    training set; ``test_per_task`` test examples per task with a test part (one per sampled test user).
    ``settings`` are :class:`GenContext`'s (split, teacher, k, min_k, history_len, category, noun,
    system).
    """
    chosen = GEN_TASKS.resolve(list(tasks) if tasks is not None else TASKS)
    if not 0.0 <= general_share < 1.0:
        raise ValueError(f"general_share must be in [0, 1), got {general_share}")
    builder = GenTaskBuilder(dataset, seed=seed, **settings)
    ctx = builder.ctx
    train, test = build_parts(
        chosen,
        lambda task, n, part, trained: builder.generate(task, n, part, avoid=trained, progress=progress),
        lambda task, part: per_task if part == "train" else test_per_task,
        fills_share=lambda task: isinstance(task, General),
        share=general_share,
    )
    meta = {
        "dataset": dataset.name,
        "tasks": [task.name for task in chosen],
        "per_task": per_task,
        "test_per_task": test_per_task,
        "general_share": general_share,
        "k": ctx.k,
        "min_k": ctx.min_k,
        "history_len": ctx.history_len,
        "category": ctx.column,
        # asked for, yet the catalog can give them no example (no category column or no usable value)
        "inapplicable": [task.name for task in chosen if not task.applies(ctx)],
        "noun": ctx.noun,
        "system": ctx.system,
        "seed": seed,
        "split": ctx.split.protocol,
        "teacher": _describe_teacher(ctx.teacher),
        "span": {"start": ctx.names.fmt.start, "end": ctx.names.fmt.end},
        "counts": {},
    }
    data = GenData(train, test, meta)
    meta["counts"] = data.counts()
    return data


def _describe_teacher(teacher: Any | None) -> dict[str, Any] | None:
    if teacher is None:
        return None
    params = teacher.get_params() if hasattr(teacher, "get_params") else {}
    return {"class": type(teacher).__name__, "params": {k: plain_value(v) for k, v in params.items()}}
