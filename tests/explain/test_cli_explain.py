"""`recai explain data | train | eval | why` end to end, all three modes, on a tiny SASRec and a tiny LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from typer.testing import CliRunner

from recai.cli import app
from tests.explain.helpers import base_folder, dataset

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_three_modes_train_evaluate_and_explain_from_the_command_line(tmp_path: Path) -> None:
    films = tmp_path / "films"
    dataset().save(films)
    data = tmp_path / "data"
    out = _invoke(
        "explain", "data", str(films), "--out", str(data), "--per-task", "2", "--test-per-task", "1",
        "--k", "3", "--n-candidates", "3", "--history-len", "3", "--noun", "film",
        "--target-param", "hidden=16", "--target-param", "layers=1", "--target-param", "heads=1",
        "--target-param", "max_len=10", "--target-param", "epochs=2",
        "--task-size", "classification=4", "--test-task-size", "classification=2",
    )  # fmt: skip
    assert "retrieval" in out and (data / "target" / "meta.json").exists()
    meta = json.loads((data / "meta.json").read_text())
    assert meta["target"] == "sasrec" and meta["counts"]["ranking"] == {"train": 2, "test": 1}
    assert meta["counts"]["classification"] == {"train": 4, "test": 2}

    base = base_folder(tmp_path)
    for mode in ("behaviour", "intention", "hybrid"):
        model = tmp_path / mode
        out = _invoke(
            "explain", "train", str(data), "--out", str(model), "--mode", mode, "--base", str(base),
            "--max-steps", "1", "--batch-size", "4", "--lora-r", "4", "--device", "cpu", "--max-length", "768",
        )  # fmt: skip
        assert "1 steps" in out and (model / "recai_explain.json").exists()
        assert (model / "projectors.safetensors").exists() == (mode != "behaviour")
        run = tmp_path / f"run-{mode}"
        out = _invoke("explain", "eval", str(model), str(data), "--out", str(run), "--limit", "1")
        metrics = json.loads((run / "metrics.json").read_text())
        expected = {"retrieval", "ranking", "classification", "item_similar"}
        expected |= {"uid2summary", "feature2iid", "description2iid"}  # every mode
        if mode != "behaviour":
            expected |= {"item_title", "history"}
        assert set(metrics["extra"]["tasks"]) == expected and "ranking_ndcg" in out

    judged = tmp_path / "run-judged"
    out = _invoke(
        "explain", "eval", str(tmp_path / "hybrid"), str(data), "--out", str(judged), "--limit", "1",
        "--judge", "scripted:echo", "--against", f"base:{base}", "--why", "2", "--concurrency", "2",
    )  # fmt: skip
    result = json.loads((judged / "judge.json").read_text())
    assert result["systems"] == {"A": "explainer-hybrid", "B": "base"} and len(result["explanations"]) == 2
    assert (
        result["summary"]["n"] == 2
    )  # the echo judge gives no verdict JSON: counted as invalid, not dropped

    reference = tmp_path / "run-reference"
    out = _invoke("explain", "eval", "reference", str(data), "--out", str(reference))
    metrics = json.loads((reference / "metrics.json").read_text())
    assert set(metrics["extra"]["tasks"]) == {"retrieval", "ranking", "classification", "item_similar"}
    assert "answer-popularity" in out and (reference / "records.jsonl").exists()
    failed = runner.invoke(app, ["explain", "eval", "reference", str(data), "--judge", "scripted:echo"])
    assert failed.exit_code == 1 and "no explanations" in failed.output

    user = str(dataset().interactions.user_ids[0])
    out = _invoke("explain", "why", user, "The Matrix", "--model", str(tmp_path / "intention"),
                  "--max-new-tokens", "6", "--json")  # fmt: skip
    reply = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert (reply["item"] == 1 and "The recommender ranks" in reply["target"]) or "already" in reply["target"]


def test_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", "train", str(tmp_path / "missing"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "error" in result.output
    result = runner.invoke(
        app, ["explain", "data", "demo", "--out", str(tmp_path / "d"), "--target", "popularity"]
    )
    assert result.exit_code == 1 and "target must be one of" in result.output
    result = runner.invoke(
        app, ["explain", "data", "demo", "--out", str(tmp_path / "d"), "--negatives", "top"]
    )
    assert result.exit_code == 1 and "--negatives must be one of" in result.output
    result = runner.invoke(
        app, ["explain", "data", "demo", "--out", str(tmp_path / "d"), "--task-size", "classification:9"]
    )
    assert result.exit_code == 1 and "--task-size takes TASK=N" in result.output
    assert not (tmp_path / "d").exists()


def test_an_mf_target_is_explained_from_the_command_line(tmp_path: Path) -> None:
    """ALS's user factors (folded in for test histories) and item factors reach the LLM like SASRec's."""
    films = tmp_path / "films"
    dataset().save(films)
    data = tmp_path / "data"
    _invoke(
        "explain", "data", str(films), "--out", str(data), "--per-task", "2", "--test-per-task", "1",
        "--k", "3", "--n-candidates", "3", "--history-len", "3", "--noun", "film", "--target", "als",
        "--target-param", "factors=8", "--target-param", "iterations=3",
    )  # fmt: skip
    meta = json.loads((data / "meta.json").read_text())
    assert (
        meta["target"] == "als" and json.loads((data / "target" / "meta.json").read_text())["class"] == "ALS"
    )

    model = tmp_path / "hybrid"
    _invoke(
        "explain", "train", str(data), "--out", str(model), "--mode", "hybrid", "--base",
        str(base_folder(tmp_path)), "--max-steps", "1", "--batch-size", "4", "--lora-r", "4", "--device", "cpu",
        "--max-length", "768",
    )  # fmt: skip
    saved = json.loads((model / "recai_explain.json").read_text())["data"]["meta"]
    assert saved["history_len"] == 3 and saved["top_share"] == 0.1  # `why` uses the data's own values
    run = tmp_path / "run"
    out = _invoke("explain", "eval", str(model), str(data), "--out", str(run), "--limit", "1")
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"classification", "item_title", "history"} <= set(
        metrics["extra"]["tasks"]
    ) and "ranking_ndcg" in out

    user = str(dataset().interactions.user_ids[0])
    out = _invoke(
        "explain", "why", user, "The Matrix", "--model", str(model), "--max-new-tokens", "6", "--json"
    )
    reply = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert "The recommender ranks" in reply["target"] or "already" in reply["target"]
