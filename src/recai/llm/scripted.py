"""A deterministic fake ChatModel for tests: it replays scripted replies or computes them from the prompt.

Schema handling, stop sequences, streaming and usage metering go through the same base-class code as
the real backends, so tests of planners and judges exercise the real contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from recai.errors import RecaiError
from recai.llm.base import ChatModel, Decoding, Generation, Message

Reply = str | Callable[[list[Message]], str]


class ScriptExhaustedError(RuntimeError, RecaiError):
    """The script has no reply left for a call: a test made more calls than it scripted."""


class ScriptedChatModel(ChatModel):
    """A ChatModel whose replies come from a script, so tests run the real contract without a model.

    Args:
        script: A list consumed in order (strings or functions of the messages), or a single function
            of the messages used for every call.
        name: The name in usage reports.
        chunk_size: Characters per streamed chunk.

    Attributes:
        calls: Every call's messages, in order.
        schemas: Every ``_generate`` call's schema (None without one), in order.
    """

    native_schema = False

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[list[Message]], str],
        *,
        name: str = "scripted",
        chunk_size: int = 4,
    ) -> None:
        self.name = name
        self._function = script if callable(script) else None
        self._queue: list[Reply] = [] if callable(script) else list(script)
        self.chunk_size = chunk_size
        self.calls: list[list[Message]] = []
        self.schemas: list[dict[str, Any] | None] = []

    def _next(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        if self._function is not None:
            return self._function(messages)
        if not self._queue:
            raise ScriptExhaustedError(f"{self.name}: no scripted reply left for call {len(self.calls)}")
        reply = self._queue.pop(0)
        return reply(messages) if callable(reply) else reply

    @staticmethod
    def _count(messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 3 for m in messages)

    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        self.schemas.append(schema)
        text = self._next(messages)
        words = text.split(" ")
        finish = "stop"
        if len(words) > decoding.max_tokens:
            text, finish = " ".join(words[: decoding.max_tokens]), "length"
        return Generation(text, self._count(messages), min(len(words), decoding.max_tokens), finish)

    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        gen = self._generate(messages, schema=None, decoding=decoding)
        usage["prompt_tokens"], usage["completion_tokens"] = gen.prompt_tokens, gen.completion_tokens
        for i in range(0, len(gen.text), self.chunk_size):
            yield gen.text[i : i + self.chunk_size]
