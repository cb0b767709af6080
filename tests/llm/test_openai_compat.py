"""The openai backend over real HTTP against a local OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from recai.llm import ChatModelConfig, SchemaError, load_chat_model
from recai.llm.openai_compat import OpenAIChatModel
from recai.testing.chat_model import FILM_REQUEST, FILM_SCHEMA, ChatModelSuite
from tests.llm.openai_server import ServerState, openai_server

pytestmark = pytest.mark.network
VALID = {"genre": "crime", "year": 1995, "details": {"tags": ["dark"], "title": "Heat"}}


def film_responder(request: dict[str, Any]) -> str:
    if "JSON schema" in request["messages"][0]["content"]:
        return json.dumps(VALID)
    return "Red, green and blue are three colours worth naming today."


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ServerState]]:
    with openai_server(ServerState(responder=film_responder)) as (url, state):
        yield url, state


class TestOpenAIConformance(ChatModelSuite):
    @pytest.fixture
    def chat_model(self, server: tuple[str, ServerState]) -> OpenAIChatModel:
        url, state = server
        state.fail_with.clear()
        return OpenAIChatModel("test-model", base_url=url, max_retries=0)


def test_json_schema_is_sent_natively(server: tuple[str, ServerState]) -> None:
    url, state = server
    model = OpenAIChatModel("test-model", base_url=url)
    assert model.complete(FILM_REQUEST, response_format=FILM_SCHEMA).parsed == VALID
    sent = state.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == FILM_SCHEMA


def test_servers_without_json_schema_fall_back_to_validated_retry() -> None:
    with openai_server(ServerState(responder=film_responder, reject_json_schema=True)) as (url, state):
        model = OpenAIChatModel("m", base_url=url)
        assert model.complete(FILM_REQUEST, response_format=FILM_SCHEMA).parsed == VALID
        assert model.native_schema is False
        assert "response_format" not in state.requests[-1]


def test_429_and_5xx_are_retried_with_backoff() -> None:
    with openai_server(ServerState(responder=film_responder, fail_with=[429, 503])) as (url, state):
        model = OpenAIChatModel("m", base_url=url, max_retries=3)
        assert model.complete([{"role": "user", "content": "hi"}]).text.startswith("Red")
        assert len(state.requests) == 3
    with openai_server(ServerState(fail_with=[500, 500, 500])) as (url, state):
        import openai

        with pytest.raises(openai.InternalServerError):
            OpenAIChatModel("m", base_url=url, max_retries=1).complete([{"role": "user", "content": "hi"}])
        assert len(state.requests) == 2


def test_garbage_from_the_server_is_a_schema_error_not_a_crash() -> None:
    with openai_server(ServerState(responder=lambda r: "I refuse to write JSON.")) as (url, _):
        model = OpenAIChatModel("m", base_url=url)
        with pytest.raises(SchemaError, match="not valid JSON"):
            model.complete(FILM_REQUEST, response_format=FILM_SCHEMA)


def test_spec_strings_and_environment(
    server: tuple[str, ServerState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    model = load_chat_model(f"openai:{url}#served-model", cache=False)
    assert isinstance(model, OpenAIChatModel) and model.model == "served-model"
    assert model.complete([{"role": "user", "content": "hi"}]).text.startswith("Red")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("RECAI_LLM", "openai:gpt-4o-mini")
    default = load_chat_model(cache=False)
    assert isinstance(default, OpenAIChatModel) and default.model == "gpt-4o-mini"
    assert default.complete([{"role": "user", "content": "hi"}]).text.startswith("Red")


def test_spec_parsing() -> None:
    c = ChatModelConfig.parse("local:qwen2.5-0.5b-instruct?n_ctx=8192&verbose=false")
    assert (c.backend, c.model, c.options) == (
        "local",
        "qwen2.5-0.5b-instruct",
        {"n_ctx": 8192, "verbose": False},
    )
    c = ChatModelConfig.parse("openai:https://example.org/v1#qwen")
    assert (c.base_url, c.model) == ("https://example.org/v1", "qwen")
    with pytest.raises(ValueError, match="must start with one of"):
        ChatModelConfig.parse("gpt-4o")
    with pytest.raises(ValueError, match="after '#'"):
        ChatModelConfig.parse("openai:http://localhost:8000/v1")
    echo = load_chat_model("scripted:echo", cache=False)
    assert echo.complete([{"role": "user", "content": "ping"}]).text == "ping"


def test_schema_names_are_sanitised_and_strict_mode_is_used_when_allowed(
    server: tuple[str, ServerState],
) -> None:
    from recai.llm.openai_compat import strict_compatible

    url, state = server
    model = OpenAIChatModel("m", base_url=url)
    titled = {**FILM_SCHEMA, "title": "Plan v1.0 (ünïcode)"}
    model.complete(FILM_REQUEST, response_format=titled)
    sent = state.requests[-1]["response_format"]["json_schema"]
    assert sent["name"] == "Plan_v1_0___n_code_" and sent["strict"] is True
    assert model.native_schema
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert not strict_compatible(loose) and strict_compatible(FILM_SCHEMA)
