"""The ChatModel conformance suite: every backend must pass the same tests. Needs pytest.

A backend's test class inherits :class:`ChatModelSuite` and provides a ``chat_model`` fixture
(and may override ``prepare_schema_reply`` when, like the scripted fake, it needs to be told what to
answer). The assertions do not depend on what a model says, only on the contract: token accounting,
streaming that agrees with completion, stop sequences that cut exactly, schema-valid structured output,
and a clean SchemaError (never a crash) when valid output is impossible::

    from recai.testing import ChatModelSuite

    class TestMyBackend(ChatModelSuite):
        @pytest.fixture
        def chat_model(self) -> ChatModel:
            return MyBackend(...)
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from recai.llm import ChatModel, SchemaError, meter, track

__all__ = ["FILM_REQUEST", "FILM_SCHEMA", "HELLO", "ChatModelSuite"]

HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}]

FILM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "genre": {"enum": ["crime", "drama", "comedy"]},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
        "details": {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"enum": ["dark", "funny", "long"]}, "maxItems": 3},
                "title": {"type": "string", "maxLength": 30},
            },
            "required": ["tags", "title"],
            "additionalProperties": False,
        },
    },
    "required": ["genre", "year", "details"],
    "additionalProperties": False,
}
FILM_REQUEST = [{"role": "user", "content": "Describe the film Heat (1995) as JSON."}]


class ChatModelSuite:
    """Mix into a test class that defines a ``chat_model`` fixture.

    The contract every :class:`~recai.llm.base.ChatModel` keeps (usage reporting, streaming, schema
    replies), checked the same way for built-in backends and a user's own.

    Attributes:
        max_tokens: The completion limit of the suite's requests (small, so real models answer fast).
    """

    max_tokens = 24

    def prepare_schema_reply(self, chat_model: ChatModel) -> None:
        """Hook for fakes that must be told what to reply to the schema request."""

    def test_plain_completion_reports_tokens_and_latency(self, chat_model: ChatModel) -> None:
        meter.reset()
        result = chat_model.complete(HELLO, max_tokens=self.max_tokens)
        assert isinstance(result.text, str)
        assert result.prompt_tokens > 0 and 0 <= result.completion_tokens <= self.max_tokens
        assert result.latency_s > 0 and result.model == chat_model.name
        assert result.parsed is None and result.attempts == 1
        stats = meter.report()["default"][chat_model.name]
        assert stats["calls"] == 1 and stats["prompt_tokens"] == result.prompt_tokens

    def test_streaming_matches_greedy_completion(self, chat_model: ChatModel) -> None:
        full = chat_model.complete(HELLO, max_tokens=self.max_tokens, temperature=0.0, seed=0).text
        streamed = "".join(chat_model.stream(HELLO, max_tokens=self.max_tokens, temperature=0.0, seed=0))
        assert streamed == full

    def test_stop_sequences_cut_exactly(self, chat_model: ChatModel) -> None:
        full = chat_model.complete(HELLO, max_tokens=self.max_tokens, temperature=0.0, seed=0).text
        if len(full) < 6:
            pytest.skip(f"the model's reply is too short to place a stop sequence in: {full!r}")
        stop = full[3:6]
        expected = full[: full.find(stop)]
        cut = chat_model.complete(HELLO, max_tokens=self.max_tokens, temperature=0.0, seed=0, stop=[stop])
        assert cut.text == expected and stop not in cut.text
        streamed = "".join(
            chat_model.stream(HELLO, max_tokens=self.max_tokens, temperature=0.0, seed=0, stop=[stop])
        )
        assert streamed == expected

    def test_schema_constrained_output_is_parsed_and_valid(self, chat_model: ChatModel) -> None:
        self.prepare_schema_reply(chat_model)
        result = chat_model.complete(
            FILM_REQUEST, response_format=FILM_SCHEMA, max_tokens=160, temperature=0.0
        )
        Draft202012Validator(FILM_SCHEMA).validate(result.parsed)
        assert result.parsed["genre"] in ("crime", "drama", "comedy")
        assert isinstance(result.parsed["details"]["tags"], list)

    def test_impossible_schema_output_raises_a_clear_error(self, chat_model: ChatModel) -> None:
        # Two tokens cannot hold the required object: every backend must fail cleanly, never crash.
        with pytest.raises(SchemaError) as info:
            chat_model.complete(FILM_REQUEST, response_format=FILM_SCHEMA, max_tokens=2, max_schema_retries=1)
        assert len(info.value.raw) == 2 and len(info.value.errors) == 2
        assert "no schema-valid reply in 2 attempts" in str(info.value)

    def test_bad_messages_are_refused_before_any_call(self, chat_model: ChatModel) -> None:
        with pytest.raises(ValueError, match=r"messages\[1\]"):
            chat_model.complete([{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}])
        with pytest.raises(ValueError, match="not a valid JSON schema"):
            chat_model.complete(HELLO, response_format={"type": "not-a-type"})

    def test_usage_is_attributed_to_the_active_component(self, chat_model: ChatModel) -> None:
        meter.reset()
        with track("planner"):
            chat_model.complete(HELLO, max_tokens=4)
        with track("responder"):
            list(chat_model.stream(HELLO, max_tokens=4))
        report = meter.report()
        assert report["planner"][chat_model.name]["calls"] == 1
        assert report["responder"][chat_model.name]["calls"] == 1
