"""LLM-written queries (user summaries, search queries, dialogues): used when valid, rejected and
replaced by templates when they name the item, leave out a condition, are empty or too long; cached so
that a rebuild makes no calls and gives the same bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recai.embed.tasks import ExampleSplit, build_examples, satisfies
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel
from tests.catalog_fixtures import FILMS, film_dataset
from tests.embed.fixtures import LLM_TASKS, good_reply, prompt_conditions


def _build(llm: ScriptedChatModel, cache: Path, **kwargs: object) -> ExampleSplit:
    return build_examples(
        film_dataset(), LLM_TASKS, per_task=6, seed=1, llm=llm, cache=cache, progress=False, **kwargs
    )  # type: ignore[arg-type]


def test_valid_llm_text_is_used_and_checked(tmp_path: Path) -> None:
    llm = ScriptedChatModel(good_reply)
    data = _build(llm, tmp_path / "cache.sqlite")
    examples = [*data.train, *data.test]
    assert {e.task for e in examples} == set(LLM_TASKS)
    catalog = film_dataset().catalog
    for e in examples:
        assert e.source["writer"] == "llm" and e.source["model"] == "scripted" and e.source["attempts"] == 1
        if e.task == "user_summary":
            assert e.query.startswith("Likes ") and not e.predicates  # the "Summary:" label is stripped
        else:
            ok = satisfies(catalog, e.predicates)
            assert ok[catalog.index_of([e.positive])[0]] and not ok[catalog.index_of(list(e.negatives))].any()
        if e.task == "conversation":
            assert e.query.startswith("User: ") and "\nAssistant: " in e.query
    assert data.meta["llm"] == "scripted"
    assert data.meta["writers"] == {t: {"llm": c["train"] + c["test"]} for t, c in data.counts().items()}
    prompts = [call[-1]["content"] for call in llm.calls if "summary" not in call[-1]["content"]]
    assert prompts and not any("Matrix" in p for p in prompts)  # facts reach the model with titles masked


def _target(prompt: str) -> str:
    """The hidden item's title, found from its director and year in the masked facts."""
    (title,) = [f[1] for f in FILMS if f[4][0] in prompt and f"Year: {f[2]}." in prompt]
    return title


def _newest(prompt: str) -> str:
    """The first title of a summary prompt's history."""
    match = re.search(r"^- (.*)$", prompt, re.M)
    assert match
    return match.group(1)


#: For each kind of bad reply: what each task gets, and the reason it must be rejected for.
BAD = {
    "names the item": {
        "user_summary": (lambda p: f"Likes things like {_newest(p)}.", "names a title"),
        "search_query": (lambda p: f"Try {_target(p)} " + " ".join(prompt_conditions(p)), "names the item"),
        "conversation": (
            lambda p: f"User: Try {_target(p)} " + " ".join(prompt_conditions(p)),
            "names the item",
        ),
    },
    "empty": {
        "user_summary": (lambda p: "  ", "empty"),
        "search_query": (lambda p: "", "empty"),
        "conversation": (lambda p: "", "no User lines"),
    },
    "too long": {
        "user_summary": (lambda p: "Likes " + "very " * 100, "too long"),
        "search_query": (lambda p: "word " * 100 + " ".join(prompt_conditions(p)), "too long"),
        "conversation": (lambda p: "User: " + "word " * 300 + " ".join(prompt_conditions(p)), "too long"),
    },
    "leaves out a condition": {
        "user_summary": (lambda p: f"Likes things like {_newest(p)}.", "names a title"),  # no conditions
        "search_query": (lambda p: "a good one", "leaves out"),
        "conversation": (lambda p: "User: a good one", "leaves out"),
    },
}


def _task_of(prompt: str) -> str:
    if "summary of this person's tastes" in prompt:
        return "user_summary"
    return "search_query" if "search query" in prompt else "conversation"


@pytest.mark.parametrize("case", BAD)
def test_bad_llm_text_is_retried_then_replaced_by_a_template(tmp_path: Path, case: str) -> None:
    def script(messages: list[Message]) -> str:
        prompt = messages[-1]["content"]
        return BAD[case][_task_of(prompt)][0](prompt)

    llm = ScriptedChatModel(script)
    data = _build(llm, tmp_path / "cache.sqlite")
    examples = [*data.train, *data.test]
    assert {e.task for e in examples} == set(LLM_TASKS)
    for e in examples:
        assert e.source["writer"] == "template" and e.source["attempts"] == 3
        reason = BAD[case][e.task][1]
        assert len(e.source["rejected"]) == 3 and all(reason in r for r in e.source["rejected"]), e.source
        assert "Try " not in e.query and "word word" not in e.query and "very very" not in e.query
    seeds = {call[-1]["content"] for call in llm.calls}
    assert len(llm.calls) >= 3 * len(examples) and seeds  # three tries per example


def test_a_rebuild_reads_every_reply_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    first = _build(ScriptedChatModel(good_reply), cache).save(tmp_path / "first")
    silent = ScriptedChatModel([])  # any call would raise: the script is empty
    second = _build(silent, cache).save(tmp_path / "second")
    assert silent.calls == []
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_model_errors_stop_the_build(tmp_path: Path) -> None:
    def broken(messages: list[Message]) -> str:
        raise ConnectionError("server down")

    with pytest.raises(ConnectionError, match="server down"):
        _build(ScriptedChatModel(broken), tmp_path / "cache.sqlite")
