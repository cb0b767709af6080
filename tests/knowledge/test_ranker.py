"""The LLM ranker: its prompt and schema, repairs that are always counted, and position-bias control."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from recai.data import Catalog, Dataset
from recai.evaluate.generative import ListEvaluator, ListSample, summarize_list_records
from recai.knowledge import KnowledgeBase, KnowledgeListSystem, KnowledgeRanker, repair
from recai.knowledge.ranker import REPAIRS, lenient_numbers
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel
from tests.knowledge.data import leaky_dataset, position, train_only


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return leaky_dataset()


@pytest.fixture(scope="module")
def kb(ds: Dataset) -> KnowledgeBase:
    return KnowledgeBase.build(ds.catalog, train_only(ds.split()), kinds="attributes,cooccurrence,graph")


def shown_numbers(messages: list[Message]) -> dict[str, int]:
    """Title -> number as listed under 'Candidates:' in the prompt."""
    text = messages[-1]["content"].split("Candidates:")[1]
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\[(\d+)\] (.+)$", text, re.M)}


def test_repair_counts_every_fix() -> None:
    order, counts = repair([3, "2", 3, 9, 0, "x", True, 2.0], 4)
    assert order == [2, 1, 0, 3]  # 3, 2 kept; 1 and 4 appended in the order shown
    assert counts == {
        "index_not_integer": 2,
        "index_out_of_range": 2,
        "index_duplicate": 2,
        "index_missing_appended": 2,
        "answer_not_schema_valid": 0,
        "answer_unparsed": 0,
        "answer_in_shown_order": 0,
    }
    order, counts = repair(None, 3)
    assert order == [0, 1, 2] and counts["answer_unparsed"] == 1 and counts["index_missing_appended"] == 3
    assert repair([2], 3, append_missing=False) == ([1], dict.fromkeys(REPAIRS, 0))
    assert lenient_numbers('Sure! {"ranking": [4, 1]}') == [4, 1]
    assert lenient_numbers("I pick 3, then 1") == [3, 1]
    assert lenient_numbers("no idea") is None


def test_an_answer_that_copies_the_shown_order_is_flagged() -> None:
    assert repair(list(range(1, 21)), 20)[1]["answer_in_shown_order"] == 1
    rotated = [*range(13, 21), *range(2, 13)]  # seen from the 1.5B model: a rotation, one number left out
    assert repair(rotated, 20)[1]["answer_in_shown_order"] == 1
    assert repair([18, 1, 19, 10, 17, 15, 16, 14, 13, 20], 20)[1]["answer_in_shown_order"] == 0
    assert repair([1, 2, 3], 20)[1]["answer_in_shown_order"] == 0  # too short to tell


def test_prompt_carries_knowledge_and_numbered_candidates(ds: Dataset, kb: KnowledgeBase) -> None:
    catalog = ds.catalog
    psycho, vertigo, up, heat = (position(catalog, i) for i in (11, 12, 6, 7))

    def reply(messages: list[Message]) -> str:
        numbers = shown_numbers(messages)
        return json.dumps([numbers["Vertigo (1958)"], numbers["Up (2009)"]])

    llm = ScriptedChatModel(reply)
    ranker = KnowledgeRanker(llm, catalog, kb, budget_tokens=300, item_noun="films")
    result = ranker.rank([heat, psycho], [up, vertigo, position(catalog, 13)], key="u1")
    prompt = llm.calls[0][-1]["content"]
    assert "- Heat (1995)\n- Psycho (1960)" in prompt  # history, oldest first
    assert "What is known about these films" in prompt
    assert "Vertigo (1958) [2]" in prompt  # facts cite the candidate's number
    assert "Alfred Hitchcock" in prompt
    assert llm.schemas[0] == ranker.schema(3)
    assert llm.schemas[0]["items"] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert result.positions == [vertigo, up, position(catalog, 13)]
    assert result.counts["index_missing_appended"] == 1 and result.error is None
    call = result.calls[0]
    assert call.selection.tokens <= 300 and call.selection.lines
    details = result.details(catalog, ranker.counter)
    assert details["knowledge_tokens"] == call.selection.tokens and details["prompt_tokens"] > 0
    assert details["counter"] == {"name": "approx:3-chars-per-token", "exact": False}


def test_without_knowledge_the_prompt_has_no_knowledge_section(ds: Dataset, kb: KnowledgeBase) -> None:
    llm = ScriptedChatModel(lambda m: "[1]")
    for ranker in (
        KnowledgeRanker(llm, ds.catalog, None),
        KnowledgeRanker(llm, ds.catalog, kb, budget_tokens=0),
    ):
        result = ranker.rank([position(ds.catalog, 11)], [position(ds.catalog, 12), position(ds.catalog, 6)])
        assert "What is known" not in llm.calls[-1][-1]["content"]
        assert result.calls[0].selection.lines == []
    assert KnowledgeRanker(llm, ds.catalog, kb, kinds=["graph"]).kinds == ["graph"]


def test_invalid_structured_output_is_read_leniently_and_counted(ds: Dataset) -> None:
    llm = ScriptedChatModel(["My ranking: 2, 2, 7"])
    ranker = KnowledgeRanker(llm, ds.catalog, None, schema_retries=0)
    candidates = [position(ds.catalog, i) for i in (2, 3, 5)]
    result = ranker.rank([position(ds.catalog, 6)], candidates)
    assert result.positions == [candidates[1], candidates[0], candidates[2]]
    assert result.counts["answer_not_schema_valid"] == 1
    assert result.counts["index_duplicate"] == 1 and result.counts["index_out_of_range"] == 1
    assert result.error and "invalid structured output" in result.error
    # a retry that succeeds is not an invalid answer
    llm = ScriptedChatModel(["nonsense", "[3, 1, 2]"])
    result = KnowledgeRanker(llm, ds.catalog, None, schema_retries=1).rank([0], candidates)
    assert result.positions == [candidates[2], candidates[0], candidates[1]]
    assert sum(result.counts.values()) == 0 and len(llm.calls) == 2


def test_orders_are_seeded_and_merged_by_borda(ds: Dataset) -> None:
    catalog = ds.catalog
    candidates = [position(catalog, i) for i in (2, 3, 5, 6, 7)]
    favourite = position(catalog, 7)

    def reply(messages: list[Message]) -> str:
        numbers = shown_numbers(messages)
        title = catalog.display_title(favourite)
        rest = [n for t, n in numbers.items() if t != title]
        return json.dumps([numbers[title], *rest])  # the favourite first, then the order shown

    llm = ScriptedChatModel(reply)
    ranker = KnowledgeRanker(llm, catalog, None, orders=3, seed=1)
    result = ranker.rank([0], candidates, key="user-7")
    assert len(result.calls) == 3 and result.positions[0] == favourite
    shown = [c.shown for c in result.calls]
    assert shown[0] == candidates and len({tuple(s) for s in shown}) > 1
    assert ranker.shown_orders(candidates, "user-7") == shown  # the same key, the same orders
    assert ranker.shown_orders(candidates, "user-8") != shown
    # Borda: the merged list is a permutation of the candidates, deterministic
    assert sorted(result.positions) == sorted(candidates)
    assert ranker.rank([0], candidates, key="user-7").positions == result.positions


@pytest.mark.parametrize(
    ("votes", "expect"),
    [
        ("ABB", "B"),  # two orders of three prefer B: B wins although the first order said A
        ("AB", "A"),  # exact opposites tie on every item: the first order's ranking breaks the ties
        ("BAA", "A"),
    ],
)
def test_borda_merges_the_orders_by_points(ds: Dataset, votes: str, expect: str) -> None:
    catalog = ds.catalog
    candidates = [position(catalog, i) for i in (2, 3, 5, 6, 7)]
    rankings = {"A": candidates, "B": candidates[::-1]}
    calls = iter(votes)

    def reply(messages: list[Message]) -> str:
        numbers = shown_numbers(messages)
        wanted = rankings[next(calls)]
        return json.dumps([numbers[catalog.display_title(p)] for p in wanted])

    ranker = KnowledgeRanker(ScriptedChatModel(reply), catalog, None, orders=len(votes), seed=3)
    result = ranker.rank([0], candidates, key="u")
    assert [c.ranking for c in result.calls] == [rankings[v] for v in votes]
    assert result.positions == rankings[expect]


def test_candidate_order_options(ds: Dataset) -> None:
    catalog = ds.catalog
    candidates = [position(catalog, i) for i in (2, 3, 5, 6)]
    popularity = np.zeros(len(catalog))
    popularity[candidates] = [1, 5, 3, 9]
    llm = ScriptedChatModel(lambda m: "[1]")
    by_popularity = KnowledgeRanker(llm, catalog, None, candidate_order="popularity", popularity=popularity)
    assert by_popularity.shown_orders(candidates)[0] == [
        candidates[3],
        candidates[1],
        candidates[2],
        candidates[0],
    ]
    shuffled = KnowledgeRanker(llm, catalog, None, candidate_order="random", seed=4)
    assert sorted(shuffled.shown_orders(candidates, "k")[0]) == sorted(candidates)
    with pytest.raises(ValueError, match="popularity="):
        KnowledgeRanker(llm, catalog, None, candidate_order="popularity")
    with pytest.raises(ValueError, match="candidate_order"):
        KnowledgeRanker(llm, catalog, None, candidate_order="alphabetical")
    with pytest.raises(ValueError, match="distinct"):
        KnowledgeRanker(llm, catalog, None).rank([0], [1, 1])


def test_the_evaluator_records_repairs_and_knowledge(ds: Dataset, kb: KnowledgeBase) -> None:
    catalog: Catalog = ds.catalog
    target = position(catalog, 12)
    sample = ListSample(
        id="u",
        user="u",
        history=[position(catalog, 11)],
        target=target,
        candidates=[position(catalog, 6), target],
    )
    llm = ScriptedChatModel(lambda m: "[2, 2, 5]")
    system = KnowledgeListSystem(KnowledgeRanker(llm, catalog, kb, schema_retries=0))
    record = ListEvaluator(catalog, k=2, ks=(1, 2)).evaluate_sample(system, sample)
    assert record["scores"]["hit@1"] == 1.0
    assert record["counts"]["index_duplicate"] == 1 and record["counts"]["index_out_of_range"] == 1
    assert record["counts"]["answer_not_schema_valid"] == 1  # maximum 2: '5' fails the schema
    details = record["orders"][0]["details"]
    assert details["calls"][0]["numbers"] == [2, 2, 5]
    assert any("Hitchcock" in f["text"] for f in details["calls"][0]["knowledge"]["facts"])
    summary = summarize_list_records([record])
    assert summary["counts"]["index_duplicate"] == 1 and summary["answers_with_errors"] == 1
    with pytest.raises(ValueError, match="retrieval"):
        system.answer(ListSample(id="r", user="r", history=[0], target=1), None, 5)


def test_the_budget_is_counted_with_the_rankers_own_tokenizer(ds: Dataset, kb: KnowledgeBase) -> None:
    """A chat model with a tokenizer (transformers) sets the counter; a costlier tokenizer admits less."""

    class CharTokenizer:  # one token per character: far costlier than the approximate counter
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [ord(c) for c in text]

    class TokenizedModel(ScriptedChatModel):
        tokenizer = CharTokenizer()

    catalog = ds.catalog
    history = [position(catalog, i) for i in (11, 2, 3)]
    candidates = [position(catalog, i) for i in (12, 5, 6, 7)]
    answer = json.dumps([1, 2, 3, 4])
    chars = KnowledgeRanker(TokenizedModel([answer]), catalog, kb, budget_tokens=150)
    approx = KnowledgeRanker(ScriptedChatModel([answer]), catalog, kb, budget_tokens=150)
    assert chars.counter.exact and chars.counter.name.startswith("hf:") and not approx.counter.exact
    by_chars = chars.rank(history, candidates).calls[0].selection
    by_approx = approx.rank(history, candidates).calls[0].selection
    assert by_chars.lines and len(by_chars.lines) < len(by_approx.lines)
    assert by_chars.tokens == len(by_chars.text) <= 150
