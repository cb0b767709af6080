"""The ten matching tasks: every example keeps its contract (positives satisfy the query, hard negatives
provably do not), titles never leak, builds are deterministic, and the split and dedup rules hold."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from recai.data import Dataset
from recai.embed.tasks import (
    OPTIONAL_TASKS,
    TASKS,
    Example,
    ExampleBuilder,
    ExampleSplit,
    HasValue,
    InvalidExampleError,
    build_examples,
    normalise_query,
    satisfies,
)
from recai.embed.tasks.base import Draft, EmbedTask
from recai.embed.tasks.context import TaskContext
from recai.embed.tasks.names import MARGIN, normalise_title
from recai.embed.tasks.split import split_examples
from recai.evaluate.conversation import title_guard
from tests.catalog_fixtures import film_dataset, product_dataset

ALL_TASKS = (*TASKS, *OPTIONAL_TASKS)
CONDITION_TASKS = {
    "full_attributes",
    "partial_attributes",
    "search_query",
    "vague_condition",
    "negative_condition",
    "history_query",
    "conversation",
}
USER_TASKS = {"history_next", "user_summary", "history_query"}
DATASETS = {"films": film_dataset, "shop": product_dataset}


@cache
def _built(name: str, seed: int = 0, split_by: str = "item") -> tuple[Dataset, ExampleSplit]:
    dataset = DATASETS[name]()
    data = build_examples(dataset, ALL_TASKS, per_task=12, seed=seed, split_by=split_by, progress=False)  # type: ignore[arg-type]
    return dataset, data


def _everything(data: ExampleSplit) -> list[Example]:
    return [*data.train, *data.test]


def test_the_ten_tasks_are_registered_in_order() -> None:
    assert TASKS == (
        "history_next",
        "item_item",
        "user_summary",
        "full_attributes",
        "partial_attributes",
        "search_query",
        "fuzzy_name",
        "vague_condition",
        "negative_condition",
        "history_query",
    )
    assert OPTIONAL_TASKS == ("conversation",)


@pytest.mark.parametrize("name", DATASETS)
def test_every_task_yields_examples_with_hard_negatives(name: str) -> None:
    _, data = _built(name)
    counts = Counter(e.task for e in _everything(data))
    for task in ALL_TASKS:
        assert counts[task] >= 8, (task, counts)
    for e in _everything(data):
        assert e.negatives and len(e.negatives) <= 5 and len(set(e.negatives)) == len(e.negatives)
        assert e.positive not in e.negatives
        assert e.query.strip() and e.id.startswith(e.task)
        assert (e.task in CONDITION_TASKS) == bool(e.predicates), e


@pytest.mark.parametrize("name", DATASETS)
def test_positives_satisfy_and_negatives_violate_the_query(name: str) -> None:
    dataset, data = _built(name)
    catalog = dataset.catalog
    for e in _everything(data):
        if not e.predicates:
            continue
        ok = satisfies(catalog, e.predicates)  # fresh masks, not the builder's cache
        assert ok[catalog.index_of([e.positive])[0]], e
        assert not ok[catalog.index_of(list(e.negatives))].any(), e


@pytest.mark.parametrize("name", DATASETS)
def test_titles_never_leak_into_masked_tasks(name: str) -> None:
    dataset, data = _built(name)
    catalog = dataset.catalog
    for e in _everything(data):
        if e.task == "fuzzy_name":
            continue
        assert not title_guard(catalog, int(catalog.index_of([e.positive])[0])).leaks(e.query), e


def test_full_attributes_mask_a_title_named_in_the_text() -> None:
    dataset = film_dataset()  # the synopsis of The Matrix names it
    builder = ExampleBuilder(dataset, progress=False)
    examples = builder.generate("full_attributes", 24)
    matrix = [e for e in examples if e.positive == 1]
    assert matrix and all("Matrix" not in e.query and "this one" in e.query for e in matrix)
    assert all("Keanu Reeves" in e.query for e in matrix)  # the facts are all there


def test_history_tasks_never_use_items_the_user_touched() -> None:
    dataset, data = _built("films")
    log = dataset.interactions
    for e in _everything(data):
        if e.task not in USER_TASKS:
            continue
        seen = set(dataset.catalog.ids[log.sequence(e.source["user"])])
        assert e.positive in seen and not seen & set(e.negatives), e
        history = e.source["history"]
        assert e.positive not in history
        if e.task != "user_summary":
            assert dataset.catalog.title_of(history[0]) in e.query  # newest first


def _window_counts(dataset: Dataset, window: int = 3) -> Counter[tuple[object, object]]:
    counts: Counter[tuple[object, object]] = Counter()
    for _, seq in dataset.interactions.sequences():
        ids = list(dataset.catalog.ids[seq])
        for i, a in enumerate(ids):
            for b in ids[i + 1 : i + 1 + window]:
                counts[(a, b)] += 1
                counts[(b, a)] += 1
    return counts


def test_item_item_positives_cooccur_and_negatives_never_do() -> None:
    dataset, data = _built("films")
    counts = _window_counts(dataset)
    examples = [e for e in _everything(data) if e.task == "item_item"]
    assert examples
    for e in examples:
        anchor = e.source["anchor"]
        assert counts[(anchor, e.positive)] >= 2 and counts[(anchor, e.positive)] == e.source["cooccurrences"]
        assert all(counts[(anchor, n)] == 0 for n in e.negatives) and anchor not in e.negatives
        assert dataset.catalog.title_of(anchor) in e.query


def test_fuzzy_names_point_at_their_target_only() -> None:
    from rapidfuzz import fuzz

    dataset, data = _built("films")
    catalog = dataset.catalog
    examples = [e for e in _everything(data) if e.task == "fuzzy_name"]
    assert {e.source["damage"] for e in examples} >= {"typo"}
    for e in examples:
        title = catalog.title_of(e.positive)
        assert normalise_title(e.query) != normalise_title(title) and normalise_title(
            e.query
        ) != normalise_title(catalog.row(e.positive)["title"])
        if e.source["damage"] == "abbreviation":
            continue
        target = fuzz.WRatio(normalise_title(e.query), normalise_title(catalog.row(e.positive)["title"]))
        for n in e.negatives:
            if catalog.row(n)["title"] == catalog.row(e.positive)["title"]:
                continue  # a remake: the query keeps the year
            assert (
                fuzz.WRatio(normalise_title(e.query), normalise_title(catalog.row(n)["title"]))
                < target - MARGIN
            )


def test_remakes_keep_the_year_in_misspelled_names() -> None:
    builder = ExampleBuilder(film_dataset(), progress=False)
    examples = builder.generate("fuzzy_name", 200)  # every damage of every title the rules accept
    remakes = [e for e in examples if e.positive in (4, 5)]
    assert remakes and all(("1946" in e.query) == (e.positive == 4) for e in remakes)
    assert all(("1991" in e.query) == (e.positive == 5) for e in remakes)
    assert not any(normalise_title(e.query) in ("godfather", "godfather part") for e in examples)  # ambiguous


def test_negative_condition_negatives_have_the_negated_value() -> None:
    dataset, data = _built("films")
    catalog = dataset.catalog
    examples = [e for e in _everything(data) if e.task == "negative_condition"]
    assert examples
    for e in examples:
        negation = e.predicates[-1]
        assert negation.type == "not"
        has_it = negation.predicate.mask(catalog)  # type: ignore[attr-defined]
        assert not has_it[catalog.index_of([e.positive])[0]]
        assert has_it[catalog.index_of(list(e.negatives))].all()  # they violate the negation itself


def test_builds_are_byte_identical_for_a_seed(tmp_path: Path) -> None:
    first = build_examples(film_dataset(), ALL_TASKS, per_task=10, seed=7, progress=False)
    second = build_examples(film_dataset(), ALL_TASKS, per_task=10, seed=7, progress=False)
    other = build_examples(film_dataset(), ALL_TASKS, per_task=10, seed=8, progress=False)
    a, b, c = first.save(tmp_path / "a"), second.save(tmp_path / "b"), other.save(tmp_path / "c")
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()
    # one task's examples do not depend on which other tasks were built
    alone = build_examples(film_dataset(), ["vague_condition"], per_task=10, seed=7, progress=False)
    together = [e for e in _everything(first) if e.task == "vague_condition"]
    assert sorted(e.query for e in _everything(alone)) == sorted(e.query for e in together)


def test_split_by_item_keeps_test_items_out_of_train() -> None:
    dataset, data = _built("films")
    assert data.train and data.test and data.meta["split_by"] == "item"
    train_items = {e.positive for e in data.train}
    test_items = {e.positive for e in data.test}
    assert not train_items & test_items
    assert all(e.split_key == f"item:{e.positive}" for e in _everything(data))
    n_test_items = len({e.split_key for e in data.test})
    assert n_test_items <= round(0.1 * len(dataset.catalog))  # test items are 10% of the catalog


def test_split_by_user_keeps_test_users_out_of_train() -> None:
    _, data = _built("films", split_by="user")
    train_users = {e.source["user"] for e in data.train if e.task in USER_TASKS}
    test_users = {e.source["user"] for e in data.test if e.task in USER_TASKS}
    assert test_users and not train_users & test_users
    for e in _everything(data):
        expected = f"user:{e.source['user']}" if e.task in USER_TASKS else f"item:{e.positive}"
        assert e.split_key == expected
    item_train = {e.positive for e in data.train if e.task not in USER_TASKS}
    item_test = {e.positive for e in data.test if e.task not in USER_TASKS}
    assert not item_train & item_test


def test_test_queries_never_repeat_training_queries() -> None:
    for name in DATASETS:
        _, data = _built(name)
        train = {normalise_query(e.query) for e in data.train}
        test = [normalise_query(e.query) for e in data.test]
        assert not train & set(test) and len(test) == len(set(test))


def test_split_examples_drops_normalised_duplicates() -> None:
    def ex(i: int, query: str, key: str) -> Example:
        return Example(f"t-{i}", "t", query, positive=i, negatives=(99,), split_key=key)

    examples = [
        ex(1, "A film from the 1990s", "item:1"),
        ex(2, "a film, from the 1990s!", "item:2"),  # test, same query as a training one
        ex(3, "Something  RECENT", "item:2"),
        ex(4, "something recent", "item:2"),  # duplicate within test
        ex(5, "A film from the 1990s.", "item:5"),  # duplicate within train
        ex(6, "Amélie-like", "item:2"),
        ex(7, "amelie like", "item:6"),  # train; makes the test one above a duplicate
    ]
    train, test, dropped = split_examples(examples, {"item:2"})
    assert [e.id for e in train] == ["t-1", "t-7"]
    assert [e.id for e in test] == ["t-3"]
    assert dropped == {"test_duplicates": 1, "test_queries_seen_in_train": 2, "train_duplicates": 1}


def test_meta_records_the_build() -> None:
    _, data = _built("films")
    meta = data.meta
    assert meta["tasks"] == list(ALL_TASKS) and meta["seed"] == 0 and meta["llm"] is None
    assert meta["counts"] == data.counts()
    assert all(set(w) == {"template"} for w in meta["writers"].values())


class _Liar(EmbedTask):
    """A broken task: its negative satisfies the query."""

    name: ClassVar[str] = "liar"

    def make(self, ctx: TaskContext, anchor: int, rng: np.random.Generator) -> Draft | None:
        crime = HasValue("genres", "Crime")
        return Draft("a crime film", positive=1, negatives=[2], predicates=(crime,))  # 1, 2: both crime


def test_builder_refuses_examples_that_break_the_contract(dataset: Dataset) -> None:
    with pytest.raises(InvalidExampleError, match="a negative satisfies"):
        ExampleBuilder(dataset, progress=False).generate(_Liar(), 1)


def test_bad_arguments_are_refused(dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        build_examples(dataset, ["history_next", "telepathy"], progress=False)
    with pytest.raises(ValueError, match="split_by"):
        build_examples(dataset, ["fuzzy_name"], split_by="day", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test_fraction"):
        build_examples(dataset, ["fuzzy_name"], test_fraction=1.0, progress=False)


def test_history_tasks_can_be_kept_off_a_recommender_test_split() -> None:
    dataset = film_dataset()
    split = dataset.split("leave_one_out")
    data = build_examples(dataset, sorted(USER_TASKS), per_task=30, log=split.train, progress=False)
    held_out = {
        (user, item)
        for part in (split.valid, split.test)
        for user, item in zip(part.frame["user_id"], part.frame["item_id"], strict=True)
    }
    examples = _everything(data)
    assert examples
    for e in examples:
        assert (e.source["user"], e.positive) not in held_out
        assert not {(e.source["user"], h) for h in e.source["history"]} & held_out
