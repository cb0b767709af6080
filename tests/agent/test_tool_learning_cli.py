"""`recai agent record | distill | eval-planner` end to end: a scripted teacher and simulator, a tiny random
causal LM as the student, trained, merged and used as the planner by its folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("peft")

from typer.testing import CliRunner

import recai.agent.commands as commands
from recai.cli import app
from recai.data import Dataset
from recai.testing.fakes import BagOfWordsEncoder
from tests.agent.learning_fakes import simulator, teacher
from tests.gen.tiny import tiny_tokenizer

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def tiny_base(folder: Path) -> Path:
    """A 1-layer Llama over the tiny tokenizer, with room for the planner's long prompts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_record_distill_and_evaluate_from_the_command_line(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = commands.chat_model
    fakes = {"scripted:teacher": teacher, "scripted:user": simulator}

    def chat_model(spec: str) -> Any:
        return fakes[spec]() if spec in fakes else real(spec)

    monkeypatch.setattr(commands, "chat_model", chat_model)
    monkeypatch.setattr(commands, "encoder", lambda spec: BagOfWordsEncoder())
    data = str(dataset.save(tmp_path / "films"))

    runs = tmp_path / "trajectories"
    out = _invoke(
        "agent", "record", data, "--out", str(runs), "--teacher", "scripted:teacher", "--per-shape", "2",
        "--sessions", "2", "--simulator", "scripted:user", "--turns", "2", "--attempts", "2",
    )  # fmt: skip
    records = [json.loads(line) for line in (runs / "records.jsonl").read_text().splitlines()]
    templated = sum(r["source"] == "template" for r in records)
    assert f"recorded {templated} templated and 2 simulated" in " ".join(out.split()) and templated >= 16
    failed = {r["id"] for r in records if r.get("attempt") == 1 and not r["success"]}
    assert {r["conversation"] for r in records if r.get("attempt") == 2} == failed  # each retried once

    distilled = tmp_path / "distilled"
    out = _invoke(
        "agent", "distill", str(runs), "--out", str(distilled), "--base", str(tiny_base(tmp_path / "base")),
        "--max-steps", "2", "--batch-size", "2", "--max-length", "8192", "--lora-r", "4", "--device", "cpu",
        "--test-share", "0.3", "--learning-rate", "0.01",
    )  # fmt: skip
    planner = distilled / "planner"
    assert "trained 2 steps" in out and (planner / "model.safetensors").exists()
    info = json.loads((distilled / "distill.json").read_text())
    assert info["data"]["filter"]["kept"] > 0 and info["counts"]
    # a rerun of the same data and config reuses the finished adapter instead of training again
    import recai.gen.training as gen_training

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("trained again")

    monkeypatch.setattr(gen_training, "train_sft", no_training)
    again = _invoke(
        "agent", "distill", str(runs), "--out", str(distilled), "--base", str(tmp_path / "base"),
        "--max-steps", "2", "--batch-size", "2", "--max-length", "8192", "--lora-r", "4", "--device", "cpu",
        "--test-share", "0.3", "--learning-rate", "0.01",
    )  # fmt: skip
    assert "trained 2 steps" in again
    held_out = (distilled / "data" / "test.jsonl").read_text().splitlines()
    assert held_out and all(json.loads(line)["messages"][-1]["role"] == "assistant" for line in held_out)

    evaluation = tmp_path / "eval"
    out = _invoke(
        "agent", "eval-planner", str(distilled), "--data", data, "--out", str(evaluation), "--max-tokens", "24",
        "--limit", "2", "--model", "teacher=scripted:teacher", "--model", f"before={tmp_path / 'base'}",
        "--model", f"after={planner}", "--sessions", "1", "--simulator", "scripted:user",
        "--llm", "scripted:stand-in", "--turns", "1",
    )  # fmt: skip
    summary = json.loads((evaluation / "summary.json").read_text())
    assert set(summary["models"]) == {"teacher", "before", "after"}
    assert summary["models"]["teacher"]["plans"]["exact"] == 1.0
    for name in ("before", "after"):  # 24 tokens of a random model never close a plan
        assert summary["models"][name]["plans"]["schema_valid"] == 0.0
        assert summary["models"][name]["simulated"]["sessions"] == 1
    assert "after" in out and "summary written to" in out
