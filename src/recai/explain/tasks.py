"""Alignment data for RecExplainer, labelled by running the target recommender (never by the held-out log).

Tasks (each example from a seeded generator of its own, so adding a task changes no other):

- ``retrieval``: a user's history -> the target's top-k for it, its top-1 first;
- ``ranking``: a user and a handful of items (shown shuffled) -> those items in the target's order;
- ``classification``: a user and an item -> ``yes`` when the target ranks the item in its top share for
  that user, ``no`` when in its bottom share (the labels alternate: each part is balanced exactly).
  ``negatives="matched"`` picks each ``no`` item among the bottom share as close as it gets to a ``yes``
  item of the same user in how often it is in the target's top share for *training* users, so that
  an item's popularity with the target answers fewer questions (where the bottom share has no item as
  popular, it still helps);
- ``item_title`` / ``item_attributes`` / ``item_similar``: an item -> its title; its title and
  attributes; the items nearest to it in the target's item space;
- ``history``: a user -> the user's history (reconstruction from the user vector);
- ``uid2summary``: a user -> a short summary of their taste, written from data (the category values
  that recur in the history and a couple of typical items; :mod:`recai.explain.profiles`);
- ``feature2iid`` / ``description2iid``: an item's catalog features / its text description, title
  masked -> the item's title;
- ``general``: plain catalog questions (:mod:`recai.gen.tasks`' ``general`` task) so the LLM keeps talking.

``item_title`` and ``history`` are *opaque*: the user or item is given as an embedding only (in
behaviour mode the answer would be copied from the prompt, so they are skipped there). ``uid2summary``
works in all three modes (a summary is not a copy of the history titles). ``feature2iid`` and
``description2iid`` have no slot: the item is the answer, so they read the same in every mode. Users are split
into training and test users (``test_share``), so test histories were never seen in training.

Each task is an :class:`ExplainTask` (:class:`recai.train.tasks.Task`): to add one, subclass it, set
``name``, ``anchor`` and ``has_test``, implement ``make(ctx, anchor, rng)`` with the
:class:`ExplainContext` helpers, and pass an instance to :func:`build_explain_data` among the task names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import plain_value
from recai.data.splits import Split
from recai.explain.examples import ExplainData, ExplainExample, item_slot, user_slot
from recai.explain.profiles import item_description, item_features, user_summary
from recai.explain.target import TargetModel
from recai.gen.examples import GenExample
from recai.gen.items import DEFAULT_FORMAT
from recai.gen.tasks import GenTaskBuilder
from recai.llm.prompting import render_variant
from recai.train.tasks import Task, TaskRegistry, build_parts

MAX_ATTEMPTS = 20
NEGATIVES: tuple[str, ...] = ("bottom", "matched")
#: Training users whose top shares give each item's popularity with the target (matched negatives).
MATCH_USERS = 500


def _rng(*parts: Any) -> np.random.Generator:
    """The explain pillar's seeded generator (a hash of ``repr(parts)``; kept so rebuilds stay identical)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def numbered(titles: Sequence[str]) -> str:
    """An answer list, one item per line (what :func:`recai.evaluate.parsing.parse_item_list` reads)."""
    return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, start=1))


@dataclass(frozen=True)
class UserAnchor:
    """A user and the history the target sees, for one attempt at a user task.

    Attributes:
        user: the user's id.
        history: catalog positions the target sees, oldest first (a random cut of a training user's log
            in the train part, a test user's latest events in the test part).
        part: "train" or "test".
        index: the number the example gets in its part (classification alternates its label on it).
    """

    user: Any
    history: tuple[int, ...]
    part: str
    index: int


class ExplainContext:
    """What every explain task reads: the catalog, the frozen target recommender, the users split into
    training and test users, and the helpers that word prompts and build examples.

    Args:
        dataset: the dataset whose catalog and log the examples come from.
        target: the frozen recommender that labels every example.
        split: the leave-one-out split whose training log gives histories (default: the dataset's own).
        k: items in a retrieval or similar-items answer.
        n_candidates: items shown in a ranking question.
        top_share: the share of the target's ranking that counts as a ``yes`` in classification.
        bottom_share: the share at the bottom of the ranking that ``no`` items come from.
        history_len: the most history items the target sees.
        min_history: the fewest training events a user needs.
        test_share: the share of users held out as test users.
        negatives: "bottom" (any bottom-share item) or "matched" (as popular with the target as a
            ``yes`` item of the same user).
        noun: what an item is called in prompts.
        seed: the seed of the user split and of the matched-negative counts.
    """

    def __init__(
        self,
        dataset: Dataset,
        target: TargetModel,
        *,
        split: Split | None = None,
        k: int = 5,
        n_candidates: int = 5,
        top_share: float = 0.1,
        bottom_share: float = 0.5,
        history_len: int = 10,
        min_history: int = 2,
        test_share: float = 0.2,
        negatives: str = "bottom",
        noun: str = "item",
        seed: int = 0,
    ) -> None:
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        if not 0 < top_share < 1 or not 0 < bottom_share < 1 or top_share + bottom_share > 1:
            raise ValueError(
                f"need 0 < top_share, bottom_share and a sum <= 1, got {top_share}, {bottom_share}"
            )
        if k < 1 or n_candidates < 2 or history_len < 1 or not 1 <= min_history <= history_len:
            raise ValueError("need k >= 1, n_candidates >= 2 and 1 <= min_history <= history_len")
        if not 0 < test_share < 1:
            raise ValueError(f"test_share must be in (0, 1), got {test_share}")
        if target.n_items != len(dataset.catalog):
            raise ValueError(
                f"the target scores {target.n_items} items, the catalog has {len(dataset.catalog)}"
            )
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.target = target
        self.split = split or dataset.split("leave_one_out")
        self.k, self.n_candidates = k, n_candidates
        self.top_share, self.bottom_share = top_share, bottom_share
        self.history_len, self.min_history = history_len, min_history
        self.negatives = negatives
        self.noun, self.seed = noun, seed
        self._top_share_counts: np.ndarray | None = None
        log = self.split.train
        indptr, codes = log.sequence_arrays()
        self._sequences = {
            u: codes[indptr[i] : indptr[i + 1]]
            for i, u in enumerate(log.user_ids)
            if indptr[i + 1] - indptr[i] >= min_history
        }
        users = sorted(self._sequences, key=lambda u: str(u))
        order = _rng(seed, "users").permutation(len(users))
        n_test = max(1, round(test_share * len(users)))
        if len(users) < 2:
            raise ValueError(
                f"explain data needs at least 2 users with {min_history}+ training events (one for training, "
                f"one for test), found {len(users)}"
            )
        n_test = min(n_test, len(users) - 1)  # test users never become training users
        self.test_users = [users[i] for i in order[:n_test]]
        self.train_users = [users[i] for i in order[n_test:]]
        self.titles = [self.catalog.display_title(i) for i in range(len(self.catalog))]

    def item_id(self, position: int) -> Any:
        """The catalog id (a plain Python value) of a position."""
        return plain_value(self.catalog.ids[int(position)])

    def prompt(self, task: str, rng: np.random.Generator, **values: Any) -> str:
        """One of the task's wordings, drawn last so that the wordings never change which users and
        items an example is about."""
        return render_variant(
            task, rng, package="recai.explain", noun=self.noun, nouns=f"{self.noun}s", **values
        )

    def user_anchor(self, part: str, rng: np.random.Generator, index: int) -> UserAnchor:
        """A user and the history the target sees: a random cut of a training user's log (train), or the
        most recent events of a test user's log (test)."""
        users = self.train_users if part == "train" else self.test_users
        user = users[int(rng.integers(len(users)))]
        seq = self._sequences[user]
        end = int(rng.integers(self.min_history, len(seq) + 1)) if part == "train" else len(seq)
        return UserAnchor(user, tuple(int(p) for p in seq[max(0, end - self.history_len) : end]), part, index)

    def example(
        self,
        task: ExplainTask,
        prompt: str,
        answer: str,
        *,
        anchor: UserAnchor | None = None,
        **fields: Any,
    ) -> ExplainExample:
        """The example of ``task``: ``prompt`` (with slots) answered by ``answer``, about ``anchor``'s
        user and history when given; ``fields`` are :class:`ExplainExample`'s (items, candidates, label)."""
        return ExplainExample(
            id="",
            task=task.name,
            messages=({"role": "user", "content": prompt}, {"role": "assistant", "content": answer}),
            user=plain_value(anchor.user) if anchor is not None else None,
            history=tuple(self.item_id(p) for p in anchor.history) if anchor is not None else (),
            opaque=task.opaque,
            **fields,
        )

    def item_example(
        self,
        task: ExplainTask,
        position: int,
        answer: str,
        items: Sequence[int],
        rng: np.random.Generator,
        **values: Any,
    ) -> ExplainExample:
        """A question about the item at ``position`` (given as a slot) answered by ``answer``."""
        prompt = self.prompt(task.name, rng, item=item_slot(self.item_id(position)), **values)
        return self.example(task, prompt, answer, items=tuple(self.item_id(p) for p in items))

    def general_questions(self, n: int) -> list[GenExample]:
        """Up to ``n`` of the gen pillar's plain catalog questions (the anchors of "question" tasks)."""
        builder = GenTaskBuilder(self.dataset, split=self.split, k=1, min_k=1, noun=self.noun, seed=self.seed)
        return builder.generate("general", n, "train", progress=False)

    def top_share_counts(self) -> np.ndarray:
        """Per item (position), how many training users have it in the target's top share (their latest
        history; up to ``MATCH_USERS`` users, seeded): the item's popularity with the target."""
        if self._top_share_counts is None:
            users = list(self.train_users)
            if len(users) > MATCH_USERS:
                keep = _rng(self.seed, "matched").choice(len(users), MATCH_USERS, replace=False)
                users = [users[i] for i in sorted(keep)]
            counts = np.zeros(len(self.catalog), dtype=np.int64)
            for user in users:
                ranking = self.target.ranking([int(p) for p in self._sequences[user][-self.history_len :]])
                counts[ranking[: max(1, int(len(ranking) * self.top_share))]] += 1
            self._top_share_counts = counts
        return self._top_share_counts


class ExplainTask(Task[ExplainContext, Any, ExplainExample]):
    """Base of the explain pillar's tasks: one alignment example, labelled by running the target.

    A ``"user"`` task gets a :class:`UserAnchor`, an ``"item"`` task a catalog position (each item at
    most once per part, in a seeded order), a ``"question"`` task one of the gen pillar's general
    questions. Build examples with :meth:`ExplainContext.example` or :meth:`ExplainContext.item_example`.

    Attributes:
        anchor: "user", "item" or "question": what :meth:`make` starts from.
        has_test: whether the task has a test part (an alignment metric scores it).
        opaque: users and items are given as embeddings only (in behaviour mode the answer would be
            copied from the prompt, so the task is skipped there).
        distinct: drop an example whose user, history, items and candidates an earlier one of its part has.
    """

    anchor: ClassVar[Literal["user", "item", "question"]] = "user"
    opaque: ClassVar[bool] = False
    distinct: ClassVar[bool] = True


class Retrieval(ExplainTask):
    """A user's history -> the target's top-k for it, its top-1 first."""

    name = "retrieval"

    def make(
        self, ctx: ExplainContext, anchor: UserAnchor, rng: np.random.Generator
    ) -> ExplainExample | None:
        top = ctx.target.ranking(list(anchor.history))[: ctx.k]
        prompt = ctx.prompt(self.name, rng, user=user_slot(), k=len(top))
        return ctx.example(
            self, prompt, numbered([ctx.titles[p] for p in top]), anchor=anchor,
            items=tuple(ctx.item_id(p) for p in top),
        )  # fmt: skip


class Ranking(ExplainTask):
    """A user and a handful of items (shown shuffled) -> those items in the target's order."""

    name = "ranking"

    def make(
        self, ctx: ExplainContext, anchor: UserAnchor, rng: np.random.Generator
    ) -> ExplainExample | None:
        ranking = ctx.target.ranking(list(anchor.history))
        if len(ranking) < ctx.n_candidates:
            return None
        ranks = np.sort(rng.choice(len(ranking), ctx.n_candidates, replace=False))
        ordered = [int(ranking[r]) for r in ranks]
        shown = [ordered[i] for i in rng.permutation(len(ordered))]
        candidates = "\n".join(f"- {item_slot(ctx.item_id(p))}" for p in shown)
        prompt = ctx.prompt(self.name, rng, user=user_slot(), candidates=candidates)
        return ctx.example(
            self, prompt, numbered([ctx.titles[p] for p in ordered]), anchor=anchor,
            items=tuple(ctx.item_id(p) for p in ordered), candidates=tuple(ctx.item_id(p) for p in shown),
        )  # fmt: skip


class Classification(ExplainTask):
    """A user and an item -> ``yes`` when the target ranks the item in its top share, ``no`` when in its
    bottom share.

    The labels alternate with the example's index, so each part is balanced exactly and always answering
    one label scores 0.5 (a coin per example left the demo benchmark 60/40 in training, 36/64 in test).
    """

    name = "classification"

    def make(
        self, ctx: ExplainContext, anchor: UserAnchor, rng: np.random.Generator
    ) -> ExplainExample | None:
        ranking = ctx.target.ranking(list(anchor.history))
        n_top = max(1, int(len(ranking) * ctx.top_share))
        n_bottom = max(1, int(len(ranking) * ctx.bottom_share))
        positive = anchor.index % 2 == 0
        pool = ranking[:n_top] if positive else ranking[len(ranking) - n_bottom :]
        if not positive and ctx.negatives == "matched":
            counts = ctx.top_share_counts()
            wanted = counts[int(ranking[int(rng.integers(n_top))])]  # a yes item's popularity, this user
            gap = np.abs(counts[pool] - wanted)
            pool = pool[gap == gap.min()]
        item = int(pool[int(rng.integers(len(pool)))])
        prompt = ctx.prompt(self.name, rng, user=user_slot(), item=item_slot(ctx.item_id(item)))
        label = "yes" if positive else "no"
        return ctx.example(
            self, prompt, f"{label.capitalize()}.", anchor=anchor, items=(ctx.item_id(item),), label=label
        )


class ItemTitle(ExplainTask):
    """An item given as its vector only -> its display title."""

    name = "item_title"
    anchor = "item"
    opaque = True

    def make(self, ctx: ExplainContext, anchor: int, rng: np.random.Generator) -> ExplainExample | None:
        return ctx.item_example(self, anchor, ctx.titles[anchor], [anchor], rng)


class ItemAttributes(ExplainTask):
    """An item -> its title and catalog attributes."""

    name = "item_attributes"
    anchor = "item"
    has_test = False

    def make(self, ctx: ExplainContext, anchor: int, rng: np.random.Generator) -> ExplainExample | None:
        text = ctx.catalog.render(anchor, by_position=True, max_chars=240)
        return ctx.item_example(self, anchor, text, [anchor], rng)


class ItemSimilar(ExplainTask):
    """An item -> the items nearest to it in the target's item space."""

    name = "item_similar"
    anchor = "item"

    def make(self, ctx: ExplainContext, anchor: int, rng: np.random.Generator) -> ExplainExample | None:
        similar = ctx.target.similar(anchor, ctx.k)
        answer = numbered([ctx.titles[p] for p in similar])
        return ctx.item_example(self, anchor, answer, similar, rng, k=len(similar))


class History(ExplainTask):
    """A user given as a vector only -> the user's history (reconstruction from the user vector)."""

    name = "history"
    opaque = True

    def make(
        self, ctx: ExplainContext, anchor: UserAnchor, rng: np.random.Generator
    ) -> ExplainExample | None:
        prompt = ctx.prompt(self.name, rng, user=user_slot())
        return ctx.example(
            self, prompt, numbered([ctx.titles[p] for p in anchor.history]), anchor=anchor,
            items=tuple(ctx.item_id(p) for p in anchor.history),
        )  # fmt: skip


class UserSummaryTask(ExplainTask):
    """A user -> a short summary of their taste, written from data, never by an LLM (RecExplainer's
    uid2summary): the category values that recur in the history the target sees, and a couple of its
    items that carry the most of them (:func:`recai.explain.profiles.user_summary`). Every mode: the
    user's vector (intention), their history (behaviour) or both (hybrid)."""

    name = "uid2summary"

    def make(
        self, ctx: ExplainContext, anchor: UserAnchor, rng: np.random.Generator
    ) -> ExplainExample | None:
        summary = user_summary(ctx.catalog, anchor.history)
        prompt = ctx.prompt(self.name, rng, user=user_slot())
        return ctx.example(
            self, prompt, summary.text(ctx.catalog, ctx.noun), anchor=anchor,
            items=tuple(ctx.item_id(p) for p in summary.items),
        )  # fmt: skip


class ItemFromText(ExplainTask):
    """Base of the tasks that name an item from text about it with its title masked: the item is the
    answer, not a slot, so they read the same in every mode; items whose text is empty are skipped.

    Attributes:
        profile: the text an item is named from (:mod:`recai.explain.profiles`); the metric accepts any
            item with the same text, since the question cannot tell such items apart.
    """

    anchor = "item"
    profile: ClassVar[Callable[[Catalog, int], str]]

    def make(self, ctx: ExplainContext, anchor: int, rng: np.random.Generator) -> ExplainExample | None:
        text = self.profile(ctx.catalog, anchor)
        if not text:
            return None
        prompt = ctx.prompt(self.name, rng, text=text)
        return ctx.example(self, prompt, ctx.titles[anchor], items=(ctx.item_id(anchor),))


class FeaturesToItem(ItemFromText):
    """An item's catalog features (categories, numbers, dates; title masked) -> its title (RecExplainer's
    feature2iid); a catalog of titles only has no examples."""

    name = "feature2iid"
    profile = staticmethod(item_features)


class DescriptionToItem(ItemFromText):
    """An item's text description (its text columns, else its features; title masked) -> its title
    (RecExplainer's description2iid)."""

    name = "description2iid"
    profile = staticmethod(item_description)


class General(ExplainTask):
    """Plain catalog questions (the gen pillar's ``general`` task, item-span markers removed), so the LLM
    keeps talking; they make up a share of training rather than a count."""

    name = "general"
    anchor = "question"
    has_test = False
    distinct = False

    def make(
        self, ctx: ExplainContext, anchor: GenExample, rng: np.random.Generator
    ) -> ExplainExample | None:
        messages = tuple(
            {"role": m["role"], "content": DEFAULT_FORMAT.strip(m["content"])} for m in anchor.messages
        )
        return ExplainExample(id="", task=self.name, messages=messages, items=tuple(anchor.items))


#: The built-in tasks by name, in their default order.
EXPLAIN_TASKS: TaskRegistry[ExplainTask] = TaskRegistry(
    "explain",
    (
        Retrieval, Ranking, Classification, ItemTitle, ItemAttributes, ItemSimilar, History,
        UserSummaryTask, FeaturesToItem, DescriptionToItem, General,
    ),
)  # fmt: skip
TASKS: tuple[str, ...] = EXPLAIN_TASKS.names
#: Tasks with a test part (an alignment metric); attribute descriptions and general questions train only.
TEST_TASKS: tuple[str, ...] = tuple(name for name in TASKS if EXPLAIN_TASKS[name].has_test)


class ExplainTaskBuilder:
    """Examples of each task for the train and test parts; :func:`build_explain_data` is the front door.

    Args:
        dataset: the dataset to build from.
        target: the frozen recommender that labels every example.
        **settings: :class:`ExplainContext`'s settings (split, k, n_candidates, negatives, seed, ...).
    """

    def __init__(self, dataset: Dataset, target: TargetModel, **settings: Any) -> None:
        self.ctx = ExplainContext(dataset, target, **settings)

    def generate(
        self, task: str | ExplainTask, n: int, part: str, *, progress: bool = False
    ) -> list[ExplainExample]:
        """Up to ``n`` examples of ``task`` (a name or a task of your own) for ``part``; item tasks make
        one per catalog item at most."""
        task = EXPLAIN_TASKS.for_part(task, part)
        made: list[ExplainExample] = []
        keys: set[Any] = set()
        bar = tqdm(total=n, desc=f"{task.name} ({part})", disable=not progress, unit="ex")
        for attempt, anchor in self._attempts(task, part, n):
            if len(made) >= n:
                break
            rng = _rng(self.ctx.seed, task.name, part, attempt)
            if anchor is None:  # a user task: the user is the attempt's first draw
                anchor = self.ctx.user_anchor(part, rng, len(made))
            example = task.make(self.ctx, anchor, rng)
            if example is None:
                continue
            if task.distinct:
                key = (example.user, example.history, example.items, example.candidates)
                if key in keys:
                    continue
                keys.add(key)
            made.append(example)
            bar.update(1)
        bar.close()
        return [replace(e, id=f"{task.name}-{part}-{i:06d}") for i, e in enumerate(made)]

    def _attempts(self, task: ExplainTask, part: str, n: int) -> Iterator[tuple[int, Any]]:
        """(attempt number, anchor) pairs; a user task's anchor is None (drawn from the attempt's
        generator)."""
        if task.anchor == "question":
            yield from enumerate(self.ctx.general_questions(n))
        elif task.anchor == "item":
            order = _rng(self.ctx.seed, task.name, part, "order").permutation(len(self.ctx.catalog))
            yield from (
                (attempt, int(position)) for attempt, position in enumerate(order[: n * MAX_ATTEMPTS])
            )
        else:
            yield from ((attempt, None) for attempt in range(n * MAX_ATTEMPTS))


def build_explain_data(
    dataset: Dataset,
    target: TargetModel,
    *,
    split: Split | None = None,
    tasks: Sequence[str | ExplainTask] | None = None,
    per_task: int = 500,
    test_per_task: int = 100,
    general_share: float = 0.1,
    task_sizes: Mapping[str, int] | None = None,
    test_task_sizes: Mapping[str, int] | None = None,
    seed: int = 0,
    progress: bool = False,
    **builder: Any,
) -> ExplainData:
    """Training and test examples of ``tasks`` (all by default; names or tasks of your own) labelled by
    ``target``; ``builder`` holds :class:`ExplainContext`'s settings (k, n_candidates, negatives, ...).

    ``general`` makes up ``general_share`` of the training set and has no test part. ``task_sizes`` and
    ``test_task_sizes`` override ``per_task`` and ``test_per_task`` for the tasks they name: a task that
    is hard to learn (classification reads a user-item interaction) can get more examples without
    growing every other task's. Item tasks make one example per catalog item at most, each part in its
    own seeded order, so their test parts ask about the items training saw only when their training
    size covers the catalog.
    """
    chosen = EXPLAIN_TASKS.resolve(list(tasks or TASKS))
    if not 0 <= general_share < 1:
        raise ValueError(f"general_share must be in [0, 1), got {general_share}")
    names = [task.name for task in chosen]
    kinds = {**{name: EXPLAIN_TASKS[name] for name in EXPLAIN_TASKS}, **{t.name: type(t) for t in chosen}}
    sizes = _sizes(
        task_sizes, "task_sizes", names, {n for n, c in kinds.items() if not issubclass(c, General)}
    )
    test_sizes = _sizes(
        test_task_sizes, "test_task_sizes", names, {n for n, c in kinds.items() if c.has_test}
    )
    maker = ExplainTaskBuilder(dataset, target, split=split, seed=seed, **builder)
    ctx = maker.ctx
    train, test = build_parts(
        chosen,
        lambda task, n, part, _trained: maker.generate(task, n, part, progress=progress),
        lambda task, part: (
            sizes.get(task.name, per_task) if part == "train" else test_sizes.get(task.name, test_per_task)
        ),
        fills_share=lambda task: isinstance(task, General),
        share=general_share,
    )
    meta = {
        "dataset": dataset.name,
        "target": target.name,
        "tasks": names,
        "seed": seed,
        "per_task": per_task,
        "test_per_task": test_per_task,
        "general_share": general_share,
        "task_sizes": sizes,
        "test_task_sizes": test_sizes,
        "noun": ctx.noun,
        "k": ctx.k,
        "n_candidates": ctx.n_candidates,
        "top_share": ctx.top_share,
        "bottom_share": ctx.bottom_share,
        "negatives": ctx.negatives,
        "history_len": ctx.history_len,
        "train_users": len(ctx.train_users),
        "test_users": len(ctx.test_users),
    }
    data = ExplainData(train, test, meta, target, dataset.catalog)
    data.meta["counts"] = data.counts()
    return data


def _sizes(
    sizes: Mapping[str, int] | None, name: str, tasks: Sequence[str], allowed: set[str]
) -> dict[str, int]:
    """``sizes`` checked: each key a task that is built and has such a part, each value a count >= 0."""
    out: dict[str, int] = {}
    for task, n in (sizes or {}).items():
        if task not in allowed:
            raise ValueError(f"{name}: '{task}' has no such part; tasks: {', '.join(sorted(allowed))}")
        if task not in tasks:
            raise ValueError(f"{name}: '{task}' is not among the tasks built ({', '.join(tasks)})")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{name}: '{task}' needs a count >= 0, got {n!r}")
        out[task] = n
    return out


def parse_task_sizes(pairs: Sequence[str] | None, option: str = "--task-size") -> dict[str, int]:
    """``TASK=N`` strings (a command line's repeated option) as a mapping; ``option`` names it in errors.

    Checked here only for form and known task names: :func:`build_explain_data` checks them against the
    tasks it builds and their parts.
    """
    out: dict[str, int] = {}
    for text in pairs or []:
        task, sep, n = (part.strip() for part in text.partition("="))
        if not sep or not n.isdigit():
            raise ValueError(f"{option} takes TASK=N, N a count >= 0; got {text!r}")
        if task not in TASKS:
            raise ValueError(f"{option}: unknown task '{task}'; available: {', '.join(TASKS)}")
        out[task] = int(n)
    return out
