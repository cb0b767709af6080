"""`recai gen convert | data | train | rl | merge | eval | generate` end to end on demo with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft")

from typer.testing import CliRunner

from recai.cli import app
from tests.gen.tiny import tiny_model, tiny_tokenizer, write_tiny_gguf

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_the_whole_recipe_from_the_command_line(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer()
    write_tiny_gguf(tiny_model(tokenizer, seed=0), tokenizer, tmp_path / "tiny.gguf")
    base = tmp_path / "base"
    out = _invoke("gen", "convert", str(tmp_path / "tiny.gguf"), "--out", str(base), "--dtype", "float32")
    assert (base / "model.safetensors").exists() and "written to" in out

    data = tmp_path / "gen-data"
    out = _invoke(
        "gen", "data", "demo", "--out", str(data), "--tasks", "count,category_cold,item_category",
        "--per-task", "4", "--test-per-task", "2", "--k", "3", "--min-k", "2", "--history-len", "2", "--noun", "film",
    )  # fmt: skip
    assert "category_cold" in out and (data / "train.jsonl").exists()
    meta = json.loads((data / "meta.json").read_text())
    assert meta["dataset_spec"] == "demo" and meta["counts"]["count"] == {"train": 4, "test": 2}

    model = tmp_path / "model"
    out = _invoke(
        "gen", "train", str(data), "--out", str(model), "--base", str(base), "--max-steps", "2",
        "--batch-size", "2", "--save-steps", "1", "--max-length", "512", "--lora-r", "4", "--device", "cpu",
        "--scope-loss",
    )  # fmt: skip
    assert "2 steps" in out and (model / "adapter_config.json").exists()
    scope = json.loads((model / "recai_gen.json").read_text())["data"]["scope_loss"]
    assert scope["catalog_items"] == 300 and scope["scoped_tokens"] > 0  # the demo catalog, from the data

    rl = tmp_path / "rl"
    out = _invoke(
        "gen", "rl", str(data), "--sft", str(model), "--out", str(rl), "--max-steps", "1", "--batch-size", "2",
        "--num-generations", "2", "--max-completion-length", "12", "--device", "cpu", "--reward", "invalid=2",
        "--item-weight", "0.5",
    )  # fmt: skip
    assert "1 GRPO steps" in out and (rl / "model.safetensors").exists()
    rl_config = json.loads((rl / "recai_gen.json").read_text())["config"]
    assert rl_config["reward"]["invalid"] == 2.0 and rl_config["item_weight"] == 0.5

    merged = tmp_path / "merged"
    _invoke("gen", "merge", str(model), "--out", str(merged), "--dtype", "float32")
    assert (merged / "model.safetensors").exists()

    run = tmp_path / "run"
    out = _invoke(
        "gen", "eval", str(merged), str(data), "--out", str(run), "--limit", "1", "--max-new-tokens", "12",
        "--repetition-penalty", "1.2",
    )  # fmt: skip
    assert "NDCG@10" in out and "validity" in out
    assert json.loads((run / "config.json").read_text())["system"]["decode"]["repetition_penalty"] == 1.2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "gen" and metrics["n"] == 2  # one per list task
    assert set(metrics["extra"]["tasks"]) == {"count", "category_cold"}

    out = _invoke(
        "gen", "generate", str(model), "--history", "Heat; Pulp Fiction", "--k", "2", "--max-new-tokens", "10",
        "--json",
    )  # fmt: skip
    reply = json.loads(out[out.index("{") : out.rindex("}") + 1])  # the runner mixes in stderr
    assert set(reply) >= {"text", "items", "invalid", "already_seen"}


def test_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gen", "train", str(tmp_path / "missing"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "error" in result.output
    result = runner.invoke(app, ["gen", "data", "demo", "--out", str(tmp_path / "d"), "--tasks", "nope"])
    assert result.exit_code == 1 and "unknown task" in result.output
    result = runner.invoke(app, ["gen", "generate", "no-such-model", "--history", "Heat"])
    assert result.exit_code == 1 and "error" in result.output
    # a bad decoding setting is refused before any model is looked for
    result = runner.invoke(app, ["gen", "generate", "no-such-model", "--repetition-penalty", "0"])
    assert result.exit_code == 1 and "repetition" in result.output
    data = tmp_path / "d2"
    assert runner.invoke(app, ["gen", "data", "demo", "--out", str(data), "--per-task", "2"]).exit_code == 0
    args = [
        "gen",
        "eval",
        "no-such-model",
        str(data),
        "--out",
        str(tmp_path / "r"),
        "--repetition-penalty",
        "-1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "repetition_penalty" in result.output
    assert not (tmp_path / "r").exists()


def test_gen_data_on_a_name_only_catalog_says_which_tasks_it_cannot_build(tmp_path: Path) -> None:
    from recai.data import Catalog, CatalogSchema, ColumnRole, Dataset, load

    full = load("demo")
    kept = [c for c in full.catalog.schema.columns if c.role in (ColumnRole.ID, ColumnRole.TITLE)]
    catalog = Catalog(full.catalog.items[[c.name for c in kept]], CatalogSchema(columns=kept))
    Dataset("names-only", catalog, full.interactions).save(tmp_path / "names-only")
    out = _invoke(
        "gen", "data", str(tmp_path / "names-only"), "--out", str(tmp_path / "d"), "--per-task", "3",
        "--test-per-task", "2",
    )  # fmt: skip
    said = " ".join(out.split())  # the console wraps long lines
    assert (
        "no examples of category, category_cold, category_share, item_title, item_category, general" in said
    )
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["counts"] == {"sequential": {"train": 3, "test": 2}, "count": {"train": 3, "test": 2}}
