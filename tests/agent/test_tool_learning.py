"""Tool learning without weights: templates, recording, filtering, plan comparison, planner evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recai.agent.learning import (
    SHAPES,
    build_planner_data,
    compare_plans,
    deduplicate,
    evaluate_planner,
    plan_shape,
    record_simulated,
    record_templates,
    summarize_plans,
    template_requests,
    training_pairs,
)
from recai.agent.learning.dataset import PlanPair, balance, split_pairs
from recai.data import Dataset
from recai.data.splits import leave_one_out
from recai.evaluate.conversation import ConversationEvaluator, UserSimulator, build_conversation_samples
from recai.evaluate.runs import RunFolder
from recai.llm import ScriptedChatModel
from tests.agent.learning_fakes import make_agent, open_run, simulator, teacher, teacher_plan, teacher_reply


def test_templates_cover_every_shape_from_the_schema_alone(dataset: Dataset) -> None:
    requests = template_requests(dataset.catalog, per_shape=3, item_noun="films", seed=1)
    assert {r.shape for r in requests} == set(SHAPES)
    refine = next(r for r in requests if r.shape == "refine")
    assert len(refine.turns) == 2 and refine.turns[1].check.numeric in ("year", "runtime")
    hard = next(r for r in requests if r.shape == "hard")
    assert hard.turns[0].check.column in ("genres", "director", "language")
    assert template_requests(dataset.catalog, per_shape=3, item_noun="films", seed=1) == requests  # seeded


def test_recording_logs_prompt_plan_outcome_and_success_and_resumes(dataset: Dataset, tmp_path: Path) -> None:
    llm = teacher()
    agent = make_agent(dataset, llm, tmp_path)
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    with open_run(tmp_path / "run") as run:
        assert record_templates(agent, requests, run, progress=False) == len(requests)
    records = RunFolder.load(tmp_path / "run").records()
    assert len(records) == len(requests) and not agent.turn_hooks  # the hook is removed afterwards
    by_shape = {r["shape"]: r for r in records}
    hard = by_shape["hard"]["turns"][0]
    assert (
        hard["messages"]
        == llm.calls[[c[-1]["content"] for c in llm.calls].index(hard["messages"][-1]["content"])]
    )
    assert hard["plans"][0]["error"] is None and hard["plans"][0]["plan"]["steps"][0]["tool"] == "filter"
    refine = by_shape["refine"]["turns"]
    assert len(refine) == 2 and refine[1]["dialogue"] and refine[0]["request"] in refine[1]["dialogue"]
    assert by_shape["chat"]["success"] and by_shape["question"]["success"] and by_shape["hard"]["success"]
    assert sum(r["success"] for r in records) >= len(records) - 3  # the teacher solves nearly all
    with open_run(tmp_path / "run") as run:  # a rerun skips what is done
        assert record_templates(agent, requests, run, progress=False) == 0


def test_a_failing_plan_is_recorded_with_its_error_and_filtered_out(dataset: Dataset, tmp_path: Path) -> None:
    bad = {
        "intent": "recommend",
        "steps": [{"tool": "filter", "args": {"where": "list_contains(genres, 'Telenovela')"}}],
    }
    good = teacher_plan("Show me films with genres Crime")
    llm = ScriptedChatModel([json.dumps(bad), json.dumps(good), "Crime films."])
    agent = make_agent(dataset, llm, tmp_path)
    requests = [r for r in template_requests(dataset.catalog, per_shape=1, seed=0) if r.shape == "hard"]
    with open_run(tmp_path / "run") as run:
        record_templates(agent, requests, run, progress=False)
    (record,) = RunFolder.load(tmp_path / "run").records()
    plans = record["turns"][0]["plans"]
    assert "Telenovela" in plans[0]["error"] and plans[1]["error"] is None
    assert plans[0]["plan"]["steps"] == bad["steps"]  # as written: no rank step added by the executor
    kept, dropped = training_pairs([{**record, "turns": [{**record["turns"][0], "success": True}]}])
    assert kept == [] and dropped["plan failed"] == 1
    repaired, _ = training_pairs(
        [{**record, "turns": [{**record["turns"][0], "success": True}]}], repaired=True
    )
    assert repaired[0].plan == plans[1]["plan"] and repaired[0].messages == record["turns"][0]["messages"]


def test_simulated_sessions_mark_every_turn_with_the_session_outcome(
    dataset: Dataset, tmp_path: Path
) -> None:
    split = leave_one_out(dataset.interactions, min_train=1)
    known = dataset.with_interactions(split.train_and_valid())
    agent = make_agent(known, teacher(), tmp_path)
    evaluator = ConversationEvaluator(
        known.catalog, UserSimulator(simulator(), known.catalog), max_turns=2, k=3
    )
    samples = build_conversation_samples(split, known.catalog, n=2, seed=0)
    with open_run(tmp_path / "run") as run:
        assert record_simulated(agent, evaluator, samples, run, progress=False) == len(samples)
    records = RunFolder.load(tmp_path / "run").records()
    assert {r["source"] for r in records} == {"simulator"}
    for record in records:
        assert 1 <= len(record["turns"]) <= 2
        assert all(t["success"] == record["success"] for t in record["turns"])
        assert record["turns"][0]["request"] == "Show me films with genres Crime"


def pair(i: int, shape: str, request: str, conversation: str | None = None, dialogue: str = "") -> PlanPair:
    plan = {"intent": "recommend", "steps": [{"tool": t, "args": {}} for t in shape.split(":")[1].split(">")]}
    return PlanPair(str(i), conversation or f"c{i}", "template", shape, request, dialogue, [], plan)


def test_shapes_dedup_balance_and_split() -> None:
    assert plan_shape(teacher_plan("Show me films with genres Crime")) == "recommend:filter>rank"
    assert plan_shape({"intent": "chat", "steps": []}) == "chat"
    pairs = [
        pair(0, "recommend:filter>rank", "Show me films with genres Crime"),
        pair(1, "recommend:filter>rank", "show me  films with genres crime"),  # near-identical
        pair(2, "recommend:filter>rank", "Show me films with genres Crime", dialogue="user: hi"),  # context
        pair(3, "recommend:semantic_search>rank", "Show me films with genres Crime"),  # another shape
    ]
    assert [p.id for p in deduplicate(pairs)] == ["0", "2", "3"]
    many = [pair(i, "recommend:filter>rank", f"request {i}") for i in range(10)]
    few = [pair(10 + i, "recommend:similar_to>rank", f"other {i}") for i in range(2)]
    balanced = balance(many + few, max_per_shape=3, seed=0)
    assert sum(p.shape == "recommend:filter>rank" for p in balanced) == 3 and len(balanced) == 5
    two_turns = [
        pair(20, "recommend:filter>rank", "a", "conv"),
        pair(21, "recommend:filter>rank", "b", "conv"),
    ]
    train, test = split_pairs(many + few + two_turns, test_share=0.3, seed=0)
    assert {p.shape for p in test} == {"recommend:filter>rank", "recommend:similar_to>rank"}
    assert not {p.conversation for p in train} & {p.conversation for p in test}


def test_feedback_titles_nobody_wrote_are_removed_from_training_plans() -> None:
    plan = {
        "intent": "recommend",
        "steps": [{"tool": "rank", "args": {"by": "popularity"}}],
        "feedback": {
            "liked": ["Heat (1995)", "The Godfather", "The Dark Knight"],
            "disliked": ["pulp fiction"],
        },
    }
    turn = {
        "request": "Loved heat, something popular?",
        "dialogue": "user: I hated Pulp Fiction",
        "success": True,
        "messages": [{"role": "user", "content": "x"}],
        "plans": [{"plan": plan, "error": None}],
    }
    (kept,), dropped = training_pairs([{"id": "c", "source": "templates", "turns": [turn]}])
    assert kept.plan["feedback"] == {"liked": ["Heat (1995)"], "disliked": ["pulp fiction"]}
    assert dropped["unsaid feedback titles removed (turn kept)"] == 2
    assert plan["feedback"]["liked"][1] == "The Godfather"  # the recording itself is not changed


def test_plan_comparison_exact_and_step_level() -> None:
    reference = teacher_plan("Films where the language is French, about a crime feeling")
    same = json.loads(json.dumps(reference))
    same["steps"][0]["args"]["where"] = "language='French'"  # the same SQL written differently
    assert compare_plans(same, reference)["exact"] == 1.0
    partial = {
        "intent": "recommend",
        "steps": [reference["steps"][0], {"tool": "rank", "args": {"by": "popularity"}}],
    }
    scores = compare_plans(partial, reference)
    assert scores["exact"] == 0.0 and scores["intent"] == 1.0 and scores["tools"] == 0.0
    assert scores["step_precision"] == 0.5 and scores["step_recall"] == pytest.approx(1 / 3)
    assert scores["tool_f1"] == pytest.approx(0.8)
    assert compare_plans(None, reference)["step_f1"] == 0.0


def test_planner_evaluation_scores_validity_and_match(dataset: Dataset, tmp_path: Path) -> None:
    agent = make_agent(dataset, teacher(), tmp_path)
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    with open_run(tmp_path / "run") as run:
        record_templates(agent, requests, run, progress=False)
    data = build_planner_data(RunFolder.load(tmp_path / "run").records(), test_share=0.5, seed=0)
    assert data.test and data.meta["filter"]["kept"] >= len(data.train) + len(data.test)
    perfect = summarize_plans(evaluate_planner(teacher(), agent, data.test, progress=False))
    assert perfect["schema_valid"] == perfect["executable"] == perfect["exact"] == 1.0
    broken = ScriptedChatModel(lambda messages: "not a plan", name="broken")
    bad = summarize_plans(evaluate_planner(broken, agent, data.test, progress=False))
    assert bad["schema_valid"] == 0.0 and bad["step_f1"] == 0.0
    wrong = {
        "intent": "recommend",
        "steps": [{"tool": "similar_to", "args": {"titles": ["No Such Film At All"]}}],
    }
    unrunnable = ScriptedChatModel(lambda messages: json.dumps(wrong), name="wrong")
    scores = summarize_plans(evaluate_planner(unrunnable, agent, data.test, progress=False))
    assert scores["schema_valid"] == 1.0 and scores["executable"] == 0.0


def test_the_planner_can_be_a_separate_model(dataset: Dataset, tmp_path: Path) -> None:
    planner = teacher()
    responder = ScriptedChatModel(lambda messages: "Crime films for you.", name="responder")
    agent = make_agent(dataset, responder, tmp_path, planner_llm=planner)
    result = agent.chat(agent.session(), "Show me films with genres Crime")
    assert result.items and len(planner.calls) == 1 and len(responder.calls) == 1
    assert agent.llm is responder and agent.planner.llm is planner


class SamplingTeacher(ScriptedChatModel):
    """Writes a filter right only when it samples (greedy, it invents a genre), the way the offline teacher
    gets some shapes wrong greedily; records the temperature and seed of every call."""

    def __init__(self) -> None:
        super().__init__(self._reply, name="sampling-teacher")
        self.settings: list[tuple[float, int | None]] = []

    def _generate(self, messages: Any, **kwargs: Any) -> Any:
        self.settings.append((kwargs["decoding"].temperature, kwargs["decoding"].seed))
        return super()._generate(messages, **kwargs)

    def _reply(self, messages: list[dict[str, str]]) -> str:
        last = messages[-1]["content"]
        reply = teacher_reply(messages)
        if last.rstrip().endswith("Plan:") and self.settings[-1][0] == 0.0:
            plan = json.loads(reply)
            for step in plan["steps"]:
                if step["tool"] == "filter":
                    step["args"]["where"] = "list_contains(genres, 'Telenovela')"
            return json.dumps(plan)
        return reply


def test_failed_conversations_are_retried_sampling_until_one_succeeds(
    dataset: Dataset, tmp_path: Path
) -> None:
    llm = SamplingTeacher()
    agent = make_agent(dataset, llm, tmp_path)
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    hard = {f"template:{r.id}" for r in requests if r.shape == "hard"}
    with open_run(tmp_path / "run") as run:  # greedy only: every filter fails
        assert record_templates(agent, requests, run, progress=False) == len(requests)
    greedy = RunFolder.load(tmp_path / "run").records()
    failed = {r["id"] for r in greedy if not r["success"]}
    assert hard <= failed and {t for t, _ in llm.settings} == {0.0}
    with open_run(tmp_path / "run") as run:  # more attempts extend the run: only the failures are retried
        retried = record_templates(agent, requests, run, attempts=3, temperature=0.7, progress=False)
    records = RunFolder.load(tmp_path / "run").records()
    retries = records[len(greedy) :]
    assert retried == len(retries) and {r["conversation"] for r in retries} == failed
    for conversation in failed:
        mine = [r for r in retries if r["conversation"] == conversation]
        assert [r["id"] for r in mine] == [f"{conversation}@{a}" for a in range(2, len(mine) + 2)]
        assert all(r["temperature"] == 0.7 for r in mine) and not any(r["success"] for r in mine[:-1])
        assert len(mine) == 2 or mine[-1]["success"]  # stops at the first success, else spends them all
        if conversation in hard:  # sampling, the teacher writes the filter right: rescued at once
            assert len(mine) == 1 and mine[0]["success"] and mine[0]["attempt"] == 2
    sampled = [s for s in llm.settings if s[0] == 0.7]
    assert sampled and all(seed is not None for _, seed in sampled)
    assert agent.planner.temperature == 0.0 and agent.planner.seed is None  # greedy again afterwards
    with open_run(tmp_path / "run") as run:
        assert record_templates(agent, requests, run, attempts=3, progress=False) == 0
    # The rescued conversations reach the training data, and each conversation stays on one side of the split.
    data = build_planner_data(records, max_per_shape=100, test_share=0.5)
    pairs, _ = training_pairs(records)
    assert hard <= {p.conversation for p in pairs}
    conversation_of = {p.id: p.conversation for p in pairs}
    train = {conversation_of[e.id] for e in data.train}
    assert train.isdisjoint(conversation_of[e.id] for e in data.test)
    with pytest.raises(ValueError, match="attempts"):
        record_templates(agent, requests, run, attempts=0, progress=False)


def test_a_retry_shares_its_conversation_so_the_split_keeps_both_turns_together() -> None:
    def turn(request: str, dialogue: str, success: bool) -> dict[str, Any]:
        plan = teacher_plan(request, dialogue)
        return {
            "request": request,
            "dialogue": dialogue,
            "messages": [],
            "plans": [{"plan": plan}],
            "success": success,
        }

    first, refine = "Show me films with genres Crime", "Only ones with runtime under 120"
    greedy = {"id": "template:r", "turns": [turn(first, "", True), turn(refine, "", False)]}
    retry = {
        "id": "template:r@2",
        "conversation": "template:r",
        "turns": [turn(first, "", True), turn(refine, first, True)],
    }
    pairs, dropped = training_pairs([greedy, retry])
    assert [p.id for p in pairs] == ["template:r#1", "template:r@2#1", "template:r@2#2"]
    assert {p.conversation for p in pairs} == {"template:r"} and dropped["not successful"] == 1
    kept = deduplicate(pairs)  # the retry's first turn repeats the greedy one
    assert [p.id for p in kept] == ["template:r#1", "template:r@2#2"]
    train, test = split_pairs([*kept, pair(9, "recommend:filter>rank", "other")], test_share=0.5, seed=0)
    assert {p.conversation for p in train}.isdisjoint(p.conversation for p in test)
    assert {len([p for p in side if p.conversation == "template:r"]) for side in (train, test)} <= {0, 2}
