"""The evaluation tasks end to end on `demo`, with fake models: run folders, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from recai.evaluate import runners
from recai.evaluate.generative import ListSampling
from recai.evaluate.prepare import DataOptions
from recai.evaluate.runners import run_conversation_eval, run_judge_eval, run_list_eval
from recai.evaluate.runs import ConfigMismatchError, RunFolder
from recai.evaluate.sampled import RunSettings
from recai.llm.scripted import ScriptedChatModel


def test_ranking_run_writes_a_folder_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "pop"
    report = run_list_eval(
        "ranking", "popularity", out, sampling=ListSampling(n_users=12), settings=RunSettings(progress=False)
    )
    assert report.exists()
    run = RunFolder.load(out)
    metrics = run.read_metrics()
    assert metrics["n"] == 12 and 0.0 <= metrics["metrics"]["ndcg@10"]["mean"] <= 1.0
    assert metrics["counts"]["invalid"] == 0
    assert (out / "metric_at_k.png").exists()
    first = (out / "records.jsonl").read_text()
    # an interrupted run: drop the last records and a half-written line, then resume
    lines = first.splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(lines[:5]) + lines[5][:20])
    run_list_eval(
        "ranking", "popularity", out, sampling=ListSampling(n_users=12), settings=RunSettings(progress=False)
    )
    assert sorted(first.splitlines()) == sorted((out / "records.jsonl").read_text().splitlines())
    with pytest.raises(ConfigMismatchError):
        run_list_eval(
            "ranking",
            "popularity",
            out,
            sampling=ListSampling(n_users=12, n_candidates=10),
            settings=RunSettings(progress=False),
        )
    # more users extend the run; fewer summarise only those users
    run_list_eval(
        "ranking", "popularity", out, sampling=ListSampling(n_users=15), settings=RunSettings(progress=False)
    )
    assert RunFolder.load(out).read_metrics()["n"] == 15
    run_list_eval(
        "ranking", "popularity", out, sampling=ListSampling(n_users=12), settings=RunSettings(progress=False)
    )
    assert RunFolder.load(out).read_metrics()["n"] == 12


def test_llm_ranking_uses_the_response_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake(spec: str) -> ScriptedChatModel:
        def reply(messages: list[dict]) -> str:
            calls.append(1)
            lines = messages[-1]["content"].split("candidate films")[1].splitlines()
            return json.dumps([*[line[2:] for line in lines if line.startswith("- ")][:3], "Not A Film 7"])

        return ScriptedChatModel(reply, name="fake-llm")

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    run_list_eval(
        "ranking",
        "llm:fake",
        tmp_path / "a",
        sampling=ListSampling(n_users=5),
        settings=RunSettings(progress=False),
    )
    assert len(calls) == 5
    metrics = RunFolder.load(tmp_path / "a").read_metrics()
    assert metrics["counts"]["invalid"] == 5 and metrics["counts"]["valid"] == 15
    run_list_eval(
        "ranking",
        "llm:fake",
        tmp_path / "b",
        sampling=ListSampling(n_users=5),
        settings=RunSettings(progress=False),
    )
    assert len(calls) == 5  # every reply came from the cache
    usage = json.loads((tmp_path / "b" / "usage.json").read_text())
    assert "cache" in json.dumps(usage)


def test_conversation_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(spec: str) -> ScriptedChatModel:
        if spec == "sim":
            return ScriptedChatModel(lambda m: "a crime film please", name="sim")
        return ScriptedChatModel(lambda m: "Try **Heat** or **Pulp Fiction**.", name="plain")

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    report = run_conversation_eval(
        "plain:x",
        tmp_path / "conv",
        simulator="sim",
        n=4,
        max_turns=2,
        settings=RunSettings(progress=False, cache=False),
    )
    metrics = RunFolder.load(tmp_path / "conv").read_metrics()
    assert metrics["n"] == 4 and len(metrics["per_turn"]["hit@5"]) == 2
    records = RunFolder.load(tmp_path / "conv").records()
    assert all(r["usage"]["simulator"]["calls"] >= 1 for r in records)
    assert "per_turn.png" in report.read_text()


def test_judge_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = tmp_path / "pairs.jsonl"
    items.write_text(
        "\n".join(
            json.dumps({"id": str(i), "prompt": "why?", "answer_a": "good " * i, "answer_b": "bad"})
            for i in range(3)
        )
    )

    def verdict(messages: list[dict]) -> str:
        text = messages[-1]["content"]
        first_is_a = text.index("good") < text.index("bad") if "good" in text else True
        better = "1" if first_is_a else "2"
        scores = {
            c: {"answer_1": 4, "answer_2": 2} if first_is_a else {"answer_1": 2, "answer_2": 4}
            for c in ("informativeness", "persuasiveness", "helpfulness")
        }
        return json.dumps({"reason": "r", **scores, "better": better})

    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model", lambda spec: ScriptedChatModel(verdict, name="judge")
    )
    run_judge_eval(items, tmp_path / "judge", judge="j", settings=RunSettings(cache=False, progress=False))
    metrics = RunFolder.load(tmp_path / "judge").read_metrics()
    assert metrics["n"] == 3
    assert set(metrics["judge"]) == {"win", "tie", "loss", "conflict", "invalid"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "prompt": "p", "answer_a": "a"}\n')
    with pytest.raises(Exception, match=r"line 1.*answer_b|answer_b.*line 1"):
        runners.read_judge_items(bad)


def test_cli_ranking_and_compare(tmp_path: Path) -> None:
    runner = CliRunner()
    for system in ("popularity", "random"):
        result = runner.invoke(
            app, ["eval", "ranking", "--system", system, "--out", str(tmp_path / system), "--users", "10"]
        )
        assert result.exit_code == 0, result.output
        assert "ndcg@10" in result.output
    result = runner.invoke(app, ["eval", "compare", str(tmp_path / "popularity"), str(tmp_path / "random")])
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output
    bad = runner.invoke(app, ["eval", "ranking", "--system", "nonsense", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "unknown system" in bad.output


def test_data_options_k_core() -> None:
    dataset, split = DataOptions("demo", k_core=5).load()
    assert len(split.test) > 0 and dataset.interactions.user_lengths().min() >= 5


def test_history_baseline_shows_new_items_each_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model",
        lambda spec: ScriptedChatModel(lambda m: "something good", name="sim"),
    )
    run_conversation_eval(
        "popularity",
        tmp_path / "pop",
        simulator="sim",
        n=3,
        max_turns=3,
        k=5,
        settings=RunSettings(progress=False),
    )
    for record in RunFolder.load(tmp_path / "pop").records():
        shown = [i for turn in record["turns"] for i in turn["items"]]
        assert len(shown) == len(set(shown))  # never the same item twice in a session
        assert all(len(turn["items"]) == 5 for turn in record["turns"])


def test_a_conversation_run_can_be_extended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model", lambda spec: ScriptedChatModel(lambda m: "anything", name="sim")
    )
    out = tmp_path / "pop"
    run_conversation_eval(
        "popularity", out, simulator="sim", n=3, max_turns=1, settings=RunSettings(progress=False)
    )
    first = [r["id"] for r in RunFolder.load(out).records()]
    run_conversation_eval(
        "popularity", out, simulator="sim", n=5, max_turns=1, settings=RunSettings(progress=False)
    )
    records = RunFolder.load(out).records()
    assert [r["id"] for r in records][:3] == first and len(records) == 5
    assert RunFolder.load(out).read_metrics()["n"] == 5


def test_a_finished_conversation_run_builds_nothing_and_keeps_its_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model", lambda spec: ScriptedChatModel(lambda m: "anything", name="sim")
    )
    out = tmp_path / "pop"
    run_conversation_eval(
        "popularity", out, simulator="sim", n=3, max_turns=1, settings=RunSettings(progress=False)
    )
    system = RunFolder.load(out).read_metrics()["extra"]["system"]

    def refuse(spec: str) -> ScriptedChatModel:
        raise AssertionError("a finished run loads no chat model")

    monkeypatch.setattr("recai.llm.factory.load_chat_model", refuse)
    run_conversation_eval(
        "popularity", out, simulator="sim", n=3, max_turns=1, settings=RunSettings(progress=False)
    )
    metrics = RunFolder.load(out).read_metrics()
    assert metrics["n"] == 3 and metrics["extra"]["system"] == system


def test_judge_pairs_from_two_conversation_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recai.evaluate.runners import judge_pairs_from_runs, read_judge_items

    def fake(spec: str) -> ScriptedChatModel:
        if spec == "sim":
            return ScriptedChatModel(lambda m: "a crime film please", name="sim")
        return ScriptedChatModel(lambda m: f"Try **Heat** ({spec})", name=spec)

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    for name in ("a", "b"):
        run_conversation_eval(
            f"plain:{name}",
            tmp_path / name,
            simulator="sim",
            n=3,
            max_turns=1,
            settings=RunSettings(progress=False),
        )
    n = judge_pairs_from_runs(tmp_path / "a", tmp_path / "b", tmp_path / "pairs.jsonl")
    items = read_judge_items(tmp_path / "pairs.jsonl")
    assert n == len(items) == 3
    assert items[0].answer_a.endswith("(a)") and items[0].answer_b.endswith("(b)")
    assert "Heat (1995)" in items[0].facts and items[0].prompt == "a crime film please"
