"""Tool learning with several conversations in flight: recording, planner evaluation and simulated
sessions write the same records at concurrency 1 and 4 (apart from measured latencies)."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import recai.agent.commands as commands
from recai.agent.learning import (
    build_planner_data,
    evaluate_planner,
    record_simulated,
    record_templates,
    template_requests,
)
from recai.agent.learning.evaluation import planner_system
from recai.agent.planner import planner_sampling
from recai.cli import app
from recai.data import Dataset
from recai.data.splits import leave_one_out
from recai.evaluate.conversation import ConversationEvaluator, UserSimulator, build_conversation_samples
from recai.evaluate.runs import RunFolder
from recai.llm import ScriptedChatModel
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.testing.fakes import BagOfWordsEncoder
from tests.agent.learning_fakes import make_agent, open_run, simulator, teacher, teacher_reply


class Jittered(ScriptedChatModel):
    """A thread-safe scripted model whose calls take a few milliseconds (a different time per prompt, so
    they finish out of order) and that notes the most calls running at once. Greedy, its plans invent a
    genre in every filter (the teacher's usual mistake); sampling, it plans like the teacher."""

    def __init__(self, reply: Callable[[list[dict[str, str]]], str], name: str, *, flawed: bool) -> None:
        super().__init__(reply, name=name)
        self.flawed = flawed
        self.running = self.most = 0
        self.lock = threading.Lock()

    def _generate(self, messages: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.003 * (zlib.crc32(messages[-1]["content"].encode()) % 4))
            generation = super()._generate(messages, **kwargs)
            if (
                self.flawed
                and kwargs["decoding"].temperature == 0.0
                and messages[-1]["content"].rstrip().endswith("Plan:")
            ):
                plan = json.loads(generation.text)
                for step in plan["steps"]:
                    if step["tool"] == "filter":
                        step["args"]["where"] = "list_contains(genres, 'Telenovela')"
                generation.text = json.dumps(plan)
            return generation
        finally:
            with self.lock:
                self.running -= 1


def jittered_teacher(*, flawed: bool = False) -> Jittered:
    return Jittered(teacher_reply, "scripted-teacher", flawed=flawed)


def timeless(value: Any) -> Any:
    """``value`` without measured times (the only thing that differs between two runs)."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if not k.endswith("latency_s")}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def records_of(path: Path) -> list[dict[str, Any]]:
    return [timeless(json.loads(line)) for line in (path / "records.jsonl").read_text().splitlines()]


def test_recording_is_the_same_at_any_concurrency(dataset: Dataset, tmp_path: Path) -> None:
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    for concurrency in (1, 4):
        llm = jittered_teacher(flawed=True)
        agent = make_agent(dataset, llm, tmp_path / f"agent{concurrency}")
        with open_run(tmp_path / f"run{concurrency}") as run:
            made = record_templates(
                agent, requests, run, attempts=2, progress=False, batch=BatchSettings(concurrency=concurrency)
            )
        assert made > len(requests) and not agent.turn_hooks
        assert llm.most == 1 if concurrency == 1 else llm.most > 1
        assert agent.planner.temperature == 0.0 and agent.planner.seed is None  # never touched
    one, four = records_of(tmp_path / "run1"), records_of(tmp_path / "run4")
    assert one == four
    retried = [r for r in one if r["attempt"] == 2]
    assert retried and all(r["temperature"] == 0.7 for r in retried)
    assert any(r["success"] for r in retried)  # sampled retries rescue the greedy failures


def test_a_conversation_sampling_does_not_change_the_others(dataset: Dataset, tmp_path: Path) -> None:
    seen: list[tuple[str, float, int | None]] = []

    class Noting(ScriptedChatModel):
        def _generate(self, messages: Any, **kwargs: Any) -> Any:
            decoding = kwargs["decoding"]
            seen.append((threading.current_thread().name, decoding.temperature, decoding.seed))
            return super()._generate(messages, **kwargs)

    agent = make_agent(dataset, Noting(teacher_reply), tmp_path)
    ready = threading.Barrier(2)

    def greedy() -> None:
        ready.wait()
        agent.chat(agent.session(), "Show me films with genres Crime")

    def sampling() -> None:
        with planner_sampling(0.9, 7):
            ready.wait()
            agent.chat(agent.session(), "Show me films with genres Drama")

    threads = [threading.Thread(target=greedy, name="g"), threading.Thread(target=sampling, name="s")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {(t, s) for name, t, s in seen if name == "s"} >= {(0.9, 7)}
    assert all(t == 0.0 for name, t, _ in seen if name == "g")


def test_simulated_recording_and_planner_evaluation_at_any_concurrency(
    dataset: Dataset, tmp_path: Path
) -> None:
    split = leave_one_out(dataset.interactions, min_train=1)
    known = dataset.with_interactions(split.train_and_valid())
    samples = build_conversation_samples(split, known.catalog, n=4, seed=0)
    assert len(samples) >= 2
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    with open_run(tmp_path / "templates") as run:
        record_templates(make_agent(dataset, teacher(), tmp_path / "t"), requests, run, progress=False)
    data = build_planner_data(RunFolder.load(tmp_path / "templates").records(), test_share=0.5, seed=0)
    assert len(data.test) > 4
    plans: dict[int, list[dict[str, Any]]] = {}
    sessions: dict[int, list[dict[str, Any]]] = {}
    for concurrency in (1, 4):
        batch = BatchSettings(concurrency=concurrency)
        agent = make_agent(known, jittered_teacher(), tmp_path / f"agent{concurrency}")
        evaluator = ConversationEvaluator(
            known.catalog, UserSimulator(simulator(), known.catalog), max_turns=2, k=3
        )
        with open_run(tmp_path / f"sim{concurrency}") as run:
            assert record_simulated(agent, evaluator, samples, run, progress=False, batch=batch) == len(
                samples
            )
        planner = jittered_teacher()
        plans[concurrency] = timeless(
            evaluate_planner(planner, agent, data.test, progress=False, batch=batch)
        )
        assert planner.most == 1 if concurrency == 1 else planner.most > 1
        with planner_system(agent, jittered_teacher()) as system:
            sessions[concurrency] = timeless(evaluator.run(system, samples, progress=False, batch=batch))
    assert records_of(tmp_path / "sim1") == records_of(tmp_path / "sim4")
    assert all(len(r["turns"]) >= 1 for r in records_of(tmp_path / "sim4"))
    assert plans[1] == plans[4] and sessions[1] == sessions[4]


def test_a_budget_stops_recording_and_a_rerun_finishes_it(dataset: Dataset, tmp_path: Path) -> None:
    requests = template_requests(dataset.catalog, per_shape=2, item_noun="films", seed=0)
    agent = make_agent(dataset, jittered_teacher(), tmp_path)
    stop = BatchSettings(concurrency=4, budget=Budget(max_tokens=1))
    with open_run(tmp_path / "run") as run, pytest.raises(BudgetExhaustedError):
        record_templates(agent, requests, run, progress=False, batch=stop)
    assert 0 < len(RunFolder.load(tmp_path / "run").records()) < len(requests)
    assert not agent.turn_hooks
    with open_run(tmp_path / "run") as run:
        record_templates(agent, requests, run, progress=False, batch=BatchSettings(concurrency=4))
    with open_run(tmp_path / "whole") as run:
        record_templates(agent, requests, run, progress=False)
    assert records_of(tmp_path / "run") == records_of(tmp_path / "whole")


def test_cli_record_takes_concurrency_and_budget(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "chat_model", lambda spec: jittered_teacher())
    monkeypatch.setattr(commands, "encoder", lambda spec: BagOfWordsEncoder())
    data = str(dataset.save(tmp_path / "films"))
    runner = CliRunner()
    args = ["agent", "record", data, "--teacher", "scripted:teacher", "--per-shape", "1"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert RunFolder.load(tmp_path / "a").records()
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--budget-tokens", "1"])
    assert result.exit_code == 3 and "budget" in " ".join(result.output.split())
