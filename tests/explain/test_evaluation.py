"""Alignment metrics on hand-written replies, and judged explanations with a scripted judge."""

from __future__ import annotations

import itertools
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from recai.explain.evaluation import (
    AlignmentScorer,
    decision_facts,
    decision_judge,
    judge_explanations,
    ranking_ndcg,
    run_alignment,
    why_cases,
)
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.llm.scripted import ScriptedChatModel
from tests.explain.helpers import dataset, small_data, target


def first(task: str) -> Any:
    return next(e for e in small_data().test if e.task == task)


def titles(ids: Any) -> list[str]:
    catalog = dataset().catalog
    return [catalog.display_title(int(p)) for p in catalog.index_of(list(ids))]


def test_each_task_is_scored_against_the_target() -> None:
    scorer = AlignmentScorer(dataset().catalog)
    retrieval = first("retrieval")
    names = titles(retrieval.items)
    assert scorer.score(retrieval, "\n".join(names)) == {"retrieval_hit@5": 1.0, "retrieval_ndcg@5": 1.0}
    second = scorer.score(retrieval, "\n".join([names[1], names[0]]))
    assert second["retrieval_hit@5"] == 1.0 and second["retrieval_ndcg@5"] == pytest.approx(1 / 1.5849625)
    assert scorer.score(retrieval, "I cannot tell.")["retrieval_hit@5"] == 0.0

    ranking = first("ranking")
    ordered = titles(ranking.items)
    assert scorer.score(ranking, "\n".join(ordered))["ranking_ndcg"] == pytest.approx(1.0)
    assert scorer.score(ranking, "\n".join(reversed(ordered)))["ranking_ndcg"] < 1.0
    assert (
        ranking_ndcg([3, 2, 1], [1, 2, 3])
        < ranking_ndcg([1, 3, 2], [1, 2, 3])
        < ranking_ndcg([1, 2, 3], [1, 2, 3])
    )
    five = [1, 2, 3, 4, 5]
    assert ranking_ndcg(five[::-1], five) == 0.0 and ranking_ndcg(five, five) == pytest.approx(1.0)
    every_order = [ranking_ndcg(list(p), five) for p in itertools.permutations(five)]
    assert np.mean(every_order) == pytest.approx(0.5)  # a random order: one half, not 0.86
    assert ranking_ndcg([5], five) == 0.0 and ranking_ndcg([1], [1]) == 1.0 and ranking_ndcg([], [1]) == 0.0

    classification = first("classification")
    right = "Yes, it would." if classification.label == "yes" else "No."
    wrong = "No." if classification.label == "yes" else "Yes."
    assert scorer.score(classification, right) == {
        "classification_accuracy": 1.0,
        "classification_answered": 1.0,
    }
    assert scorer.score(classification, wrong) == {
        "classification_accuracy": 0.0,
        "classification_answered": 1.0,
    }
    assert scorer.score(classification, "It depends.") == {
        "classification_accuracy": 0.0,
        "classification_answered": 0.0,
    }

    title = first("item_title")
    assert scorer.score(title, titles(title.items)[0])["title_accuracy"] == 1.0
    other = next(t for t in titles(dataset().catalog.ids) if t != titles(title.items)[0])
    assert scorer.score(title, other)["title_accuracy"] == 0.0

    history = first("history")
    half = titles(history.items)[:1]
    assert scorer.score(history, "\n".join(half))["history_coverage"] == pytest.approx(
        1 / len(set(history.items))
    )
    similar = first("item_similar")
    assert scorer.score(similar, "\n".join(titles(similar.items)))["similar_overlap"] == 1.0
    # listing the whole catalog cannot score: only the first k distinct names count
    others = [t for t in titles(dataset().catalog.ids) if t not in titles(similar.items)]
    padded = "\n".join(others[: len(similar.items)] + titles(similar.items))
    assert scorer.score(similar, padded)["similar_overlap"] == 0.0
    twice = "\n".join([titles(similar.items)[0]] * 3 + titles(similar.items)[1:])
    assert scorer.score(similar, twice)["similar_overlap"] == 1.0  # repeats are not counted against k
    padded_history = "\n".join(others[: len(set(history.items))] + titles(history.items))
    assert scorer.score(history, padded_history)["history_coverage"] == 0.0


@dataclass
class Oracle:
    """A fake explainer that answers like the target model: every alignment metric must be perfect."""

    mode: str = "behaviour"
    name: str = "oracle"
    catalog: Any = field(default_factory=lambda: dataset().catalog)
    answers: dict[str, str] = field(default_factory=dict)

    def generate(self, rendered: list[Any], **_: Any) -> list[str]:
        return [self.answers[r.messages[-1]["content"]] for r in rendered]


def test_a_system_that_answers_like_the_target_scores_one_and_runs_resume(tmp_path: Path) -> None:
    from recai.explain import Renderer

    oracle = Oracle()
    renderer = Renderer(oracle.catalog, "behaviour")
    for e in small_data().test:
        if renderer.applies(e):
            oracle.answers[renderer.render(e).messages[0]["content"]] = e.answer
    metrics = run_alignment(oracle, small_data().test, tmp_path / "run", progress=False)
    assert metrics["task"] == "explain"
    assert {m: v["mean"] for m, v in metrics["metrics"].items()} == {
        "classification_accuracy": 1.0,
        "classification_answered": 1.0,
        "ranking_ndcg": 1.0,
        "retrieval_hit@5": 1.0,
        "retrieval_ndcg@5": 1.0,
        "similar_overlap": 1.0,
        "summary_coverage": 1.0,
        "feature_accuracy": 1.0,
        "description_accuracy": 1.0,
    }  # opaque tasks (title, history) do not apply to a text-only system
    again = run_alignment(oracle, small_data().test, tmp_path / "run", progress=False)
    assert again == metrics and (tmp_path / "run" / "report.md").exists()

    # a record scored by an older scorer is rescored from its stored reply, without asking the model
    records_file = tmp_path / "run" / "records.jsonl"
    lines = [json.loads(line) for line in records_file.read_text().splitlines()]
    lines[0]["scores"] = {k: 0.0 for k in lines[0]["scores"]}
    records_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    oracle.answers.clear()  # any new model call would fail
    rescored = run_alignment(oracle, small_data().test, tmp_path / "run", progress=False)
    assert rescored["metrics"] == metrics["metrics"]
    assert json.loads(records_file.read_text().splitlines()[0])["scores"] != lines[0]["scores"]


def test_the_judge_sees_the_target_decision_and_item_facts() -> None:
    data, catalog = small_data(), dataset().catalog
    cases = why_cases(data.test, target(), catalog, n=2)
    assert len(cases) == 2 and len({c.user for c in cases}) == 2
    facts = decision_facts(target(), catalog, cases[0].history, cases[0].item)
    assert "so it would recommend it" in facts and titles([cases[0].item])[0] in facts
    assert "would not recommend" in decision_facts(target(), catalog, cases[1].history, cases[1].item)

    verdict = {
        "reason": "A matches the facts.",
        "scores": {
            c: {"answer_1": 5, "answer_2": 2} for c in ("faithfulness", "informativeness", "helpfulness")
        },
        "better": "1",
    }
    flipped = {**verdict, "better": "2"}
    judge_llm = ScriptedChatModel([json.dumps(verdict), json.dumps(flipped)] * 2)
    result = judge_explanations(
        cases, ["aligned 1", "aligned 2"], ["base 1", "base 2"], decision_judge(judge_llm), target(), catalog
    )
    assert result["summary"]["win"] == 2 and result["summary"]["order_conflict_rate"] == 0.0
    prompt = judge_llm.calls[0][0]["content"]
    assert "The recommender ranks this item" in prompt and "aligned 1" in prompt and "<<" not in prompt
    # the judge scores faithfulness to the decision, not a persuasive case for a rejected item
    assert "faithfulness" in prompt and "persuasiveness" not in prompt
    assert "would not recommend it" in judge_llm.calls[2][0]["content"]
    # the decision's side follows the data's top share: rank r of n is "recommend" only within it
    rank = int(facts.split("ranks this item ")[1].split(" of ")[0])
    n = int(facts.split(" of ")[1].split(" ")[0])
    narrow = decision_facts(target(), catalog, cases[0].history, cases[0].item, top_share=(rank - 1) / n)
    assert rank == 1 or "would not recommend it" in narrow


def test_judged_explanations_are_the_same_at_any_concurrency() -> None:
    data, catalog = small_data(), dataset().catalog
    cases = why_cases(data.test, target(), catalog, n=4)
    assert len(cases) >= 3
    running, most, lock = [0], [0], threading.Lock()

    def verdict(messages: list[dict[str, str]]) -> str:
        """A judge whose verdict and speed depend on the prompt alone (calls finish out of order)."""
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            digest = zlib.crc32(messages[0]["content"].encode())
            time.sleep(0.003 * (digest % 4))
            score = {"answer_1": 1 + digest % 5, "answer_2": 1 + (digest >> 3) % 5}
            criteria = ("faithfulness", "informativeness", "helpfulness")
            better = "1" if digest % 3 == 0 else "2" if digest % 3 == 1 else "tie"
            return json.dumps({"reason": "r", "scores": dict.fromkeys(criteria, score), "better": better})
        finally:
            with lock:
                running[0] -= 1

    answers_a = [f"aligned {i}" for i in range(len(cases))]
    answers_b = [f"base {i}" for i in range(len(cases))]
    results = []
    for concurrency in (1, 4):
        judge = decision_judge(ScriptedChatModel(verdict))
        batch = BatchSettings(concurrency=concurrency)
        result = judge_explanations(cases, answers_a, answers_b, judge, target(), catalog, batch=batch)
        results.append(json.dumps(result, sort_keys=True, default=str))
        assert most[0] == 1 if concurrency == 1 else most[0] > 1
    assert results[0] == results[1]
    with pytest.raises(BudgetExhaustedError):
        judge_explanations(
            cases,
            answers_a,
            answers_b,
            decision_judge(ScriptedChatModel(verdict)),
            target(),
            catalog,
            batch=BatchSettings(concurrency=2, budget=Budget(max_tokens=1)),
        )
