"""DOKE's prompt variants: similar users' examples, the preference chain and ratings."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from recai.data import Catalog, Interactions
from recai.knowledge import KnowledgeRanker
from recai.knowledge.ranker import REPAIRS
from recai.knowledge.similar_users import SimilarUsers
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel


def shown_numbers(messages: list[Message]) -> dict[str, int]:
    """Title -> number as listed under 'Candidates:' in the prompt."""
    text = messages[-1]["content"].split("Candidates:")[1]
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\[(\d+)\] (.+)$", text, re.M)}


def _train(catalog: Catalog, *, timed: bool = True) -> Interactions:
    ids = list(catalog.ids)
    rows = [
        ("twin", ids[0], 1), ("twin", ids[1], 2), ("twin", ids[2], 3), ("twin", ids[6], 4),
        ("near", ids[0], 1), ("near", ids[3], 2), ("near", ids[4], 3), ("near", ids[7], 4),
        ("far", ids[3], 1), ("far", ids[4], 2), ("far", ids[5], 3),
        ("me", ids[0], 1), ("me", ids[1], 2), ("me", ids[2], 3),
        ("short", ids[0], 1), ("short", ids[1], 2),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    if not timed:
        frame = frame.drop(columns="timestamp")
    return Interactions(frame, catalog.ids)


def test_similar_users_are_ranked_by_overlap_and_never_the_user(catalog: Catalog) -> None:
    users = SimilarUsers(_train(catalog), history_items=2)
    found = users.examples([0, 1, 2], 5, exclude_user="me")
    assert [e.user for e in found] == ["twin", "near"]  # "far" shares nothing, "short" is too short
    assert found[0].chosen == 6 and found[0].history == (1, 2)  # the last item is the choice
    assert found[0].similarity > found[1].similarity
    assert [e.user for e in users.examples([0, 1, 2], 1)] == ["me"]  # unexcluded, the user is most alike
    assert users.examples([], 3) == [] and users.examples([0], 0) == []


def _ranker(catalog: Catalog, reply, **options) -> tuple[KnowledgeRanker, ScriptedChatModel]:
    llm = ScriptedChatModel(reply)
    return KnowledgeRanker(llm, catalog, None, item_noun="films", **options), llm


def test_examples_are_shown_and_worded_for_untimed_logs(catalog: Catalog) -> None:
    users = SimilarUsers(_train(catalog))
    ranker, llm = _ranker(catalog, lambda m: "[1]", similar_users=users, n_examples=2)
    ranker.rank([0, 1, 2], [3, 6, 7], user="me")
    prompt = llm.calls[0][-1]["content"]
    assert "what each of them chose next" in prompt
    assert f"-> {catalog.display_title(6)}" in prompt and "What is known" not in prompt
    untimed = SimilarUsers(_train(catalog, timed=False))
    ranker, llm = _ranker(catalog, lambda m: "[1]", similar_users=untimed, n_examples=2)
    ranker.rank([0, 1, 2], [3, 6, 7], user="me")
    assert "what each of them also liked" in llm.calls[0][-1]["content"]
    with pytest.raises(ValueError, match="similar_users"):
        KnowledgeRanker(ScriptedChatModel(["[1]"]), catalog, n_examples=2)


def test_the_chain_states_the_taste_before_ranking(catalog: Catalog) -> None:
    part_two = catalog.display_title(7)

    def reply(messages: list[Message]) -> str:
        numbers = shown_numbers(messages)
        return json.dumps({"preferences": "Crime epics.", "ranking": [numbers[part_two]]})

    ranker, llm = _ranker(catalog, reply, prompt_style="chain")
    result = ranker.rank([6], [3, 7, 2])
    assert result.positions[0] == 7
    assert llm.schemas[0]["required"] == ["preferences", "ranking"]
    assert "what this user's taste is" in llm.calls[0][-1]["content"]
    assert result.calls[0].repairs["index_missing_appended"] == 2
    assert ranker.config()["prompt_style"] == "chain"


def test_ratings_become_a_ranking_with_ties_in_shown_order(catalog: Catalog) -> None:
    ranker, llm = _ranker(catalog, lambda m: "[2, 5, 2, 4]", prompt_style="rating")
    result = ranker.rank([6], [3, 7, 2, 1])
    assert result.positions == [7, 1, 3, 2]
    assert llm.schemas[0]["minItems"] == 4 and llm.schemas[0]["items"]["maximum"] == 5
    assert sum(result.calls[0].repairs[name] for name in REPAIRS) == 0


def test_bad_ratings_drop_their_candidate_and_are_counted(catalog: Catalog) -> None:
    ranker, _ = _ranker(catalog, lambda m: "Ratings: 9, 3, 4", prompt_style="rating")
    result = ranker.rank([6], [3, 7, 2])
    assert result.positions == [2, 7, 3]  # 4 then 3; the 9 is no rating: candidate 3 appended last
    counts = result.calls[0].repairs
    assert counts["answer_not_schema_valid"] == 1 and counts["index_missing_appended"] == 1
    with pytest.raises(ValueError, match="prompt_style"):
        KnowledgeRanker(ScriptedChatModel(["[1]"]), catalog, prompt_style="pointwise")


def test_the_listwise_prompt_is_unchanged_without_examples(catalog: Catalog) -> None:
    plain, llm = _ranker(catalog, lambda m: "[1]")
    plain.rank([6], [3, 7])
    users = SimilarUsers(_train(catalog))
    same, llm2 = _ranker(catalog, lambda m: "[1]", similar_users=users, n_examples=0)
    same.rank([6], [3, 7])
    assert llm.calls[0] == llm2.calls[0]
