"""Pairwise judging with scripted judges whose replies depend on where each answer sits in the prompt."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recai.evaluate.judge import (
    CRITERIA,
    JudgeItem,
    JudgeVerdict,
    OrderVerdict,
    PairwiseJudge,
    evaluate_pairwise,
    summarize_verdicts,
    verdict_schema,
)
from recai.llm import ScriptedChatModel
from recai.llm.base import Generation, Message
from recai.llm.usage import scoped

EXPLANATION = CRITERIA["explanation"]
ANSWER_A = "Pulp Fiction suits you: a Tarantino crime film told out of order."
ANSWER_B = "It is a good film that many people enjoy."
FACTS = "Pulp Fiction (1994); genres: Crime, Drama; director: Quentin Tarantino"


def item(id: str = "u1", facts: str = FACTS) -> JudgeItem:
    return JudgeItem(id=id, prompt="a clever crime film", answer_a=ANSWER_A, answer_b=ANSWER_B, facts=facts)


def reply(scores_1: dict[str, int], scores_2: dict[str, int], better: str, reason: str = "because") -> str:
    """A judge reply in positions: ``scores_1`` for Answer 1, ``scores_2`` for Answer 2."""
    return json.dumps(
        {
            "reason": reason,
            "scores": {c: {"answer_1": scores_1[c], "answer_2": scores_2[c]} for c in scores_1},
            "better": better,
        }
    )


def first_system(messages: list[Message]) -> str:
    """Which system the prompt shows as Answer 1."""
    prompt = messages[-1]["content"]
    return "A" if prompt.index(ANSWER_A) < prompt.index(ANSWER_B) else "B"


def fair_judge(
    scores: dict[str, dict[str, int]], better: str, criteria: tuple[str, ...] = EXPLANATION
) -> Callable[[list[Message]], str]:
    """A judge that scores systems by content (``scores[system][criterion]``) wherever they appear."""

    def answer(messages: list[Message]) -> str:
        one, two = ("A", "B") if first_system(messages) == "A" else ("B", "A")
        position = {one: "1", two: "2", "tie": "tie"}[better]
        return reply({c: scores[one][c] for c in criteria}, {c: scores[two][c] for c in criteria}, position)

    return answer


def uniform(value: int, criteria: tuple[str, ...] = EXPLANATION) -> dict[str, int]:
    return dict.fromkeys(criteria, value)


def position_biased(messages: list[Message]) -> str:
    """Always prefers whatever is shown first, whatever it says."""
    return reply(uniform(5), uniform(2), "1")


def test_both_orders_agreeing_is_a_win_and_each_call_shows_the_answers_in_a_different_order() -> None:
    llm = ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A"))
    verdict = PairwiseJudge(llm).judge(item())
    assert verdict.outcome == "A"
    assert verdict.criteria == dict.fromkeys(EXPLANATION, "A")
    assert [first_system(call) for call in llm.calls] == ["A", "B"]
    assert [o.order for o in verdict.orders] == ["AB", "BA"]
    assert all(o.better == "A" for o in verdict.orders)
    assert verdict.mean_scores == {c: {"A": 5.0, "B": 2.0} for c in EXPLANATION}
    assert llm.schemas[0] == verdict_schema(EXPLANATION)

    llm = ScriptedChatModel(fair_judge({"A": uniform(1), "B": uniform(4)}, "B"))
    assert PairwiseJudge(llm).judge(item()).outcome == "B"


def test_a_position_biased_judge_gives_conflicts_not_wins() -> None:
    verdict = PairwiseJudge(ScriptedChatModel(position_biased)).judge(item())
    assert [o.better for o in verdict.orders] == ["A", "B"]  # "Answer 1" mapped back to each system
    assert verdict.outcome == "conflict"
    assert verdict.criteria == dict.fromkeys(EXPLANATION, "conflict")
    assert verdict.mean_scores == {c: {"A": 3.5, "B": 3.5} for c in EXPLANATION}

    fair = PairwiseJudge(ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A")))
    summary = summarize_verdicts([verdict, fair.judge(item("u2"))], n_resamples=200)
    assert summary["win"] == 1 and summary["loss"] == 0
    assert summary["conflict"] == 1 and summary["tie"] == 1  # a conflict counts as a tie in the rates
    assert summary["win_rate"] == 0.5 and summary["tie_rate"] == 0.5
    assert summary["order_conflict_rate"] == 0.5


def test_ties_need_both_orders_to_say_tie() -> None:
    tie = fair_judge({"A": uniform(3), "B": uniform(3)}, "tie")
    verdict = PairwiseJudge(ScriptedChatModel(tie)).judge(item())
    assert verdict.outcome == "tie" and verdict.criteria == dict.fromkeys(EXPLANATION, "tie")

    # A tie in one order and a win for A in the other is a conflict, not a win.
    script = [reply(uniform(4), uniform(4), "tie"), reply(uniform(2), uniform(4), "2")]
    verdict = PairwiseJudge(ScriptedChatModel(script)).judge(item())
    assert [o.better for o in verdict.orders] == ["tie", "A"]
    assert verdict.outcome == "conflict" and verdict.criteria == dict.fromkeys(EXPLANATION, "conflict")
    summary = summarize_verdicts([verdict], n_resamples=50)
    assert summary["tie"] == 1 and summary["conflict"] == 1 and summary["win"] == 0


def test_positions_are_mapped_back_to_systems_when_the_order_is_swapped() -> None:
    # Order AB: Answer 1 is A. Order BA: Answer 1 is B, so "2" and the answer_2 scores belong to A.
    script = [
        reply({"informativeness": 5, "persuasiveness": 2, "helpfulness": 4},
              {"informativeness": 3, "persuasiveness": 4, "helpfulness": 4}, "1"),
        reply({"informativeness": 2, "persuasiveness": 5, "helpfulness": 1},
              {"informativeness": 4, "persuasiveness": 2, "helpfulness": 3}, "2"),
    ]  # fmt: skip
    verdict = PairwiseJudge(ScriptedChatModel(script)).judge(item())
    ab, ba = verdict.orders
    assert ab.scores == {
        "informativeness": {"A": 5, "B": 3},
        "persuasiveness": {"A": 2, "B": 4},
        "helpfulness": {"A": 4, "B": 4},
    }
    assert ba.scores == {
        "informativeness": {"A": 4, "B": 2},
        "persuasiveness": {"A": 2, "B": 5},
        "helpfulness": {"A": 3, "B": 1},
    }
    assert ab.better == "A" and ba.better == "A" and verdict.outcome == "A"
    # informativeness: A wins both; persuasiveness: B wins both; helpfulness: tie, then A -> conflict.
    assert verdict.criteria == {"informativeness": "A", "persuasiveness": "B", "helpfulness": "conflict"}
    assert verdict.mean_scores == {
        "informativeness": {"A": 4.5, "B": 2.5},
        "persuasiveness": {"A": 2.0, "B": 4.5},
        "helpfulness": {"A": 3.5, "B": 2.5},
    }


def test_a_content_judge_with_a_mild_position_bias_is_mapped_consistently() -> None:
    """Each criterion's scores follow the system, whatever position it was shown in."""
    scores = {
        "A": {"informativeness": 5, "persuasiveness": 2, "helpfulness": 3},
        "B": {"informativeness": 3, "persuasiveness": 4, "helpfulness": 3},
    }
    verdict = PairwiseJudge(ScriptedChatModel(fair_judge(scores, "tie"))).judge(item())
    for order in verdict.orders:
        assert order.scores == {c: {"A": scores["A"][c], "B": scores["B"][c]} for c in EXPLANATION}
    assert verdict.criteria == {"informativeness": "A", "persuasiveness": "B", "helpfulness": "tie"}
    assert verdict.outcome == "tie"


def test_a_judge_that_never_replies_in_valid_json_gives_an_invalid_verdict() -> None:
    llm = ScriptedChatModel(lambda messages: "Answer 1 is better, clearly.")
    verdict = PairwiseJudge(llm).judge(item())
    assert verdict.outcome == "invalid" and verdict.criteria == dict.fromkeys(EXPLANATION, "invalid")
    assert verdict.mean_scores == {}
    assert all(o.better is None and o.error for o in verdict.orders)
    assert verdict.orders[0].raw == ["Answer 1 is better, clearly."] * 3  # first try and two retries
    assert len(llm.calls) == 6  # both orders are asked even after the first fails

    # One valid order is not enough: the verdict is still invalid.
    script = [reply(uniform(5), uniform(2), "1"), *['{"better": "1"}'] * 3]
    verdict_half = PairwiseJudge(ScriptedChatModel(script)).judge(item("u2"))
    assert verdict_half.outcome == "invalid"
    assert verdict_half.orders[0].better == "A" and verdict_half.orders[1].better is None

    good = PairwiseJudge(ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A")))
    summary = summarize_verdicts([verdict, verdict_half, good.judge(item("u3"))], n_resamples=50)
    assert summary["n"] == 3 and summary["invalid"] == 2 and summary["judged"] == 1
    assert summary["win"] == 1 and summary["win_rate"] == 1.0 and summary["order_conflict_rate"] == 0.0
    assert summary["criteria"]["helpfulness"]["scores"]["A"]["n"] == 1
    json.dumps(summary)
    json.dumps(verdict.as_record())


def test_out_of_range_scores_and_long_reasons_are_rejected_by_the_schema() -> None:
    script = [
        reply(uniform(6), uniform(2), "1"),  # 6 is off the 1-5 scale: retried
        reply(uniform(5), uniform(2), "1", reason="x" * 400),  # reason too long: retried
        reply(uniform(5), uniform(2), "1"),
        reply(uniform(2), uniform(5), "2"),
    ]
    llm = ScriptedChatModel(script)
    verdict = PairwiseJudge(llm).judge(item())
    assert verdict.outcome == "A" and len(llm.calls) == 4


def test_facts_are_shown_for_explanations_but_not_for_chitchat() -> None:
    llm = ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A"))
    PairwiseJudge(llm, kind="explanation").judge(item())
    for call in llm.calls:
        prompt = call[-1]["content"]
        assert FACTS in prompt and "a clever crime film" in prompt
        assert all(c in prompt for c in EXPLANATION) and "depth" not in prompt
        assert "Ignore the length" in prompt and "Ignore the order" in prompt

    chat = CRITERIA["chitchat"]
    llm = ScriptedChatModel(fair_judge({"A": uniform(5, chat), "B": uniform(2, chat)}, "A", chat))
    verdict = PairwiseJudge(llm, kind="chitchat").judge(item())
    assert verdict.outcome == "A" and set(verdict.criteria) == set(chat)
    for call in llm.calls:
        prompt = call[-1]["content"]
        assert "Tarantino crime film told" in prompt and FACTS not in prompt and "Quentin" not in prompt
        assert all(c in prompt for c in chat) and "informativeness" not in prompt
        assert "Ignore the length" in prompt and "Ignore the order" in prompt
    assert llm.schemas[0]["properties"]["scores"]["required"] == list(chat)


def test_criteria_can_be_chosen_and_unknown_ones_are_refused() -> None:
    llm = ScriptedChatModel([reply({"depth": 5}, {"depth": 1}, "1"), reply({"depth": 1}, {"depth": 5}, "2")])
    verdict = PairwiseJudge(llm, criteria=["depth"]).judge(item())
    assert verdict.criteria == {"depth": "A"} and "depth:" in llm.calls[0][-1]["content"]
    with pytest.raises(ValueError, match="unknown criterion"):
        PairwiseJudge(llm, criteria=["humour"])
    with pytest.raises(ValueError, match="kind"):
        PairwiseJudge(llm, kind="ranking")
    with pytest.raises(ValueError, match="repeat"):
        PairwiseJudge(llm, criteria=["depth", "depth"])


class RecordingModel(ScriptedChatModel):
    """Also keeps the sampling settings of every call."""

    def __init__(self, script: Callable[[list[Message]], str]) -> None:
        super().__init__(script)
        self.settings: list[dict[str, Any]] = []

    def _generate(self, messages: list[Message], **kwargs: Any) -> Generation:
        self.settings.append(
            {k: getattr(kwargs["decoding"], k) for k in ("temperature", "max_tokens", "seed")}
        )
        return super()._generate(messages, **kwargs)


def test_the_judge_samples_greedily_with_its_token_budget_and_seed() -> None:
    llm = RecordingModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A"))
    PairwiseJudge(llm, max_tokens=200, seed=7).judge(item())
    assert llm.settings == [{"temperature": 0.0, "max_tokens": 200, "seed": 7}] * 2


def test_judge_calls_are_metered_as_the_judge_component() -> None:
    llm = ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(2)}, "A"))
    with scoped() as usage:
        PairwiseJudge(llm).judge(item())
    report = usage.report()
    assert set(report) == {"judge"} and report["judge"]["scripted"]["calls"] == 2


def test_on_verdict_and_skip_ids_resume_an_interrupted_run(tmp_path: Path) -> None:
    items = [item(f"u{i}") for i in range(4)]
    path = tmp_path / "verdicts.jsonl"

    def append(verdict: JudgeVerdict) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(verdict.as_record()) + "\n")

    llm = ScriptedChatModel(fair_judge({"A": uniform(5), "B": uniform(3)}, "A"))
    judge = PairwiseJudge(llm)
    first = evaluate_pairwise(items[:2], judge, on_verdict=append, progress=False)
    assert [v.id for v in first] == ["u0", "u1"] and len(llm.calls) == 4

    done = {json.loads(line)["id"] for line in path.read_text().splitlines()}
    rest = evaluate_pairwise(items, judge, on_verdict=append, skip_ids=done, progress=False)
    assert [v.id for v in rest] == ["u2", "u3"] and len(llm.calls) == 8  # nothing judged twice

    stored = [JudgeVerdict.from_record(json.loads(line)) for line in path.read_text().splitlines()]
    assert [v.id for v in stored] == ["u0", "u1", "u2", "u3"]
    assert stored == first + rest
    assert summarize_verdicts(stored) == summarize_verdicts(first + rest)
    assert isinstance(stored[0].orders[0], OrderVerdict)

    with pytest.raises(ValueError, match="unique"):
        evaluate_pairwise([item("x"), item("x")], judge, progress=False)


def test_summary_counts_rates_and_score_intervals() -> None:
    def verdict(id: str, outcome: str, a: float, b: float) -> JudgeVerdict:
        return JudgeVerdict(
            id=id,
            outcome=outcome,  # type: ignore[arg-type]
            criteria={"depth": outcome},  # type: ignore[dict-item]
            orders=[],
            mean_scores={"depth": {"A": a, "B": b}} if outcome != "invalid" else {},
        )

    verdicts = [
        verdict("1", "A", 5, 2),
        verdict("2", "A", 4, 3),
        verdict("3", "B", 2, 4),
        verdict("4", "tie", 3, 3),
        verdict("5", "conflict", 3.5, 3.5),
        verdict("6", "invalid", 0, 0),
    ]
    s = summarize_verdicts(verdicts, n_resamples=500)
    assert s["n"] == 6 and s["invalid"] == 1 and s["judged"] == 5
    assert (s["win"], s["tie"], s["loss"], s["conflict"]) == (2, 2, 1, 1)
    assert s["win_rate"] == pytest.approx(0.4) and s["loss_rate"] == pytest.approx(0.2)
    assert s["tie_rate"] == pytest.approx(0.4) and s["order_conflict_rate"] == pytest.approx(0.2)
    depth = s["criteria"]["depth"]
    assert (depth["win"], depth["tie"], depth["loss"], depth["conflict"]) == (2, 2, 1, 1)
    a, b, diff = depth["scores"]["A"], depth["scores"]["B"], depth["scores"]["A_minus_B"]
    assert a["mean"] == pytest.approx(3.5) and b["mean"] == pytest.approx(3.1) and a["n"] == 5
    assert diff["mean"] == pytest.approx(0.4)
    for stats in (a, b, diff):
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert a["ci_low"] < a["ci_high"]

    empty = summarize_verdicts([])
    assert empty["n"] == 0 and empty["win_rate"] is None and empty["criteria"] == {}
