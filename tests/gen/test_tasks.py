"""SFT task builders: leak-free anchors, labels that obey their own instructions, seeded files, JSONL errors."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from recai.data import DataError, Dataset, load
from recai.gen.examples import Control, GenData, GenExample
from recai.gen.items import ITEM_END, ITEM_START, ItemNames
from recai.gen.tasks import (
    GROUNDING_TASKS,
    LIST_TASKS,
    TASKS,
    GenTaskBuilder,
    build_gen_data,
    item_values,
    satisfies,
)
from recai.train.example_sets import read_examples, write_examples


@cache
def demo() -> Dataset:
    return load("demo")


@cache
def built(seed: int = 0) -> GenData:
    return build_gen_data(demo(), per_task=25, test_per_task=10, noun="film", seed=seed, progress=False)


def test_every_task_is_built_with_train_and_test_parts() -> None:
    counts = built().counts()
    assert set(counts) == set(TASKS)
    for task in TASKS:
        if task == "general":
            continue
        assert counts[task]["train"] == 25
    for task in LIST_TASKS:
        assert counts[task]["test"] == 10
    for task in GROUNDING_TASKS:
        assert counts[task]["test"] == 0
    # general instruction data is a small share of the training set
    total = sum(c["train"] for c in counts.values())
    assert 0.03 <= counts["general"]["train"] / total <= 0.07


def test_rebuilding_with_the_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = built(0)
    b = build_gen_data(demo(), per_task=25, test_per_task=10, noun="film", seed=0, progress=False)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = built(1)
    assert [e.to_dict() for e in other.train] != [e.to_dict() for e in a.train]


def test_training_anchors_come_from_the_training_log_only() -> None:
    """Leak-free: a training label's next item is a training event that follows the history shown."""
    ds = demo()
    split = ds.split("leave_one_out")
    catalog = ds.catalog
    checked = 0
    for e in built().train:
        if e.task not in ("sequential", "count", "category", "category_share"):
            continue
        seq = catalog.ids[split.train.sequence(e.user)].tolist()
        assert list(e.seen) == seq[: len(e.seen)], "the history is not a prefix of the training sequence"
        assert seq[len(e.seen)] == e.target, "the target is not the next training event"
        later = set(seq[len(e.seen) :])
        if e.task == "sequential":  # no teacher: the whole label is the user's own later training events
            assert set(e.items) <= later
        checked += 1
    assert checked >= 80


def test_test_examples_hold_out_the_last_event() -> None:
    ds = demo()
    split = ds.split("leave_one_out")
    history_log = split.train_and_valid()
    catalog = ds.catalog
    for e in built().test:
        if e.task == "category_cold":
            assert e.target is None and e.history == () and e.seen == ()
            continue
        assert e.target == catalog.ids[split.test.sequence(e.user)[-1]]
        assert list(e.seen) == catalog.ids[history_log.sequence(e.user)].tolist()
        assert list(e.history) == list(e.seen[-10:])


def test_no_test_prompt_was_shown_word_for_word_in_training() -> None:
    """Cold prompts come from a small space (value, mode, k, wording): without the check, many test
    prompts would be training prompts, answered in training."""
    data = build_gen_data(demo(), tasks=["category_cold"], per_task=200, test_per_task=40, seed=0)
    asked = {tuple(m["content"] for m in e.messages[:-1]) for e in data.train}
    test = [tuple(m["content"] for m in e.messages[:-1]) for e in data.test]
    assert len(test) == 40 and not asked & set(test)
    builder = GenTaskBuilder(demo(), seed=0)
    unchecked = builder.generate("category_cold", 40, "test")
    assert asked & {tuple(m["content"] for m in e.messages[:-1]) for e in unchecked}  # the check can fail


def test_list_answers_obey_their_own_instructions() -> None:
    ds = demo()
    values = item_values(ds.catalog, "genres")
    names = ItemNames(ds.catalog)
    for e in built().train + built().test:
        if e.k is None:
            continue
        positions = ds.catalog.index_of(list(e.items)).tolist()
        assert len(positions) == e.k == len(set(positions))
        assert not set(e.items) & set(e.seen), f"{e.id} recommends an item from the history"
        answer = e.answer
        assert [answer.count(names.span(p)) for p in positions] == [1] * e.k  # each item once, as a span
        assert answer.count(ITEM_START) == answer.count(ITEM_END) == e.k
        if e.target is not None and e.task in ("sequential", "count"):
            assert e.items[0] == e.target  # the held-out next item leads the label
        if e.target is not None and e.task == "category":
            target = int(ds.catalog.index_of([e.target])[0])
            assert (e.items[0] == e.target) == satisfies(values[target], e.control)
        if e.control is not None:
            assert e.control.column == "genres"
            inside = [e.control.value in values[p] for p in positions]
            if e.control.mode in ("in", "not_in"):
                assert all(satisfies(values[p], e.control) for p in positions), e.id
                assert e.control.value in e.prompt[-1]["content"]
            else:
                share = np.mean(inside)
                assert e.control.share is not None
                if e.control.mode == "at_least":
                    assert share >= e.control.share - 1e-9, e.id
                else:
                    assert share <= e.control.share + 1e-9, e.id
        if e.task == "count":
            assert (
                f"exactly {e.k}" in e.prompt[-1]["content"]
                or f"{e.k} {'film' if e.k == 1 else 'films'}" in (e.prompt[-1]["content"])
            )


def test_grounding_examples_name_their_item_as_a_span() -> None:
    ds = demo()
    names = ItemNames(ds.catalog)
    tasks = {e.task for e in built().train}
    assert set(GROUNDING_TASKS) <= tasks
    for e in built().train:
        if e.task not in GROUNDING_TASKS:
            continue
        assert e.k is None and e.target is None
        for item in e.items:
            span = names.span(int(ds.catalog.index_of([item])[0]))
            assert span in e.answer or span in e.prompt[-1]["content"]
        if e.task == "item_title":
            title = ds.catalog.title_of(e.items[0])
            assert title not in e.prompt[-1]["content"].split("Synopsis")[0], (
                "the question gives the title away"
            )


class StubTeacher:
    """Recommends a fixed order (minus the history), to check where teacher items go in a label."""

    def __init__(self, order: list[int]) -> None:
        self.order = order

    def recommend(self, history: list[int], k: int, **_: object) -> tuple[np.ndarray, np.ndarray]:
        seen = set(history)
        out = [p for p in self.order if p not in seen][:k]
        return np.asarray(out), -np.arange(len(out), dtype=float)

    def get_params(self) -> dict[str, object]:
        return {"order": "fixed"}


def test_a_teacher_fills_the_list_after_the_next_item() -> None:
    ds = demo()
    order = list(range(len(ds.catalog)))[::-1]
    builder = GenTaskBuilder(ds, teacher=StubTeacher(order), k=5, seed=3)
    examples = builder.generate("sequential", 10)
    assert len(examples) == 10
    for e in examples:
        positions = ds.catalog.index_of(list(e.items)).tolist()
        seen = set(ds.catalog.index_of(list(e.seen)).tolist())
        expected_rest = [p for p in order if p not in seen and p != positions[0]][:4]
        assert positions[1:] == expected_rest
        assert e.k == 5
    data = build_gen_data(
        ds, ["sequential"], per_task=3, test_per_task=2, teacher=StubTeacher(order), progress=False
    )
    assert data.meta["teacher"] == {"class": "StubTeacher", "params": {"order": "fixed"}}


def test_without_a_teacher_training_lists_are_the_users_own_later_items() -> None:
    ds = demo()
    split = ds.split("leave_one_out")
    for e in GenTaskBuilder(ds, k=4).generate("sequential", 10):
        seq = ds.catalog.ids[split.train.sequence(e.user)].tolist()
        later = [i for i in dict.fromkeys(seq[len(e.seen) :]) if i not in set(e.seen)][:4]
        assert list(e.items) == later


def test_system_message_and_bad_arguments() -> None:
    ds = demo()
    e = GenTaskBuilder(ds, system="You recommend films.").generate("category_cold", 1)[0]
    assert e.messages[0] == {"role": "system", "content": "You recommend films."}
    with pytest.raises(ValueError, match="unknown task"):
        build_gen_data(ds, ["nope"], progress=False)
    with pytest.raises(ValueError, match="no test part"):
        GenTaskBuilder(ds).generate("general", 1, "test")
    with pytest.raises(ValueError, match="min_k"):
        GenTaskBuilder(ds, k=3, min_k=5)
    with pytest.raises(ValueError, match="runtime"):
        GenTaskBuilder(ds, category="runtime")


# ------------------------------------------------------------------ JSONL
def test_examples_round_trip_through_jsonl(tmp_path: Path) -> None:
    data = built()
    path = write_examples(tmp_path / "x.jsonl", data.train)
    back = read_examples(path, GenExample)
    assert [e.to_dict() for e in back] == [e.to_dict() for e in data.train]
    loaded = GenData.load(data.save(tmp_path / "folder"))
    assert loaded.counts() == data.counts()
    assert loaded.meta["span"] == {"start": ITEM_START, "end": ITEM_END}
    with pytest.raises(FileExistsError):
        data.save(tmp_path / "folder")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("messages"), "messages"),
        (lambda d: d["messages"][-1].update(role="user"), "messages[1].role"),
        (lambda d: d["messages"][0].update(content=" "), "messages[0].content"),
        (lambda d: d.update(k=0), "k"),
        (lambda d: d.update(items=[1.5]), "items"),
        (
            lambda d: d.update(control={"column": "genres", "value": "Drama", "mode": "most", "share": None}),
            "control",
        ),
        (lambda d: d.update(extra=1), "extra"),
    ],
)
def test_reading_errors_name_file_line_and_field(tmp_path: Path, change: object, field: str) -> None:
    good = GenExample(
        id="x-1",
        task="count",
        messages=({"role": "user", "content": "two films"}, {"role": "assistant", "content": "a, b"}),
        items=(1, 2),
        k=2,
        control=Control("genres", "Drama", "at_least", 0.5),
    )
    bad = good.to_dict()
    change(bad)  # type: ignore[operator]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good.to_dict()) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_examples(path, GenExample)
    assert info.value.line == 3 and info.value.field == field and str(path) in str(info.value)


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text("{not json}\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1"):
        read_examples(path, GenExample)


def test_a_name_only_catalog_builds_the_tasks_it_can_and_says_which_it_cannot() -> None:
    """Last.fm's artists have a name and nothing else: no category to control and nothing to describe an
    item by, so the control and grounding tasks give no examples (and are named in the meta) while the
    list tasks are built as usual."""
    from recai.data import Catalog, CatalogSchema
    from recai.data.schema import ColumnRole

    full = demo()
    kept = [c for c in full.catalog.schema.columns if c.role in (ColumnRole.ID, ColumnRole.TITLE)]
    catalog = Catalog(full.catalog.items[[c.name for c in kept]], CatalogSchema(columns=kept))
    names_only = Dataset("names-only", catalog, full.interactions)
    data = build_gen_data(names_only, per_task=5, test_per_task=3, noun="artist", progress=False)
    counts = data.counts()
    cannot = ["category", "category_cold", "category_share", "item_title", "item_category", "general"]
    assert data.meta["category"] is None and data.meta["inapplicable"] == cannot
    for task in cannot:
        assert sum(counts.get(task, {}).values()) == 0, counts
    assert counts["sequential"] == counts["count"] == {"train": 5, "test": 3}, counts
    assert built().meta["inapplicable"] == []  # demo's genres serve every task
