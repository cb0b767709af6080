"""Alignment data: labels come from the target model, users are split, files are seeded and validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from recai.data import DataError
from recai.explain import ExplainData, Renderer, TargetModel, build_explain_data
from recai.explain.examples import ExplainExample
from recai.explain.render import ITEM_TOKEN, USER_TOKEN
from recai.explain.tasks import TASKS, TEST_TASKS
from recai.llm.prompting import prompt_variants
from recai.rec import ALS, Popularity
from recai.train.example_sets import read_examples
from tests.explain.helpers import data, dataset, small_data, target


def positions(ids: tuple) -> list[int]:
    return [int(p) for p in dataset().catalog.index_of(list(ids))]


def test_every_label_is_what_the_target_model_does() -> None:
    built, t, catalog = small_data(), target(), dataset().catalog
    assert {e.task for e in built.train} == set(TASKS)
    assert {e.task for e in built.test} == set(TEST_TASKS)
    for e in built.train + built.test:
        history = positions(e.history)
        items = positions(e.items) if e.task != "general" else []
        if e.task == "retrieval":
            assert items == t.ranking(history)[:3].tolist()
            assert e.answer.splitlines()[0] == f"1. {catalog.display_title(items[0])}"
        elif e.task == "ranking":
            ranking = t.ranking(history).tolist()
            assert sorted(items, key=ranking.index) == items and sorted(e.candidates) == sorted(e.items)
        elif e.task == "classification":
            ranking = t.ranking(history).tolist()
            rank = ranking.index(items[0])
            if e.label == "yes":
                assert rank < max(1, int(len(ranking) * 0.1)) and e.answer == "Yes."
            else:
                assert rank >= len(ranking) - int(len(ranking) * 0.5) and e.answer == "No."
        elif e.task == "item_similar":
            position = positions((int(e.messages[0]["content"].split("<<item:")[1].split(">>")[0]),))[0]
            assert items == t.similar(position, 3)
        elif e.task == "history":
            assert items == history and e.opaque
        elif e.task == "item_title":
            assert e.answer == catalog.display_title(items[0]) and e.opaque
    for part in (built.train, built.test):  # balanced exactly: one label always given scores 0.5
        labels = [e.label for e in part if e.task == "classification"]
        assert len(labels) >= 2 and abs(labels.count("yes") - labels.count("no")) <= 1


def test_matched_negatives_are_as_popular_with_the_target_as_the_users_yes_items() -> None:
    from recai.explain.tasks import ExplainTaskBuilder

    t = target()
    builder = ExplainTaskBuilder(dataset(), t, history_len=3, k=3, n_candidates=3, negatives="matched")
    counts = builder.ctx.top_share_counts()
    assert counts.sum() > 0 and (counts == 0).any()
    made = builder.generate("classification", 8, "test")
    negatives = [e for e in made if e.label == "no"]
    assert len(negatives) == 4
    for e in negatives:
        item = positions(e.items)[0]
        ranking = t.ranking(positions(e.history)).tolist()
        bottom = ranking[len(ranking) - int(len(ranking) * 0.5) :]
        top = ranking[: max(1, int(len(ranking) * 0.1))]
        assert item in bottom
        # for one of this user's yes items, no bottom item is closer to it in popularity
        assert any(
            abs(int(counts[item]) - int(counts[y]))
            == min(abs(int(counts[b]) - int(counts[y])) for b in bottom)
            for y in top
        )
    plain = ExplainTaskBuilder(dataset(), t, history_len=3, k=3, n_candidates=3)
    assert plain.generate("classification", 8, "test") != made  # the default keeps any bottom item
    with pytest.raises(ValueError, match="negatives must be one of"):
        ExplainTaskBuilder(dataset(), t, negatives="random")
    assert data(negatives="matched", tasks=["classification"]).meta["negatives"] == "matched"


def test_task_sizes_override_the_per_task_counts_of_the_tasks_they_name() -> None:
    built = data(task_sizes={"classification": 8, "item_title": 0}, test_task_sizes={"classification": 6})
    counts = built.counts()
    assert counts["classification"] == {"train": 8, "test": 6}
    assert counts["item_title"]["train"] == 0 and counts["item_title"]["test"] == 2
    assert counts["ranking"] == {"train": 4, "test": 2}
    assert built.meta["task_sizes"] == {"classification": 8, "item_title": 0}
    labels = [e.label for e in built.train if e.task == "classification"]
    assert labels.count("yes") == labels.count("no") == 4
    # the other tasks' examples are the ones built without the override (each task has its own seeds)
    plain = small_data()
    assert [e for e in built.train if e.task == "ranking"] == [e for e in plain.train if e.task == "ranking"]


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"task_sizes": {"general": 3}}, "task_sizes: 'general' has no such part"),
        ({"test_task_sizes": {"item_attributes": 3}}, "test_task_sizes: 'item_attributes' has no such"),
        ({"task_sizes": {"ranking": -1}}, "'ranking' needs a count >= 0"),
        ({"task_sizes": {"ranking": 2.5}}, "'ranking' needs a count >= 0"),
        ({"task_sizes": {"ranking": 3}, "tasks": ["retrieval"]}, "'ranking' is not among the tasks built"),
    ],
)
def test_bad_task_sizes_are_refused_by_name(sizes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        data(**sizes)


def test_task_sizes_parse_from_command_line_pairs() -> None:
    from recai.explain.tasks import parse_task_sizes

    assert parse_task_sizes(["classification=800", " item_title = 3 "]) == {
        "classification": 800,
        "item_title": 3,
    }
    assert parse_task_sizes(None) == {}
    for bad, message in (("classification", "takes TASK=N"), ("ranking=-2", "takes TASK=N"),
                         ("ranking=x", "takes TASK=N"), ("rankings=2", "unknown task 'rankings'")):  # fmt: skip
        with pytest.raises(ValueError, match=f"--test-task-size.*{message}|{message}"):
            parse_task_sizes([bad], "--test-task-size")


def test_test_users_are_never_training_users() -> None:
    built = small_data()
    train_users = {e.user for e in built.train if e.user is not None}
    test_users = {e.user for e in built.test if e.user is not None}
    assert train_users and test_users and not train_users & test_users


def test_seeded_saved_atomically_and_reloaded(tmp_path: Path) -> None:
    small_data().save(tmp_path / "a")
    data().save(tmp_path / "b")
    data(seed=1).save(tmp_path / "c")
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    loaded = ExplainData.load(tmp_path / "a")
    assert loaded.train == small_data().train and loaded.test == small_data().test
    history = [[0, 1, 2]]
    assert np.allclose(loaded.target.scores(history), target().scores(history))
    assert list(loaded.catalog.ids) == list(dataset().catalog.ids)
    with pytest.raises(FileExistsError):
        small_data().save(tmp_path / "a")


def test_reading_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = small_data().train[0].to_dict()
    bad = {**good, "label": "maybe"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 2, field 'label'"):
        read_examples(path, ExplainExample)
    slot_in_answer = {**good, "messages": [good["messages"][0], {"role": "assistant", "content": "<<user>>"}]}
    path.write_text(json.dumps(slot_in_answer) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'messages\[1\].content'"):
        read_examples(path, ExplainExample)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match="line 1: not valid JSON"):
        read_examples(path, ExplainExample)


def test_modes_render_text_placeholders_or_both() -> None:
    catalog = dataset().catalog
    ranking = next(e for e in small_data().train if e.task == "ranking")
    titles = [catalog.display_title(p) for p in positions(ranking.candidates)]
    behaviour = Renderer(catalog, "behaviour").render(ranking)
    assert USER_TOKEN not in str(behaviour.messages) and all(
        t in behaviour.messages[0]["content"] for t in titles
    )
    assert behaviour.users == [] and behaviour.items == []
    intention = Renderer(catalog, "intention").render(ranking)
    prompt = intention.messages[0]["content"]
    assert prompt.count(USER_TOKEN) == 1 and prompt.count(ITEM_TOKEN) == 3 and titles[0] not in prompt
    assert intention.items == positions(ranking.candidates)
    assert intention.users == [(ranking.user, tuple(positions(ranking.history)))]
    hybrid = Renderer(catalog, "hybrid").render(ranking).messages[0]["content"]
    assert hybrid.count(ITEM_TOKEN) == 3 and all(f"{ITEM_TOKEN} {t}" in hybrid for t in titles)
    opaque = next(e for e in small_data().train if e.task == "history")
    assert not Renderer(catalog, "behaviour").applies(opaque)
    opaque_prompt = Renderer(catalog, "hybrid").render(opaque).messages[0]["content"]
    assert f"the user {USER_TOKEN}" in opaque_prompt and f"{USER_TOKEN}, whose history" not in opaque_prompt
    assert not any(catalog.display_title(p) in opaque_prompt for p in positions(opaque.history))
    assert Renderer(catalog, "hybrid").render(opaque, with_answer=False).messages[-1]["role"] == "user"


def test_prompts_vary_in_wording_but_not_in_what_they_ask() -> None:
    """Every task with several wordings uses more than one, each a known wording with its slots filled
    (8 examples each: in 4, one task's seeded draws happen to pick the same wording every time)."""
    built = data(per_task=8, test_per_task=1)
    for task in (t for t in TASKS if t != "general"):
        wordings = prompt_variants(task, "recai.explain")
        assert len(wordings) == 3, task
        prompts = [e.messages[0]["content"] for e in built.train if e.task == task]
        assert prompts, task
        heads = {w.split("$")[0] for w in wordings}
        used = {h for h in heads for p in prompts if p.startswith(h)}
        assert len(used) >= 2, (task, used)
        assert all("$" not in p for p in prompts), task


def test_target_vectors_reproduce_its_scores_and_it_is_frozen() -> None:
    t = target()
    histories = [[0, 1, 2], [5], [3, 4]]
    users = t.user_vectors(histories)
    assert np.allclose(users @ t.item_vectors().T, t.scores(histories), atol=1e-4)
    assert t.frozen and not any(p.requires_grad for p in t.recommender.net_.parameters())
    split = dataset().split("leave_one_out")
    als = TargetModel(ALS(factors=4, iterations=2, seed=0).fit(split.train))
    known = list(split.train.user_ids[:2])
    seqs = [split.train.sequence(u).tolist() for u in known]
    assert np.allclose(
        als.user_vectors(seqs, known) @ als.item_vectors().T, als.scores(seqs, known), atol=1e-4
    )
    with pytest.raises(TypeError, match="embeddings"):
        TargetModel(Popularity().fit(split.train))


def test_an_mf_users_vector_is_the_one_that_made_the_label() -> None:
    """ALS keeps factors for known users that reflect their whole log; an example shows a cut of it, and
    its labels come from that cut. The vector handed to the projector must rank like the labels."""
    from recai.explain.model import batch_vectors

    split = dataset().split("leave_one_out")
    als = TargetModel(ALS(factors=4, iterations=2, seed=0).fit(split.train))
    built = build_explain_data(
        dataset(), als, split=split, per_task=6, test_per_task=2, history_len=3, k=3, noun="film"
    )
    renderer = Renderer(built.catalog, "hybrid")
    examples = [e for e in built.train if e.task == "retrieval"]
    rendered = [renderer.render(e) for e in examples]
    users, _ = batch_vectors(als, rendered, als.item_vectors())
    assert users is not None and users.shape[0] == len(examples)
    stored_differs = False
    for row, example in zip(users.numpy(), examples, strict=True):
        history = positions(example.history)
        top = [int(i) for i in np.argsort(-(row @ als.item_vectors().T), kind="stable") if i not in history]
        assert top[: len(example.items)] == positions(example.items)
        stored = als.user_vectors([history], [example.user])[0]
        stored_differs |= not np.allclose(stored, row)
    assert stored_differs  # the stored factors would have described another user: the test can fail


def test_too_few_users_is_an_error_not_a_leak() -> None:
    """Test users are never reused for training: with fewer than two eligible users nothing is built."""
    with pytest.raises(ValueError, match="at least 2 users with 10000"):
        data(min_history=10_000, history_len=10_000)
