"""uid2summary, feature2iid and description2iid: labels written from the catalog on any catalog, the
title never in the question, seeded builds, and their metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")

from recai.data import Catalog, CatalogSchema, ColumnRole, ColumnSpec, Dataset
from recai.explain import ExplainData, Renderer, build_explain_data
from recai.explain.evaluation import AlignmentScorer
from recai.explain.profiles import MASK, item_description, item_features, mask_title, user_summary
from recai.explain.render import USER_TOKEN
from tests.explain.helpers import data, dataset, target

NEW_TASKS = ["uid2summary", "feature2iid", "description2iid"]


def positions(catalog: Catalog, ids: tuple) -> list[int]:
    return [int(p) for p in catalog.index_of(list(ids))]


def with_catalog(frame: pd.DataFrame, columns: list[ColumnSpec]) -> Dataset:
    """The film dataset's log over another catalog of the same ids (so the films' target labels it)."""
    films = dataset()
    return Dataset("other", Catalog(frame, CatalogSchema(columns=columns)), films.interactions)


def titles_only() -> Dataset:
    """Like Last.fm artists: a name and nothing else."""
    frame = dataset().catalog.items[["item_id", "title"]].copy()
    return with_catalog(
        frame,
        [ColumnSpec(name="item_id", role=ColumnRole.ID), ColumnSpec(name="title", role=ColumnRole.TITLE)],
    )


def leaky() -> Dataset:
    """Films with a slug column that spells the title and an English title repeating it."""
    films = dataset().catalog.items
    frame = films.assign(
        slug=[t.lower().replace(" ", "-") for t in films["title"]],
        english_title=films["title"],
    )
    columns = [*dataset().catalog.schema.columns]
    columns.insert(2, ColumnSpec(name="slug", role=ColumnRole.CATEGORICAL))
    columns.insert(3, ColumnSpec(name="english_title", role=ColumnRole.CATEGORICAL))
    return with_catalog(frame, columns)


def build(data_set: Dataset, **kwargs: object) -> ExplainData:
    values: dict[str, object] = {"per_task": 6, "test_per_task": 3, "history_len": 4, "k": 3, "noun": "film"}
    values.update(kwargs)
    return build_explain_data(
        data_set, target(), split=data_set.split("leave_one_out"), tasks=NEW_TASKS, **values
    )


def test_labels_are_written_from_the_catalog_and_the_history() -> None:
    built = data(tasks=NEW_TASKS, per_task=6, history_len=4)
    catalog = dataset().catalog
    assert {e.task for e in built.train} == {e.task for e in built.test} == set(NEW_TASKS)
    for e in built.train + built.test:
        if e.task == "uid2summary":
            history = positions(catalog, e.history)
            summary = user_summary(catalog, history)
            assert e.answer == summary.text(catalog, "film") and positions(catalog, e.items) == list(
                summary.items
            )
            assert set(summary.items) <= set(history) and len(summary.items) == min(2, len(set(history)))
            for column, values in summary.values:  # each value recurs in the history
                cells = [catalog.items[column].iloc[p] for p in history]
                for value in values:
                    assert sum(value in (list(c) if not isinstance(c, str) else [c]) for c in cells) >= 2
            assert "<<user>>" in e.messages[0]["content"] and not e.opaque
        else:
            (position,) = positions(catalog, e.items)
            assert e.answer == catalog.display_title(position)
            assert str(catalog.items["title"].iloc[position]) not in e.messages[0]["content"]
            assert "<<" not in e.messages[0]["content"] and not e.opaque
    description = next(e for e in built.train + built.test if e.task == "description2iid")
    assert "Synopsis:" in description.messages[0]["content"]  # the films' text column, not their features


def test_the_title_never_reaches_the_question_even_through_a_column_that_repeats_it() -> None:
    built = build(leaky(), per_task=30, test_per_task=0)
    catalog = leaky().catalog
    named = [e for e in built.train if e.task in ("feature2iid", "description2iid")]
    assert len(named) == 2 * len(catalog)  # every item, both tasks
    for e in named:
        (position,) = positions(catalog, e.items)
        title = str(catalog.items["title"].iloc[position])
        prompt = e.messages[0]["content"].lower()
        assert title.lower() not in prompt and catalog.items["slug"].iloc[position] not in prompt
    matrix = positions(catalog, (1,))[0]
    assert "the matrix" not in item_description(catalog, matrix).lower() and MASK in item_description(
        catalog, matrix
    )
    assert "Slug" not in item_features(catalog, matrix) and "Year: 1999" in item_features(catalog, matrix)
    assert mask_title("Neo wakes up in Matrix, The (1999) and in The Matrix.", "Matrix, The (1999)") == (
        f"Neo wakes up in {MASK} and in {MASK}."
    )


def test_any_catalog_a_titles_only_one_gets_summaries_of_items_and_no_feature_questions() -> None:
    built = build(titles_only())
    assert built.counts() == {"uid2summary": {"train": 6, "test": 3}}
    for e in built.train:
        assert e.answer.startswith("Typical films: ") and len(e.items) == 2
    from tests.catalog_fixtures import product_dataset

    shop = product_dataset()
    from recai.explain import fit_target

    products = build_explain_data(
        shop, fit_target(shop.split("leave_one_out"), "als", factors=4, iterations=2, seed=0),
        tasks=NEW_TASKS, per_task=3, test_per_task=1, noun="product",
    )  # fmt: skip
    assert {e.task for e in products.train} == set(NEW_TASKS)
    summary = next(e for e in products.train if e.task == "uid2summary")
    assert "Typical products:" in summary.answer
    features = next(e for e in products.train if e.task == "feature2iid")
    assert (
        "Brand:" in features.messages[0]["content"] and "Description:" not in features.messages[0]["content"]
    )


def test_a_build_with_the_same_seed_is_byte_identical_and_other_tasks_stay_the_same(tmp_path: Path) -> None:
    data(tasks=NEW_TASKS, seed=3).save(tmp_path / "a")
    data(tasks=NEW_TASKS, seed=3).save(tmp_path / "b")
    data(tasks=NEW_TASKS, seed=4).save(tmp_path / "c")
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    # adding the new tasks changes no other task's examples; a folder without them still loads
    before = data(tasks=["retrieval", "item_title"], general_share=0.0)
    after = data(tasks=["retrieval", "item_title", *NEW_TASKS], general_share=0.0)
    assert [e for e in after.train + after.test if e.task not in NEW_TASKS] == before.train + before.test
    before.save(tmp_path / "old")
    assert ExplainData.load(tmp_path / "old").train == before.train


def test_summary_test_users_are_held_out() -> None:
    built = data(tasks=["uid2summary"], per_task=10, test_per_task=4)
    train_users = {e.user for e in built.train}
    test_users = {e.user for e in built.test}
    assert test_users and not train_users & test_users


def test_modes_the_summary_reads_a_vector_or_a_history_and_the_item_questions_read_the_same() -> None:
    built = data(tasks=NEW_TASKS)
    catalog = dataset().catalog
    summary = next(e for e in built.train if e.task == "uid2summary")
    behaviour = Renderer(catalog, "behaviour")
    assert behaviour.applies(summary)
    text = behaviour.render(summary).messages[0]["content"]
    assert USER_TOKEN not in text and catalog.display_title(positions(catalog, summary.history)[0]) in text
    intention = Renderer(catalog, "intention").render(summary)
    assert USER_TOKEN in intention.messages[0]["content"] and len(intention.users) == 1
    features = next(e for e in built.train if e.task == "feature2iid")
    rendered = {
        mode: Renderer(catalog, mode).render(features).messages
        for mode in ("behaviour", "intention", "hybrid")
    }
    assert rendered["behaviour"] == rendered["intention"] == rendered["hybrid"]


def test_metrics_coverage_of_the_summary_and_naming_the_item_or_its_twin() -> None:
    built = data(tasks=NEW_TASKS)
    catalog = dataset().catalog
    scorer = AlignmentScorer(catalog)
    summary = next(e for e in built.test if e.task == "uid2summary")
    facts = user_summary(catalog, positions(catalog, summary.history)).facts(catalog)
    assert scorer.score(summary, summary.answer) == {"summary_coverage": 1.0}
    assert scorer.score(summary, f"They like {facts[0][0].upper()}.")["summary_coverage"] == pytest.approx(
        1 / len(facts)
    )
    assert scorer.score(summary, "")["summary_coverage"] == 0.0

    for task, metric in (("feature2iid", "feature_accuracy"), ("description2iid", "description_accuracy")):
        example = next(e for e in built.test if e.task == task)
        assert scorer.score(example, example.answer + "\nIt is a classic.") == {metric: 1.0}
        other = next(
            t for t in (catalog.display_title(p) for p in range(len(catalog))) if t != example.answer
        )
        assert scorer.score(example, other) == {metric: 0.0}
        assert scorer.score(example, "No idea.") == {metric: 0.0}

    # two films that differ by title only: the features cannot tell them apart, so either is right
    films = dataset().catalog.items
    twin = films.iloc[[0]].assign(item_id=999, title="Matrix Twin")
    doubled = Catalog(pd.concat([films, twin], ignore_index=True), dataset().catalog.schema)
    assert item_features(doubled, 0) == item_features(doubled, len(films))
    question = replace(next(e for e in built.test if e.task == "feature2iid"), items=(1,))  # The Matrix
    assert AlignmentScorer(doubled).score(question, "Matrix Twin") == {"feature_accuracy": 1.0}
    assert scorer.score(question, "The Matrix") == {"feature_accuracy": 1.0}


def test_a_summary_counts_recurring_values_once_per_item_and_prefers_the_latest_typical_items() -> None:
    films = dataset().catalog
    matrix, godfather, part_two = positions(films, (1, 2, 3))
    summary = user_summary(films, [godfather, part_two, matrix, godfather])
    assert summary.text(films, "film") == (
        "Recurring genres: Crime, Drama; director: Francis Ford Coppola; actors: Al Pacino; language: English. "
        "Typical films: The Godfather (1972); The Godfather Part II (1974)."
    )
    assert user_summary(titles_only().catalog, [0, 1, 0]) == user_summary(titles_only().catalog, [1, 0])
    assert user_summary(titles_only().catalog, [1, 0]).items == (0, 1)
