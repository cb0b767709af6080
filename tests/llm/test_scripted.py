from __future__ import annotations

import json

import pytest

from recai.llm import ChatModel, SchemaError, ScriptedChatModel
from recai.llm.scripted import ScriptExhaustedError
from recai.testing.chat_model import FILM_REQUEST, FILM_SCHEMA, ChatModelSuite

VALID = json.dumps({"genre": "crime", "year": 1995, "details": {"tags": ["dark", "long"], "title": "Heat"}})


class TestScriptedConformance(ChatModelSuite):
    @pytest.fixture
    def chat_model(self) -> ScriptedChatModel:
        return ScriptedChatModel(lambda msgs: "Red, green and blue are three colours I like.")

    def prepare_schema_reply(self, chat_model: ChatModel) -> None:
        assert isinstance(chat_model, ScriptedChatModel)
        chat_model._function = lambda msgs: VALID


def test_malformed_output_is_retried_with_the_error_fed_back() -> None:
    model = ScriptedChatModel(
        [
            "Sure! Here you go: {genre: crime}",  # not JSON
            '```json\n{"genre": "western", "year": 1995, "details": {"tags": [], "title": "Heat"}}\n```',  # bad enum
            f"Here it is:\n```json\n{VALID}\n```\nEnjoy!",  # fenced, with prose: accepted
        ]
    )
    result = model.complete(FILM_REQUEST, response_format=FILM_SCHEMA)
    assert result.attempts == 3 and result.parsed["details"]["title"] == "Heat"
    assert len(result.raw) == 3
    retry = model.calls[1][-1]["content"]
    assert retry.startswith("That reply cannot be used: it is not valid JSON")
    second_retry = model.calls[2][-1]["content"]
    assert "at ['genre']: 'western' is not one of" in second_retry
    assert "JSON schema" in model.calls[0][0]["content"]  # the schema is in the system message


def test_raw_newlines_inside_strings_are_accepted() -> None:
    text = '{"genre": "drama", "year": 2001, "details": {"tags": [], "title": "Two\nLines"}}'
    result = ScriptedChatModel([text]).complete(FILM_REQUEST, response_format=FILM_SCHEMA)
    assert result.parsed["details"]["title"] == "Two\nLines"


def test_cut_off_replies_say_so() -> None:
    model = ScriptedChatModel([VALID[:20]] * 3)
    with pytest.raises(SchemaError, match="not valid JSON"):
        model.complete(FILM_REQUEST, response_format=FILM_SCHEMA)


def test_pydantic_models_and_openai_style_formats_are_accepted() -> None:
    from pydantic import BaseModel

    class Pick(BaseModel):
        title: str
        score: float

    model = ScriptedChatModel(['{"title": "Heat", "score": 0.9}'] * 2)
    assert model.complete(FILM_REQUEST, response_format=Pick).parsed == {"title": "Heat", "score": 0.9}
    openai_style = {
        "type": "json_schema",
        "json_schema": {"name": "pick", "schema": Pick.model_json_schema()},
    }
    assert model.complete(FILM_REQUEST, response_format=openai_style).parsed["title"] == "Heat"


def test_an_exhausted_script_is_an_explicit_error() -> None:
    model = ScriptedChatModel(["only one"])
    model.complete([{"role": "user", "content": "a"}])
    with pytest.raises(ScriptExhaustedError, match="call 2"):
        model.complete([{"role": "user", "content": "b"}])


def test_the_first_schema_valid_value_in_prose_wins() -> None:
    replies = [
        '2 options considered. Final: {"genre": "drama", "year": 2001, "details": {"tags": [], "title": "X"}}'
    ]
    result = ScriptedChatModel(replies).complete(FILM_REQUEST, response_format=FILM_SCHEMA)
    assert result.attempts == 1 and result.parsed["genre"] == "drama"


def test_closed_models_refuse_calls_and_the_factory_reloads_them() -> None:
    from recai.llm import load_chat_model

    model = load_chat_model("scripted:echo")
    model.close()
    with pytest.raises(RuntimeError, match="has been closed"):
        model.complete([{"role": "user", "content": "hi"}])
    again = load_chat_model("scripted:echo")
    assert again is not model and again.complete([{"role": "user", "content": "hi"}]).text == "hi"
    with pytest.raises(ValueError, match="max_schema_retries"):
        again.complete(
            [{"role": "user", "content": "hi"}], response_format=FILM_SCHEMA, max_schema_retries=-1
        )


def test_a_consumer_that_stops_reading_is_not_a_failure() -> None:
    from recai.llm import meter

    meter.reset()
    stream = ScriptedChatModel(lambda m: "a long reply " * 20, chunk_size=3).stream(
        [{"role": "user", "content": "x"}]
    )
    next(stream)
    stream.close()
    stats = meter.report()["default"]["scripted"]
    assert stats["calls"] == 1 and stats["failures"] == 0 and stats["completion_tokens"] > 0
