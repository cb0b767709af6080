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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from recai.rec.base import Recommender

LIST_TASKS: tuple[str, ...] = ("sequential", "count", "category", "category_cold", "category_share")
GROUNDING_TASKS: tuple[str, ...] = ("item_title", "item_category", "general")
TASKS: tuple[str, ...] = LIST_TASKS + GROUNDING_TASKS
#: Rounds over the anchors before a task gives up short of its count.
MAX_ROUNDS = 20
_SHARES = (0.2, 0.4, 0.6, 0.8)


def _rng(*parts: object) -> np.random.Generator:
    """A generator from a stable hash of ``parts`` (Python's ``hash`` of text changes between runs)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)])


def category_column(catalog: Catalog, column: str | None = None) -> str:
    """The column used for category control: ``column``, else the first multi-valued categorical column,
    else the first categorical one."""
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
    raise ValueError("the catalog has no categorical column for category control")


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
    """A moment in one user's log: what came before (positions, oldest first) and what came next."""

    user: Any
    history: tuple[int, ...]
    future: tuple[int, ...]  # the next item first, then later ones not in the history


class GenTaskBuilder:
    """Builds examples of each task for the train and test parts; :func:`build_gen_data` is the front door."""

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
        seed: int = 0,
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
        self.seed = seed
        self.names = ItemNames(self.catalog, fmt)
        n = len(self.catalog)
        self.counts = self.split.train.item_counts().astype(np.float64)
        self.popular = np.lexsort((np.arange(n), -self.counts))  # most popular first, ties by position
        self.history_log = self.split.train_and_valid()
        self.column = category_column(self.catalog, category)
        self.multi = self.catalog.schema.column(self.column).role is ColumnRole.MULTI_CATEGORICAL
        self.values = item_values(self.catalog, self.column)
        sizes: dict[str, int] = {}
        for vals in self.values:
            for v in vals:
                sizes[v] = sizes.get(v, 0) + 1
        # A value is usable when both "in" and "not in" lists of k items exist.
        self.eligible = sorted(v for v, c in sizes.items() if c >= k and n - c >= k)
        self.value_weights = np.array([sizes[v] for v in self.eligible], dtype=np.float64)
        self._teacher_cache: dict[tuple[int, ...], list[int]] = {}

    # ------------------------------------------------------------ anchors
    def _train_anchor(self, user: Any, seq: np.ndarray, t: int) -> Anchor | None:
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
        return Anchor(user, history, tuple(future))

    def _test_anchor(self, user: Any) -> Anchor | None:
        target = int(self.split.test.sequence(user)[-1])
        try:
            history = tuple(int(i) for i in self.history_log.sequence(user))
        except KeyError:
            return None
        if not history or target in history:
            return None
        return Anchor(user, history, (target,))

    def _teacher_top(self, history: tuple[int, ...], n: int) -> list[int]:
        cached = self._teacher_cache.get(history)
        if cached is None or len(cached) < n:
            positions, _ = self.teacher.recommend(list(history), n)
            cached = self._teacher_cache[history] = [int(p) for p in positions]
        return cached[:n]

    def _ranked(self, anchor: Anchor) -> Iterator[int]:
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
    def _span(self, position: int) -> str:
        return self.names.span(position)

    def _history_text(self, anchor: Anchor) -> str:
        return "\n".join(f"- {self._span(p)}" for p in anchor.history[-self.history_len :])

    def _answer_list(self, items: Sequence[int], rng: np.random.Generator) -> str:
        listing = "\n".join(f"{i}. {self._span(p)}" for i, p in enumerate(items, start=1))
        if len(items) == 1:
            return render("answer_one", rng, noun=self.noun, list=listing)
        return render("answer_list", rng, k=len(items), nouns=self.nouns, list=listing)

    def _condition(self, value: str, negate: bool) -> str:
        label = self.column.replace("_", " ")
        if self.multi:
            return f"whose {label} {'do not include' if negate else 'include'} {value}"
        return f"whose {label} {'is not' if negate else 'is'} {value}"

    def _messages(self, user_text: str, answer: str) -> tuple[dict[str, str], ...]:
        messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": answer})
        return tuple(messages)

    def _ids(self, positions: Sequence[int]) -> tuple[Any, ...]:
        ids = self.catalog.ids
        return tuple(plain_value(ids[int(p)]) for p in positions)

    def _list_example(
        self,
        task: str,
        anchor: Anchor | None,
        items: Sequence[int],
        prompt: str,
        rng: np.random.Generator,
        control: Control | None = None,
    ) -> GenExample:
        history = anchor.history[-self.history_len :] if anchor is not None else ()
        return GenExample(
            id="",
            task=task,
            messages=self._messages(prompt, self._answer_list(items, rng)),
            items=self._ids(items),
            target=self._ids(anchor.future[:1])[0] if anchor is not None and anchor.future else None,
            history=self._ids(history),
            seen=self._ids(anchor.history) if anchor is not None else (),
            k=len(items),
            control=control,
            user=plain_value(anchor.user) if anchor is not None else None,
        )

    def _pick_k(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.min_k, self.k + 1))

    def _pick_value(
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

    # -------------------------------------------------------------- tasks
    def sequential(self, anchor: Anchor, rng: np.random.Generator, part: str) -> GenExample | None:
        if part == "train" and self.teacher is None:
            items = list(anchor.future[: self.k])
        else:
            items = _take(self._ranked(anchor), self.k)
        prompt = render("sequential", rng, nouns=self.nouns, history=self._history_text(anchor), k=len(items))
        return self._list_example("sequential", anchor, items, prompt, rng)

    def count(self, anchor: Anchor, rng: np.random.Generator, part: str) -> GenExample | None:
        n = int(rng.integers(1, self.k + 1))
        items = _take(self._ranked(anchor), n)
        noun = self.noun if n == 1 else self.nouns
        prompt = render("count", rng, nouns=noun, noun=self.noun, history=self._history_text(anchor), k=n)
        return self._list_example("count", anchor, items, prompt, rng)

    def category(self, anchor: Anchor, rng: np.random.Generator, part: str) -> GenExample | None:
        if not self.eligible:
            return None
        negate = bool(rng.integers(2))
        aware = part == "train" and bool(rng.integers(2))
        value = self._pick_value(rng, anchor, not negate, aware)
        control = Control(self.column, value, "not_in" if negate else "in")
        k = self._pick_k(rng)
        items = _take((p for p in self._ranked(anchor) if satisfies(self.values[p], control)), k)
        if len(items) < k:
            return None
        prompt = render(
            "category",
            rng,
            nouns=self.nouns,
            history=self._history_text(anchor),
            k=k,
            condition=self._condition(value, negate),
        )
        return self._list_example("category", anchor, items, prompt, rng, control)

    def category_cold(self, rng: np.random.Generator) -> GenExample | None:
        if not self.eligible:
            return None
        negate = bool(rng.integers(2))
        value = self._pick_value(rng, None, not negate, False)
        control = Control(self.column, value, "not_in" if negate else "in")
        k = self._pick_k(rng)
        pool = [int(p) for p in self.popular if satisfies(self.values[p], control)][: 3 * k]
        if len(pool) < k:
            return None
        weights = self.counts[pool] + 1.0
        chosen = rng.choice(len(pool), size=k, replace=False, p=weights / weights.sum())
        items = [pool[i] for i in sorted(chosen)]  # in popularity order
        prompt = render("category_cold", rng, nouns=self.nouns, k=k, condition=self._condition(value, negate))
        return self._list_example("category_cold", None, items, prompt, rng, control)

    def category_share(self, anchor: Anchor, rng: np.random.Generator, part: str) -> GenExample | None:
        if not self.eligible:
            return None
        at_least = bool(rng.integers(2))
        share = float(_SHARES[int(rng.integers(len(_SHARES)))])
        k = max(self._pick_k(rng), 5) if self.k >= 5 else self.k
        aware = part == "train" and bool(rng.integers(2))
        value = self._pick_value(rng, anchor, at_least, aware)
        control = Control(self.column, value, "at_least" if at_least else "at_most", share)
        inside = math.ceil(share * k - 1e-9) if at_least else math.floor(share * k + 1e-9)
        items: list[int] = []
        n_in = n_out = 0
        for p in self._ranked(anchor):
            if value in self.values[p]:
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
        rule = f"{'at least' if at_least else 'at most'} {round(share * 100)}% of them are {self.nouns} " + (
            self._condition(value, False)
        )
        prompt = render(
            "category_share", rng, nouns=self.nouns, history=self._history_text(anchor), k=k, share_rule=rule
        )
        return self._list_example("category_share", anchor, items, prompt, rng, control)

    def item_title(self, position: int, rng: np.random.Generator) -> GenExample | None:
        catalog = self.catalog
        columns = [
            c
            for c in catalog.schema.rendered_columns()
            if c in catalog.items and c not in (catalog.title_column, catalog.id_column)
        ]
        if not columns:
            return None
        description = catalog.render(position, columns=columns, max_chars=300, by_position=True).strip()
        if not description:
            return None
        prompt = render("item_title", rng, noun=self.noun, description=description)
        answer = render("answer_item", rng, item=self._span(position))
        return self._qa_example("item_title", prompt, answer, [position])

    def item_category(self, position: int, rng: np.random.Generator) -> GenExample | None:
        values = sorted(self.values[position])
        if not values:
            return None
        label = self.column.replace("_", " ")
        prompt = render("item_category", rng, column=label, item=self._span(position))
        answer = render(
            "answer_category", rng, column=label, item=self._span(position), values=", ".join(values)
        )
        return self._qa_example("item_category", prompt, answer, [position])

    def general(self, position: int, rng: np.random.Generator) -> GenExample | None:
        kinds = self._general_kinds()
        if not kinds:
            return None
        kind = kinds[int(rng.integers(len(kinds)))]
        catalog = self.catalog
        span = self._span(position)
        if kind == "describe":
            column = catalog.schema.by_role(ColumnRole.TEXT)[0]
            text = _first_sentences(catalog.items[column].iat[position], 300)
            if not text:
                return None
            return self._qa_example(
                "general", render("general_describe", rng, item=span), text, [position], subject=kind
            )
        if kind == "compare_year":
            column = self._year_column()
            assert column is not None
            other = int(rng.integers(len(catalog)))
            years = catalog.items[column]
            a, b = years.iat[position], years.iat[other]
            if other == position or _missing(a) or _missing(b) or int(a) == int(b):
                return None
            first, second = (position, other) if rng.integers(2) else (other, position)
            earlier, later = (position, other) if int(a) < int(b) else (other, position)
            prompt = render("general_compare_year", rng, first=self._span(first), second=self._span(second))
            answer = render(
                "answer_compare_year",
                rng,
                earlier=self._span(earlier),
                later=self._span(later),
                earlier_year=int(years.iat[earlier]),
                later_year=int(years.iat[later]),
            )
            return self._qa_example("general", prompt, answer, [first, second], subject=kind)
        columns = self._attribute_columns()
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
        return self._qa_example("general", prompt, answer, [position], subject=kind)

    def _qa_example(
        self, task: str, prompt: str, answer: str, items: Sequence[int], *, subject: str | None = None
    ) -> GenExample:
        return GenExample(
            id="",
            task=task,
            messages=self._messages(prompt, answer),
            items=self._ids(items),
            meta={"kind": subject} if subject else {},
        )

    def _year_column(self) -> str | None:
        for name in ("year", "release_year"):
            if name in self.catalog.items and self.catalog.schema.column(name).role is ColumnRole.NUMERIC:
                return name
        return None

    def _attribute_columns(self) -> list[str]:
        schema = self.catalog.schema
        roles = (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL, ColumnRole.NUMERIC)
        skip = {self.column, self._year_column()}  # the year is already in every display title
        return [
            c.name
            for c in schema.columns
            if c.role in roles and c.name in self.catalog.items and c.name not in skip
        ]

    def _general_kinds(self) -> list[str]:
        kinds = []
        if self.catalog.schema.by_role(ColumnRole.TEXT):
            kinds.append("describe")
        if self._year_column() is not None:
            kinds.append("compare_year")
        if self._attribute_columns():
            kinds.append("attribute")
        return kinds

    # ----------------------------------------------------------- drivers
    def generate(
        self,
        task: str,
        n: int,
        part: str = "train",
        *,
        avoid: Sequence[GenExample] = (),
        progress: bool = False,
    ) -> list[GenExample]:
        """Up to ``n`` examples of ``task`` for ``part`` ('train' or 'test'); fewer when anchors run out.

        An example whose prompt is word for word one of ``avoid``'s (the training examples, when building
        a test part) is skipped: answering it would measure recall of a training answer, which happens
        for ``category_cold``, whose prompts come from a small space (value, mode, k, wording).
        """
        avoided = {_prompt_key(e) for e in avoid}
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; available: {', '.join(TASKS)}")
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', got {part!r}")
        if part == "test" and task in GROUNDING_TASKS:
            raise ValueError(f"task '{task}' has no test part (it grounds the model in the catalog)")
        out: list[GenExample] = []
        seen_keys: set[Any] = set()
        bar = tqdm(total=n, desc=f"{task} ({part})", disable=not progress, unit="ex")
        for attempt, key in self._attempts(task, part):
            if len(out) >= n:
                break
            if key in seen_keys:
                continue
            rng = _rng(self.seed, task, part, attempt)
            example = self._make(task, part, key, rng)
            if example is None or (avoided and _prompt_key(example) in avoided):
                continue
            if part == "train" and task not in ("category_cold", "general"):
                seen_keys.add(key)  # one example per (user, cut point) or catalog item
            out.append(_with_id(example, f"{task}-{part}-{len(out):06d}"))
            bar.update(1)
        bar.close()
        return out

    def _attempts(self, task: str, part: str) -> Iterator[tuple[int, Any]]:
        """(attempt number, anchor key) pairs in a seeded order, in rounds."""
        order_rng = _rng(self.seed, task, part, "order")
        attempt = 0
        if task in GROUNDING_TASKS or task == "category_cold":
            n = len(self.catalog)
            for _ in range(MAX_ROUNDS):
                for position in order_rng.permutation(n):
                    yield attempt, int(position)
                    attempt += 1
            return
        if part == "test":
            users = sorted(self.split.test.user_ids, key=str)
            for i in _rng(self.seed, "test-users").permutation(len(users)):
                yield attempt, users[int(i)]
                attempt += 1
            return
        indptr, _ = self.split.train.sequence_arrays()
        users = [u for u in range(self.split.train.n_users) if indptr[u + 1] - indptr[u] >= 2]
        for _ in range(MAX_ROUNDS):
            for i in order_rng.permutation(len(users)):
                u = users[int(i)]
                t = int(order_rng.integers(1, indptr[u + 1] - indptr[u]))  # cut before event t
                yield attempt, (u, t)
                attempt += 1

    def _make(self, task: str, part: str, key: Any, rng: np.random.Generator) -> GenExample | None:
        if task == "category_cold":
            return self.category_cold(rng)
        if task in GROUNDING_TASKS:
            return getattr(self, task)(int(key), rng)
        if part == "test":
            anchor = self._test_anchor(key)
        else:
            u, t = key
            indptr, codes = self.split.train.sequence_arrays()
            anchor = self._train_anchor(self.split.train.user_ids[u], codes[indptr[u] : indptr[u + 1]], t)
        if anchor is None or not anchor.future:
            return None
        return getattr(self, task)(anchor, rng, part)


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


def _with_id(example: GenExample, new_id: str) -> GenExample:
    from dataclasses import replace

    return replace(example, id=new_id)


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
    tasks: Sequence[str] | None = None,
    *,
    per_task: int = 500,
    test_per_task: int = 100,
    general_share: float = 0.05,
    split: Split | None = None,
    teacher: Any | None = None,
    k: int = 10,
    min_k: int = 3,
    history_len: int = 10,
    category: str | None = None,
    noun: str | None = None,
    system: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> GenData:
    """Train and test examples of ``tasks`` (default: all eight).

    ``per_task`` training examples per task, except ``general``, which makes up ``general_share`` of the
    training set; ``test_per_task`` test examples per list task (one per sampled test user).
    """
    tasks = tuple(tasks) if tasks is not None else TASKS
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; available: {', '.join(TASKS)}")
    if not 0.0 <= general_share < 1.0:
        raise ValueError(f"general_share must be in [0, 1), got {general_share}")
    builder = GenTaskBuilder(
        dataset,
        split=split,
        teacher=teacher,
        k=k,
        min_k=min_k,
        history_len=history_len,
        category=category,
        noun=noun,
        system=system,
        seed=seed,
    )
    train: list[GenExample] = []
    test: list[GenExample] = []
    for task in tasks:
        if task == "general":
            continue
        made = builder.generate(task, per_task, "train", progress=progress)
        train += made
        if task in LIST_TASKS and test_per_task > 0:
            test += builder.generate(task, test_per_task, "test", avoid=made, progress=progress)
    if "general" in tasks and general_share > 0:
        n_general = max(1, round(general_share / (1.0 - general_share) * len(train)))
        train += builder.generate("general", n_general, "train", progress=progress)
    meta = {
        "dataset": dataset.name,
        "tasks": list(tasks),
        "per_task": per_task,
        "test_per_task": test_per_task,
        "general_share": general_share,
        "k": k,
        "min_k": min_k,
        "history_len": history_len,
        "category": builder.column,
        "noun": builder.noun,
        "system": system,
        "seed": seed,
        "split": builder.split.protocol,
        "teacher": _describe_teacher(teacher),
        "span": {"start": builder.names.fmt.start, "end": builder.names.fmt.end},
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
