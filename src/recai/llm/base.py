"""The ChatModel protocol every backend implements, with schema enforcement and usage metering.

Backends implement ``_generate`` and ``_stream``; this base class owns the contract callers rely on:
a JSON schema in ``response_format`` yields a parsed, schema-valid object (natively constrained
backends are still validated; the others are retried with the validation error fed back) or a
:class:`SchemaError` that carries every raw reply, never a crash on malformed output.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from recai.llm.prompting import render_prompt
from recai.llm.retry import RetryPolicy, call_with_retries
from recai.llm.structured import SchemaError, normalise_response_format, parse_structured
from recai.llm.usage import meter

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Decoding:
    """How one reply is decoded: the settings a call hands to its backend as one value.

    Every backend, the response cache and the retry loop receive these together, so a new setting is
    added in one place rather than threaded through every ``_generate`` and ``_stream``.

    Attributes:
        max_tokens: The most tokens the reply may have.
        temperature: Sampling temperature; 0 decodes greedily.
        stop: Sequences that end the reply (cut from the text), or None.
        seed: Sampling seed for a reproducible draw, or None for a fresh one.
    """

    max_tokens: int = 512
    temperature: float = 0.0
    stop: Sequence[str] | None = None
    seed: int | None = None

    def request_fields(self, *, max_stop: int | None = None) -> dict[str, Any]:
        """These settings as OpenAI chat-completion fields (llama-cpp-python takes the same names);
        ``max_stop`` caps the stop sequences for servers that accept only so many."""
        fields: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.stop:
            fields["stop"] = list(self.stop)[:max_stop]
        if self.seed is not None:
            fields["seed"] = self.seed
        return fields


@dataclass
class Generation:
    """What a backend produced for one call, before schema handling.

    Attributes:
        text: The reply as the backend returned it (before stop sequences are cut).
        prompt_tokens: Tokens read.
        completion_tokens: Tokens written.
        finish_reason: Why decoding ended ("stop", "length"), when the backend says.
        cached: True when a response cache answered: the tokens are the original call's, nothing was spent.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    cached: bool = False


@dataclass
class Completion:
    """The result of :meth:`ChatModel.complete`: the reply, its parsed value and what it cost.

    Attributes:
        text: The reply, cut at the first stop sequence.
        parsed: The schema-valid value when a ``response_format`` was given, else None.
        prompt_tokens: Tokens read, over every schema attempt.
        completion_tokens: Tokens written, over every schema attempt.
        latency_s: Seconds spent in the backend, over every schema attempt.
        model: The model's name.
        finish_reason: Why decoding ended ("stop", "length"), when known.
        attempts: Calls it took to get a schema-valid reply (1 without a schema).
        raw: Every raw reply, in order.
    """

    text: str
    parsed: Any | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    attempts: int = 1
    raw: list[str] = field(default_factory=list)


def check_messages(messages: Sequence[Message]) -> list[Message]:
    """Validate chat messages up front, naming the first bad one."""
    if not messages:
        raise ValueError("messages must not be empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be {{'role': one of {ROLES}, 'content': str}}, got {m!r}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence (backends that stop natively make this a no-op)."""
    if not stop:
        return text, False
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class ChatModel(ABC):
    """A chat LLM: the one interface agents, judges and generators call, whatever runs the model.

    Subclasses set ``name`` and ``native_schema`` and implement ``_generate`` and ``_stream``; schema
    enforcement, stop sequences, retries and usage metering stay here, the same for every backend.

    Attributes:
        name: The model's name in usage reports and errors.
        native_schema: True when ``_generate`` itself constrains output to the schema (grammar,
            server-side).
        closed: Set by ``close``; a closed model refuses calls with a clear error.
        default_concurrency: Requests a batch job keeps in flight by default (``--concurrency``): 1 for
            in-process models, which compute one reply at a time; servers that batch requests set more.
        retry: How calls refused for now (429, 5xx, a dropped connection) are tried again.
    """

    name: str = "chat-model"
    native_schema: bool = False
    closed: bool = False
    default_concurrency: int = 1
    retry: RetryPolicy = RetryPolicy()

    def complete(
        self,
        messages: Sequence[Message],
        *,
        response_format: Any = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        max_schema_retries: int = 2,
        describe_schema: bool = True,
    ) -> Completion:
        """Generate one reply; with ``response_format`` the reply is parsed and validated.

        ``describe_schema=False`` leaves the JSON schema out of the prompt, for callers whose prompt
        already explains the format (it is still enforced and validated).
        """
        self._check_open()
        msgs = check_messages(messages)
        if max_schema_retries < 0:
            raise ValueError("max_schema_retries must be 0 or more")
        schema = normalise_response_format(response_format)
        decoding = Decoding(max_tokens, temperature, stop, seed)
        if schema is None:
            return self._one_call(msgs, None, decoding)
        if describe_schema:
            instruction = render_prompt("json_reply", schema=json.dumps(schema, ensure_ascii=False))
            msgs = _with_system_note(msgs, instruction)
        raw: list[str] = []
        errors: list[str] = []
        total = Completion(text="", model=self.name)
        for attempt in range(1, max_schema_retries + 2):
            result = self._one_call(msgs, schema, decoding)
            raw.append(result.text)
            total.prompt_tokens += result.prompt_tokens
            total.completion_tokens += result.completion_tokens
            total.latency_s += result.latency_s
            value, error = parse_structured(result.text, schema)
            if error is None:
                total.text, total.parsed, total.attempts, total.raw = result.text, value, attempt, raw
                total.finish_reason = result.finish_reason
                return total
            if result.finish_reason == "length":
                error += f" (the reply was cut off at max_tokens={max_tokens})"
            errors.append(error)
            msgs = [
                *msgs,
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": render_prompt("json_retry", error=error)},
            ]
        raise SchemaError(
            f"{self.name} gave no schema-valid reply in {len(raw)} attempts; last problem: {errors[-1]}",
            raw=raw,
            errors=errors,
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the reply as text chunks (structured output needs :meth:`complete`)."""
        self._check_open()
        msgs = check_messages(messages)
        start = time.perf_counter()
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        failed = True
        buffer = ""  # received but not yet yielded: it might be the start of a stop sequence
        hold = max((len(x) for x in stop or () if x), default=1) - 1
        try:
            for chunk in self._retried_stream(msgs, Decoding(max_tokens, temperature, stop, seed), usage):
                buffer += chunk
                cut, hit = apply_stop(buffer, stop)
                if hit:
                    buffer = cut
                    break
                if len(buffer) > hold:
                    yield buffer[: len(buffer) - hold]
                    buffer = buffer[len(buffer) - hold :]
            if buffer:
                yield buffer
            failed = False
        except GeneratorExit:  # the consumer stopped reading: not a failure of the model
            failed = False
            raise
        finally:
            meter.record(
                self.name,
                prompt_tokens=usage["prompt_tokens"],
                completion_tokens=usage["completion_tokens"],
                latency_s=time.perf_counter() - start,
                failed=failed,
            )

    # ------------------------------------------------------------ internals
    def _retried_stream(
        self, msgs: list[Message], decoding: Decoding, usage: dict[str, int]
    ) -> Iterator[str]:
        """``_stream``, retried while nothing has been received: once text has reached the caller a
        retry would repeat it, so a failure after the first chunk is raised."""

        def first() -> tuple[Iterator[str], str | None]:
            usage.update(prompt_tokens=0, completion_tokens=0)
            chunks = self._stream(msgs, decoding=decoding, usage=usage)
            try:
                return chunks, next(chunks)
            except StopIteration:
                return chunks, None

        chunks, head = call_with_retries(first, self.retry, what=f"{self.name} stream")
        if head is None:
            return
        yield head
        yield from chunks

    def _one_call(self, msgs: list[Message], schema: dict[str, Any] | None, decoding: Decoding) -> Completion:
        def attempt() -> tuple[Generation, float]:
            start = time.perf_counter()
            try:
                gen = self._generate(msgs, schema=schema, decoding=decoding)
            except Exception:
                meter.record(
                    self.name,
                    prompt_tokens=0,
                    completion_tokens=0,
                    latency_s=time.perf_counter() - start,
                    failed=True,
                )
                raise
            return gen, time.perf_counter() - start

        gen, latency = call_with_retries(attempt, self.retry, what=f"{self.name} request")
        text, hit = apply_stop(gen.text, decoding.stop)
        meter.record(
            self.name,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            latency_s=latency,
            cached=gen.cached,
        )
        return Completion(
            text=text,
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=gen.completion_tokens,
            latency_s=latency,
            model=self.name,
            finish_reason="stop" if hit else gen.finish_reason,
            raw=[gen.text],
        )

    @abstractmethod
    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        """One generation; a backend with ``native_schema`` must constrain output to ``schema``."""

    @abstractmethod
    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        """Yield text deltas; fill ``usage`` with token counts before returning."""

    def close(self) -> None:
        """Release resources (model weights, connections); later calls raise a clear error."""
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"{self.name} has been closed; load it again (load_chat_model does so)")


def _with_system_note(messages: list[Message], note: str) -> list[Message]:
    """Append ``note`` to the system message (adding one if there is none)."""
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"].rstrip() + "\n\n" + note}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]
