"""Evaluation runs with requests in flight write the same records as sequential ones, and a budget
stops a run that a rerun then finishes."""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from recai.evaluate.generative import ListSampling
from recai.evaluate.runners import run_conversation_eval, run_judge_eval, run_list_eval
from recai.evaluate.runs import RunFolder
from recai.evaluate.sampled import RunSettings
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.llm.scripted import ScriptedChatModel
from tests.llm.openai_server import ServerState, openai_server, ranking_responder


def _records(folder: Path) -> bytes:
    return (folder / "records.jsonl").read_bytes()


def _without_timings(value: Any) -> Any:
    """Records minus wall-clock fields, which differ between any two runs, sequential or not."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in {"latency_s", "seconds"}}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _jittered(reply: Any) -> Any:
    """A reply function that takes a random few milliseconds, so answers finish out of order."""

    def answer(messages: list[dict[str, str]]) -> str:
        time.sleep(random.uniform(0, 0.01))
        return reply(messages)

    return answer


def test_ranking_against_a_server_is_byte_identical_at_every_concurrency(tmp_path: Path) -> None:
    with openai_server(ServerState(responder=ranking_responder, latency_s=0.1)) as (url, state):
        spec = f"llm:openai:{url}#ranker"
        outputs = []
        for concurrency in (1, 4, 16):
            out = tmp_path / f"c{concurrency}"
            run_list_eval(
                "ranking",
                spec,
                out,
                sampling=ListSampling(n_users=24),
                settings=RunSettings(
                    cache=False, progress=False, batch=BatchSettings(concurrency=concurrency)
                ),
            )
            outputs.append(_records(out))
        assert state.peak_in_flight >= 12  # the server really had many requests at once
    assert outputs[0] == outputs[1] == outputs[2]
    assert b'"valid"' in outputs[0]


def test_retrieval_budget_stops_and_a_rerun_finishes_identically(tmp_path: Path) -> None:
    with openai_server(ServerState(responder=ranking_responder)) as (url, _):
        spec = f"llm:openai:{url}#ranker"
        whole = tmp_path / "whole"
        run_list_eval(
            "retrieval",
            spec,
            whole,
            sampling=ListSampling(n_users=12),
            settings=RunSettings(cache=False, progress=False),
        )
        parts = tmp_path / "parts"
        stop = BatchSettings(concurrency=3, budget=Budget(max_tokens=400))
        with pytest.raises(BudgetExhaustedError) as stopped:
            run_list_eval(
                "retrieval",
                spec,
                parts,
                sampling=ListSampling(n_users=12),
                settings=RunSettings(cache=False, progress=False, batch=stop),
            )
        assert 0 < stopped.value.done < 12
        assert (parts / "usage.json").exists() and not (parts / "metrics.json").exists()
        run_list_eval(
            "retrieval",
            spec,
            parts,
            sampling=ListSampling(n_users=12),
            settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=3)),
        )
    assert _records(parts) == _records(whole)
    assert RunFolder.load(parts).read_metrics()["n"] == 12


def test_conversations_in_flight_match_sequential_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def simulator(messages: list[dict[str, str]]) -> str:
        digest = hashlib.sha256(messages[0]["content"].encode()).hexdigest()[:6]
        return f"something like {digest}, turn {len(messages)}"

    def plain(messages: list[dict[str, str]]) -> str:
        return "Try **Heat** or **Pulp Fiction**." if len(messages) % 4 else "Maybe **Alien**."

    def fake(spec: str) -> ScriptedChatModel:
        return ScriptedChatModel(_jittered(simulator if spec == "sim" else plain), name=spec)

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    runs = []
    for concurrency in (1, 4):
        out = tmp_path / f"c{concurrency}"
        run_conversation_eval(
            "plain:x",
            out,
            simulator="sim",
            n=8,
            max_turns=3,
            settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=concurrency)),
        )
        runs.append([_without_timings(r) for r in RunFolder.load(out).records()])
    assert runs[0] == runs[1]
    assert [r["id"] for r in runs[0]] == [r["id"] for r in runs[1]]


def test_judging_in_flight_matches_sequential_judging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = tmp_path / "pairs.jsonl"
    items.write_text(
        "\n".join(
            json.dumps({"id": str(i), "prompt": "why?", "answer_a": "good " * (i % 4), "answer_b": "bad"})
            for i in range(12)
        )
    )

    def verdict(messages: list[dict[str, str]]) -> str:
        text = messages[-1]["content"]
        first_is_a = text.index("good") < text.index("bad") if "good" in text else True
        scores = {
            c: {"answer_1": 4, "answer_2": 2} if first_is_a else {"answer_1": 2, "answer_2": 4}
            for c in ("informativeness", "persuasiveness", "helpfulness")
        }
        return json.dumps({"reason": "r", **scores, "better": "1" if first_is_a else "2"})

    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model", lambda spec: ScriptedChatModel(_jittered(verdict), name="judge")
    )
    outputs = []
    for concurrency in (1, 6):
        out = tmp_path / f"c{concurrency}"
        run_judge_eval(
            items,
            out,
            judge="j",
            settings=RunSettings(cache=False, progress=False, batch=BatchSettings(concurrency=concurrency)),
        )
        outputs.append(_records(out))
    assert outputs[0] == outputs[1]
