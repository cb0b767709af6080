"""The entry point: turn a dataset into train and test examples for every matching task.

For each task the builder walks the task's anchors (users or items) in a seeded order, in rounds, until
it has ``per_task`` examples. Each attempt has its own random generator, derived from the seed, the task
name, the round and the anchor, so one task's examples do not change when other tasks are added and a
rebuild gives byte-identical files. Every draft is checked before it is kept:

- the positive satisfies every predicate of the query, and every negative violates at least one
  (a failure here is a bug, so it raises);
- the query does not name the positive (except in the misspelled-name task), is not empty, and is not
  longer than ``max_query_chars``; it has at least one hard negative;
- no two examples of a task share a normalised query.

Tasks whose text an LLM writes draft up to ``BatchSettings.concurrency`` anchors at once (each draft
depends only on its own generator and the shared, read-only context); drafts are kept or rejected in
anchor order, so the examples are the same at any concurrency. A draft made ahead while the last needed
ones were in flight is dropped (its reply stays in the response cache).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from recai.data.dataset import Dataset
from recai.data.interactions import Interactions
from recai.embed.tasks.attributes import FullAttributes, NegativeCondition, PartialAttributes, VagueCondition
from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.cooccurrence import ItemToItem
from recai.embed.tasks.example import Example, ExampleSplit
from recai.embed.tasks.history import HistoryNext, HistoryQuery, UserSummary
from recai.embed.tasks.names import FuzzyName
from recai.embed.tasks.profile import CatalogProfile
from recai.embed.tasks.search import Conversation, SearchQuery
from recai.embed.tasks.split import SplitBy, choose_test_keys, normalise_query, split_examples, split_key
from recai.embed.tasks.writer import LLMWriter
from recai.errors import RecaiError
from recai.llm.base import ChatModel
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError, run_batch
from recai.llm.usage import UsageMeter, scoped
from recai.train.tasks import TaskRegistry, seeded_rng

#: The ten matching tasks of RecLM-emb, in the order of the paper's list, and the optional dialogue task.
EMBED_TASKS: TaskRegistry[EmbedTask] = TaskRegistry(
    "embed",
    (
        HistoryNext,
        ItemToItem,
        UserSummary,
        FullAttributes,
        PartialAttributes,
        SearchQuery,
        FuzzyName,
        VagueCondition,
        NegativeCondition,
        HistoryQuery,
        Conversation,
    ),
)
TASKS: tuple[str, ...] = tuple(name for name in EMBED_TASKS if name != "conversation")
OPTIONAL_TASKS: tuple[str, ...] = ("conversation",)
#: Rounds over the anchors before a task gives up short of ``per_task``.
MAX_ROUNDS = 30


class InvalidExampleError(RuntimeError, RecaiError):
    """A task produced an example that breaks its own contract (a bug, never bad luck): a positive
    that does not satisfy the query's predicates, a negative that does, or a positive among the
    negatives."""


class ExampleBuilder:
    """Generates examples task by task from one dataset; :func:`build_examples` is the usual front door.

    ``log`` defaults to the dataset's interactions. Pass ``dataset.split(...).train`` instead to keep a
    recommender's held-out events out of the embedder's training data. ``batch`` sets how many drafts
    of an LLM task are written at once (default: what the model allows) and a budget for the whole
    build.

    Args:
        dataset: the dataset to build from.
        seed: the seed every anchor order and every attempt's generator derive from.
        llm: a chat model that writes the text of the LLM tasks, or None for templates.
        cache: the LLM response cache file.
        llm_model_id: the model's name in the cache key and in ``meta.json``.
        log: the interactions histories come from (default: the dataset's).
        noun: what an item is called (default: the dataset's ``item_noun``, else "item").
        n_negatives: hard negatives per example.
        history_len: the most history items a query shows.
        max_query_chars: the longest query kept.
        progress: show progress bars.
        batch: LLM requests in flight and a budget for the build.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        seed: int = 0,
        llm: ChatModel | None = None,
        cache: str | Path | None = None,
        llm_model_id: str | None = None,
        log: Interactions | None = None,
        noun: str | None = None,
        n_negatives: int = 5,
        history_len: int = 10,
        max_query_chars: int = 1000,
        progress: bool = True,
        batch: BatchSettings | None = None,
    ) -> None:
        log = dataset.interactions if log is None else log.with_items(dataset.catalog.ids)
        writer = LLMWriter(llm, cache=cache, model_id=llm_model_id) if llm is not None else None
        self.seed = seed
        self.progress = progress
        self.ctx = TaskContext(
            dataset=dataset,
            log=log,
            profile=CatalogProfile(dataset.catalog, log=log),
            noun=noun or str(dataset.meta.get("item_noun", "item")),
            n_negatives=n_negatives,
            history_len=history_len,
            max_query_chars=max_query_chars,
            writer=writer,
        )
        self.rejected: dict[str, Counter[str]] = {}
        self.writers: dict[str, Counter[str]] = {}
        self.batch = batch or BatchSettings()
        self._spent: list[UsageMeter] = []  # one meter per batch of drafts: the budget is the build's

    def close(self) -> None:
        if self.ctx.writer is not None:
            self.ctx.writer.close()

    def generate(self, task: str | EmbedTask, n: int) -> list[Example]:
        """Up to ``n`` checked examples of one task, by name or as an instance (for tasks of your own);
        fewer when its anchors run out."""
        (task,) = EMBED_TASKS.resolve([task])
        task_name = task.name
        rejected = self.rejected.setdefault(task_name, Counter())
        writers = self.writers.setdefault(task_name, Counter())
        anchors = task.anchors(self.ctx)
        order = [anchors[int(i)] for i in seeded_rng(self.seed, task_name).permutation(len(anchors))]
        out: list[Example] = []
        queries: set[str] = set()
        uses_llm = task.uses_llm and self.ctx.writer is not None
        concurrency = self.batch.concurrency_for(self.ctx.writer.llm) if uses_llm and self.ctx.writer else 1
        bar = tqdm(
            total=n, desc=f"embed tasks: {task_name}", unit="example", disable=not self.progress, leave=False
        )
        try:
            for round_ in range(MAX_ROUNDS):
                added = 0

                def draft(anchor: Any, round_: int = round_) -> Draft | None:
                    rng = seeded_rng(self.seed, task_name, round_, anchor)
                    return task.make(self.ctx, anchor, rng)

                def keep(draft: Draft | None) -> None:
                    nonlocal added
                    if len(out) >= n:  # drafted ahead while the last needed ones were in flight
                        return
                    reason = "no draft" if draft is None else self._problem(task, draft)
                    if reason is None:
                        assert draft is not None
                        key = normalise_query(draft.query)
                        if key in queries:
                            reason = "duplicate query"
                        else:
                            queries.add(key)
                            out.append(self._example(task_name, len(out), draft))
                            writers[str(draft.source.get("writer", "template"))] += 1
                            added += 1
                            bar.update(1)
                    if reason is not None:
                        rejected[reason] += 1

                start = 0
                while start < len(order) and len(out) < n:
                    # as many anchors as examples are still missing (at least one per request in flight):
                    # sequentially exactly the drafts the plain loop made, concurrently at most
                    # concurrency - 1 more
                    chunk = order[start : start + max(n - len(out), concurrency)]
                    start += len(chunk)
                    budget = self._budget_left(task_name, len(out), n)
                    with scoped() as usage:
                        self._spent.append(usage)
                        try:
                            run_batch(
                                chunk,
                                draft,
                                concurrency=concurrency,
                                on_result=keep,
                                budget=budget,
                                desc=f"LLM drafts: {task_name}",
                                unit="draft",
                                progress=self.progress and uses_llm,
                            )
                        except BudgetExhaustedError:
                            raise self._stopped(task_name, len(out), n) from None
                if len(out) >= n or added == 0:
                    break
        finally:
            bar.close()
        return out

    def _spent_so_far(self, budget: Budget) -> tuple[int, float]:
        tokens, cost = 0, 0.0
        for usage in self._spent:
            spent = budget.spent(usage)
            tokens, cost = tokens + spent[0], cost + spent[1]
        return tokens, cost

    def _budget_left(self, task_name: str, done: int, n: int) -> Budget | None:
        """What is left of the build's budget for the next batch of drafts; raises when it is spent."""
        budget = self.batch.budget
        if budget is None or not budget.limited:
            return None
        tokens, cost = self._spent_so_far(budget)
        if (budget.max_tokens is not None and tokens >= budget.max_tokens) or (
            budget.max_cost is not None and cost >= budget.max_cost
        ):
            raise self._stopped(task_name, done, n)
        return Budget(
            max_tokens=None if budget.max_tokens is None else budget.max_tokens - tokens,
            max_cost=None if budget.max_cost is None else budget.max_cost - cost,
            cost_of=budget.cost_of,
        )

    def _stopped(self, task_name: str, done: int, n: int) -> BudgetExhaustedError:
        budget = self.batch.budget
        assert budget is not None
        tokens, cost = self._spent_so_far(budget)
        return BudgetExhaustedError(
            f"stopped: the LLM budget is spent ({tokens:,} tokens, cost {cost:.4f}) at {done} of {n} "
            f"'{task_name}' examples; nothing is written, but the replies so far are in the response "
            "cache, so running again with a larger budget reads them back for free",
            done=done,
            remaining=n - done,
        )

    def _problem(self, task: EmbedTask, draft: Draft) -> str | None:
        """Why a draft cannot be kept (None when it can); contract breaches raise."""
        ctx = self.ctx
        if draft.predicates:
            if not ctx.satisfying(draft.predicates)[draft.positive]:
                raise InvalidExampleError(f"{task.name}: the positive does not satisfy {draft.predicates}")
            violated = ctx.violations(draft.predicates)
            if any(violated[n] == 0 for n in draft.negatives):
                raise InvalidExampleError(f"{task.name}: a negative satisfies {draft.predicates}")
        if draft.positive in draft.negatives:
            raise InvalidExampleError(f"{task.name}: the positive is among the negatives")
        if not draft.query.strip():
            return "empty query"
        if len(draft.query) > ctx.max_query_chars:
            return "query too long"
        if not draft.negatives:
            return "no hard negatives"
        if task.masks_title and ctx.guard(draft.positive).leaks(draft.query):
            return "query names the positive"
        return None

    def _example(self, task_name: str, index: int, draft: Draft) -> Example:
        ctx = self.ctx
        source = dict(draft.source)
        user = ctx.user_id(draft.user) if draft.user is not None else None
        if user is not None:
            source = {"user": user, **source}
        return Example(
            id=f"{task_name}-{index:06d}",
            task=task_name,
            query=draft.query,
            positive=ctx.item_id(draft.positive),
            negatives=tuple(ctx.item_id(n) for n in draft.negatives),
            predicates=tuple(draft.predicates),
            split_key="",
            source=source,
        )


def build_examples(
    dataset: Dataset,
    tasks: Sequence[str | EmbedTask] | None = None,
    *,
    per_task: int | Mapping[str, int] = 200,
    seed: int = 0,
    llm: ChatModel | None = None,
    split_by: SplitBy = "item",
    test_fraction: float = 0.1,
    n_negatives: int = 5,
    history_len: int = 10,
    log: Interactions | None = None,
    noun: str | None = None,
    cache: str | Path | None = None,
    llm_model_id: str | None = None,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> ExampleSplit:
    """Examples of ``tasks`` (default: the ten of :data:`TASKS`; names or tasks of your own) split into
    train and test.

    ``split_by="item"`` puts every example whose positive is a test item in test; ``"user"`` does so for
    examples built from a test user's history (examples without a user still go by their item). Test
    keys are ``test_fraction`` of all catalog items or all users in the log, chosen by ``seed``. Test
    examples whose normalised query occurs in train are dropped. ``llm`` writes the text of the tasks
    that use one (user summaries, search queries, dialogues) through a response cache at ``cache``
    (default ``$RECAI_HOME/cache/llm_responses.sqlite``); without it they use templates. ``batch`` sets
    the LLM requests in flight and a budget for the build (the examples are the same at any concurrency).
    """
    chosen = EMBED_TASKS.resolve(list(TASKS if tasks is None else tasks))
    names = [task.name for task in chosen]
    if split_by not in ("item", "user"):
        raise ValueError(f"split_by must be 'item' or 'user', got {split_by!r}")
    counts = {t: int(per_task[t] if isinstance(per_task, Mapping) else per_task) for t in names}
    builder = ExampleBuilder(
        dataset,
        seed=seed,
        llm=llm,
        cache=cache,
        llm_model_id=llm_model_id,
        log=log,
        noun=noun,
        n_negatives=n_negatives,
        history_len=history_len,
        progress=progress,
        batch=batch,
    )
    try:
        examples: list[Example] = []
        for task in tqdm(chosen, desc="embed tasks", unit="task", disable=not progress):
            examples += builder.generate(task, counts[task.name])
    finally:
        builder.close()
    ctx = builder.ctx
    test = choose_test_keys(ctx.catalog.ids, prefix="item", fraction=test_fraction, seed=seed)
    if split_by == "user":
        test |= choose_test_keys(ctx.log.user_ids, prefix="user", fraction=test_fraction, seed=seed)
    keyed = [_with_split_key(e, split_by) for e in examples]
    train_part, test_part, dropped = split_examples(keyed, test)
    result = ExampleSplit(train_part, test_part)
    result.meta = {
        "dataset": dataset.name,
        "seed": seed,
        "tasks": names,
        "per_task": counts,
        "split_by": split_by,
        "test_fraction": test_fraction,
        "n_negatives": n_negatives,
        "history_len": history_len,
        "noun": ctx.noun,
        "llm": ctx.writer.model_id if ctx.writer is not None else None,
        "counts": result.counts(),
        "dropped": dropped,
        "writers": {t: dict(sorted(c.items())) for t, c in builder.writers.items()},
        "rejected": {t: dict(sorted(c.items())) for t, c in builder.rejected.items()},
    }
    return result


def _with_split_key(example: Example, split_by: SplitBy) -> Example:
    user: Any = example.source.get("user")
    return replace(example, split_key=split_key(user, example.positive, split_by))
