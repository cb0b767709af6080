"""`recai embed data | train | eval` end to end on a small saved catalog and a tiny random model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from tests.catalog_fixtures import film_dataset
from tests.embed.tiny_st import tiny_sentence_transformer

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_data_train_eval_from_the_command_line(tmp_path: Path) -> None:
    films = film_dataset().save(tmp_path / "films")
    model = tiny_sentence_transformer(tmp_path / "models")
    data = tmp_path / "embed-data"
    out = _invoke("embed", "data", str(films), "--out", str(data), "--per-task", "6")
    assert "fuzzy_name" in out and (data / "train.jsonl").exists()
    assert json.loads((data / "meta.json").read_text())["dataset_spec"] == str(films.resolve())
    tuned = tmp_path / "tuned"
    out = _invoke(
        "embed", "train", str(data), "--out", str(tuned), "--base", str(model),
        "--max-steps", "2", "--batch-size", "4", "--save-steps", "1",
    )  # fmt: skip
    assert "2 steps" in out and "macro" in out
    assert "Retrieval on held-out test queries" in (tuned / "README.md").read_text()
    report = tmp_path / "eval.json"
    out = _invoke(
        "embed", "eval", str(data), "--encoder", f"st:{model}", "--encoder", f"st:{tuned}",
        "--k", "1,10", "--out", str(report),
    )  # fmt: skip
    assert "Recall@10 better on" in out
    result = json.loads(report.read_text())
    assert len(result["evaluations"]) == 2 and result["comparisons"][0]["summary"]["recall@10"]["tasks"] > 0


def test_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["embed", "train", str(tmp_path / "missing"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "error" in result.output
    films = film_dataset().save(tmp_path / "films")
    data = tmp_path / "d"
    _invoke("embed", "data", str(films), "--out", str(data), "--per-task", "4")
    result = runner.invoke(app, ["embed", "eval", str(data), "--split", "valid"])
    assert result.exit_code == 1 and "--split" in result.output


@pytest.mark.parametrize("bad", ["--tasks=nope"])
def test_unknown_task_is_refused(tmp_path: Path, bad: str) -> None:
    films = film_dataset().save(tmp_path / "films")
    result = runner.invoke(app, ["embed", "data", str(films), "--out", str(tmp_path / "d"), bad])
    assert result.exit_code == 1 and "nope" in result.output


def test_the_agent_retrieves_with_a_fine_tuned_encoder_by_path(tmp_path: Path) -> None:
    model = tiny_sentence_transformer(tmp_path / "models")
    out = _invoke("chat", "--llm", "scripted:echo", "--message", "a crime film", "--encoder", f"st:{model}")
    assert "recai>" in out
    home = Path(os.environ["RECAI_HOME"])
    encoders = [json.loads(p.read_text())["metadata"]["encoder"] for p in home.glob("indexes/*/index.json")]
    assert encoders and all(e.startswith("st:tiny-st:") for e in encoders)


def test_a_decoder_embedder_trains_with_lora_from_the_command_line(tmp_path: Path) -> None:
    from tests.embed.fixtures import tiny_decoder

    films = film_dataset().save(tmp_path / "films")
    decoder = tiny_decoder(tmp_path / "lm")
    data = tmp_path / "embed-data"
    _invoke("embed", "data", str(films), "--out", str(data), "--per-task", "6")
    tuned = tmp_path / "tuned"
    out = _invoke(
        "embed", "train", str(data), "--out", str(tuned), "--base", f"decoder:{decoder}?prefixes=e5",
        "--lora-r", "4", "--max-steps", "2", "--batch-size", "4", "--save-steps", "1",
    )  # fmt: skip
    assert "2 steps" in out and "macro" in out
    assert json.loads((tuned / "recai_training.json").read_text())["encoder"]["query_prefix"] == "query: "
    result = runner.invoke(app, ["embed", "eval", str(data), "--encoder", f"decoder:{decoder}?pooling=max"])
    assert result.exit_code == 1 and "pooling must be one of lasttoken, mean" in result.output
