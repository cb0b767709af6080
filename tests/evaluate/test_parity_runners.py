"""The runners for multiple choice, summary embedding and judged generation, end to end on `demo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recai.evaluate.generative import ListSampling
from recai.evaluate.judge import CRITERIA
from recai.evaluate.runners import run_choice_eval, run_generation_eval, run_list_eval
from recai.evaluate.runs import ConfigMismatchError, RunFolder
from recai.evaluate.sampled import RunSettings
from recai.llm.batch import BatchSettings, Budget, BudgetExhaustedError
from recai.llm.scripted import ScriptedChatModel
from recai.testing.fakes import BagOfWordsEncoder


def test_choice_run_scores_letters_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake(spec: str) -> ScriptedChatModel:
        def reply(messages: list[dict]) -> str:
            calls.append(1)
            return "B" if len(calls) % 3 else "B or C"  # a letter-biased model, now and then two letters

        return ScriptedChatModel(reply, name="fake-llm")

    monkeypatch.setattr("recai.llm.factory.load_chat_model", fake)
    out = tmp_path / "mc"
    run_choice_eval(
        "seq",
        "llm:fake",
        out,
        sampling=ListSampling(n_candidates=10, n_users=6, orders=2),
        settings=RunSettings(progress=False, cache=False),
    )
    metrics = RunFolder.load(out).read_metrics()
    assert metrics["task"] == "choice_seq" and metrics["n"] == 6
    assert metrics["counts"]["several"] == 4 and metrics["counts"]["valid"] == 8
    assert metrics["extra"]["answer_letters"]["B"] == 8
    assert "top1_agreement" in metrics["extra"]["position_bias"]
    run_choice_eval(
        "seq",
        "llm:fake",
        out,
        sampling=ListSampling(n_candidates=10, n_users=6, orders=2),
        settings=RunSettings(progress=False, cache=False),
    )
    assert len(calls) == 12  # resumed: nothing asked again
    with pytest.raises(ConfigMismatchError):
        run_choice_eval(
            "seq",
            "llm:fake",
            out,
            sampling=ListSampling(n_candidates=10, n_users=6, orders=3),
            settings=RunSettings(progress=False, cache=False),
        )
    run_choice_eval(
        "cf",
        "popularity",
        tmp_path / "pop",
        sampling=ListSampling(n_candidates=10, n_users=6),
        settings=RunSettings(progress=False),
    )
    pop = RunFolder.load(tmp_path / "pop").read_metrics()
    assert pop["task"] == "choice_cf" and pop["counts"]["valid"] == 6
    with pytest.raises(ValueError, match="chatrec"):
        run_choice_eval(
            "cf",
            "chatrec:fake",
            tmp_path / "cr",
            sampling=ListSampling(n_candidates=10, n_users=2),
            settings=RunSettings(progress=False),
        )


def test_summary_system_in_the_ranking_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "recai.llm.factory.load_chat_model",
        lambda spec: ScriptedChatModel(lambda m: "Enjoys crime dramas and thrillers.", name="summ"),
    )
    monkeypatch.setattr("recai.embed.encoder.load_encoder", lambda spec=None: BagOfWordsEncoder())
    run_list_eval(
        "retrieval",
        "summary:fake",
        tmp_path / "s",
        sampling=ListSampling(n_users=4),
        settings=RunSettings(progress=False, cache=False),
    )
    run = RunFolder.load(tmp_path / "s")
    assert run.read_metrics()["counts"]["summary_fallback"] == 0
    assert all(o["details"]["summary"].startswith("Enjoys") for r in run.records() for o in r["orders"])


def _judge(messages: list[dict]) -> str:
    """Prefers the answer that gives a reason (system A's), in either order."""
    text = messages[0]["content"]
    first_wins = "because" in text.split("[Answer 1]", 1)[1].split("[End of answer 1]", 1)[0]
    kind = "explanation" if "explanation" in text[:200] else "chitchat"
    scores = {
        c: {"answer_1": 4, "answer_2": 2} if first_wins else {"answer_1": 2, "answer_2": 4}
        for c in CRITERIA[kind]
    }
    return json.dumps({"reason": "r", "scores": scores, "better": "1" if first_wins else "2"})


def _fake(spec: str) -> ScriptedChatModel:
    if spec == "judge":
        return ScriptedChatModel(_judge, name="judge")
    if spec == "a":
        return ScriptedChatModel(lambda m: "You would like it because it matches your taste.", name="a")
    return ScriptedChatModel(lambda m: "It is a film.", name="b")


@pytest.mark.parametrize("kind", ["explanation", "chitchat"])
def test_generation_run_builds_answers_and_judges(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recai.llm.factory.load_chat_model", _fake)
    out = tmp_path / kind
    run_generation_eval(
        kind, "llm:a", "llm:b", out, n=5, judge="judge", settings=RunSettings(cache=False, progress=False)
    )
    provenance = json.loads((out / "prompts" / "provenance.json").read_text())
    assert provenance["kind"] == kind and provenance["n"] == 5
    metrics = RunFolder.load(out).read_metrics()
    assert metrics["task"] == kind and metrics["n"] == 5
    assert metrics["judge"]["win"] == 5  # A gives reasons, and the judge saw that in both orders
    assert metrics["extra"]["system_a"] == "llm:a" and metrics["extra"]["prompts"]["sha256"]
    answers = RunFolder.load(out / "answers_a").records()
    assert len(answers) == 5 and all("because" in r["answer"] for r in answers)
    with pytest.raises(ValueError, match="writes no text"):
        run_generation_eval(
            kind,
            "llm:a",
            "popularity",
            tmp_path / "x",
            n=2,
            judge="judge",
            settings=RunSettings(progress=False),
        )


def test_generation_run_resumes_after_a_budget_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("recai.llm.factory.load_chat_model", _fake)
    out = tmp_path / "stop"
    tight = BatchSettings(budget=Budget(max_tokens=60))
    with pytest.raises(BudgetExhaustedError):
        run_generation_eval(
            "chitchat",
            "llm:a",
            "llm:b",
            out,
            n=6,
            judge="judge",
            settings=RunSettings(cache=False, progress=False, batch=tight),
        )
    assert (out / "usage.json").exists()
    partial = len(RunFolder.load(out / "answers_a").records())
    assert 0 < partial < 6
    run_generation_eval(
        "chitchat",
        "llm:a",
        "llm:b",
        out,
        n=6,
        judge="judge",
        settings=RunSettings(cache=False, progress=False),
    )
    assert RunFolder.load(out).read_metrics()["n"] == 6
    hand = tmp_path / "mine.jsonl"
    hand.write_text('{"id": "q1", "kind": "chitchat", "prompt": "What is a good heist film?"}\n')
    run_generation_eval(
        "chitchat",
        "llm:a",
        "llm:b",
        tmp_path / "own",
        prompts=hand,
        judge="judge",
        settings=RunSettings(cache=False, progress=False),
    )
    assert RunFolder.load(tmp_path / "own").read_metrics()["extra"]["prompts"]["source"] == "written"


def test_cli_mc_and_chitchat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from recai.cli import app

    monkeypatch.setattr("recai.llm.factory.load_chat_model", _fake)
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["eval", "mc", "--system", "llm:a", "--kind", "cf", "--users", "3", "--out", str(tmp_path / "mc")],
    )
    assert done.exit_code == 0, done.output
    mc = RunFolder.load(tmp_path / "mc").read_metrics()
    assert mc["counts"]["invalid"] == 3  # "You would like it because ..." names no letter
    args = ["eval", "chitchat", "--system", "llm:a", "--system", "llm:b", "--n", "3", "--judge", "judge"]
    done = runner.invoke(app, [*args, "--out", str(tmp_path / "cc"), "--no-cache"])
    assert done.exit_code == 0, done.output
    assert RunFolder.load(tmp_path / "cc").read_metrics()["judge"]["win"] == 3
    one = runner.invoke(app, ["eval", "explanation", "--system", "llm:a", "--out", str(tmp_path / "x")])
    assert one.exit_code == 1 and "exactly two --system" in one.output


def test_seq_choice_on_an_untimed_log_leaves_no_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from recai.data import Dataset, Interactions, load

    demo = load("demo")
    untimed = demo.interactions.stored_frame().drop(columns="timestamp", errors="ignore")
    data = Dataset("untimed", demo.catalog, Interactions(untimed, demo.catalog.ids))
    assert isinstance(untimed, pd.DataFrame) and not data.interactions.has_timestamps
    monkeypatch.setattr("recai.evaluate.prepare.DataOptions.load", lambda self: (data, data.split()))
    with pytest.raises(ValueError, match="no timestamps"):
        run_choice_eval(
            "seq",
            "popularity",
            tmp_path / "seq",
            sampling=ListSampling(n_candidates=10, n_users=3),
            settings=RunSettings(progress=False),
        )
    assert not (tmp_path / "seq").exists()
    run_choice_eval(
        "cf",
        "popularity",
        tmp_path / "seq",
        sampling=ListSampling(n_candidates=10, n_users=3),
        settings=RunSettings(progress=False),
    )
    assert RunFolder.load(tmp_path / "seq").read_metrics()["task"] == "choice_cf"
