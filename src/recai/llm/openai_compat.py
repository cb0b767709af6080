"""Any OpenAI-compatible chat server through the official ``openai`` client.

Works with OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp's server and others. Configuration comes from
arguments or the usual environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``; for Azure
``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``, ``OPENAI_API_VERSION``). 429, 5xx and connection
errors are retried by :mod:`recai.llm.retry` (``max_retries`` times, honouring ``Retry-After``; the
openai client's own retries are off so the two do not multiply). A server batches the requests it has
in flight, so batch jobs keep ``default_concurrency`` (8) of them open. JSON schemas are sent as
``response_format={"type": "json_schema", ...}``; a server that rejects that is remembered and then
served by validated retry instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from recai.llm.base import ChatModel, Decoding, Generation, Message
from recai.llm.retry import RetryPolicy


class OpenAIChatModel(ChatModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint (hosted or local server).

    Args:
        model: The model name the server knows.
        base_url: The server's URL (default: ``OPENAI_BASE_URL``, else OpenAI; an
            ``.openai.azure.com`` URL or ``AZURE_OPENAI_ENDPOINT`` selects Azure).
        api_key: The key (default: ``OPENAI_API_KEY`` or ``AZURE_OPENAI_API_KEY``; local servers need none).
        timeout: Seconds one request may take.
        max_retries: Retries of refused requests (429, 5xx, dropped connections).
        azure_api_version: Azure's API version (default: ``OPENAI_API_VERSION``, else 2024-10-21).
        name: The name in usage reports (default: ``model``).
        json_schema_support: Send schemas as ``response_format``; False serves them by validated retry.
    """

    default_concurrency = 8

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        azure_api_version: str | None = None,
        name: str | None = None,
        json_schema_support: bool = True,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ImportError("the openai backend needs the openai package: pip install openai") from exc
        self.model = model
        self.name = name or model
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        azure_endpoint = os.environ.get("AZURE_OPENAI_ENDPOINT") if base_url is None else None
        if azure_endpoint or (base_url and ".openai.azure.com" in base_url):
            self._client: Any = openai.AzureOpenAI(
                azure_endpoint=azure_endpoint or base_url,
                api_key=api_key or os.environ.get("AZURE_OPENAI_API_KEY"),
                api_version=azure_api_version or os.environ.get("OPENAI_API_VERSION", "2024-10-21"),
                timeout=timeout,
                max_retries=0,
            )
        else:
            # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client insists on one.
            key = api_key or os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
            self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.native_schema = json_schema_support
        self.retry = RetryPolicy(max_retries=max_retries)

    def _request(self, messages: list[Message], decoding: Decoding) -> dict[str, Any]:
        # the API accepts at most four stop sequences
        return {"model": self.model, "messages": messages, **decoding.request_fields(max_stop=4)}

    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        import openai

        kwargs = self._request(messages, decoding)
        if schema is not None and self.native_schema:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "reply")))[:64] or "reply"
            spec: dict[str, Any] = {"name": name, "schema": schema}
            if strict_compatible(schema):
                spec["strict"] = True  # OpenAI only enforces a schema in strict mode
            kwargs["response_format"] = {"type": "json_schema", "json_schema": spec}
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.BadRequestError as exc:
            if "response_format" not in kwargs or "response_format" not in str(exc).lower():
                raise
            self.native_schema = False  # this server cannot do it: fall back to validated retry for good
            kwargs.pop("response_format")
            response = self._client.chat.completions.create(**kwargs)
        choice = response.choices[0]
        usage = response.usage
        return Generation(
            text=choice.message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=choice.finish_reason,
        )

    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        kwargs = self._request(messages, decoding)
        stream = self._client.chat.completions.create(
            stream=True, stream_options={"include_usage": True}, **kwargs
        )
        chunks = 0
        try:
            for event in stream:
                if getattr(event, "usage", None):
                    usage["prompt_tokens"] = int(event.usage.prompt_tokens or 0)
                    usage["completion_tokens"] = int(event.usage.completion_tokens or 0)
                if event.choices:
                    delta = event.choices[0].delta.content
                    if delta:
                        chunks += 1
                        yield delta
        finally:
            stream.close()
            if not usage.get("completion_tokens"):
                usage["completion_tokens"] = chunks

    def close(self) -> None:
        self._client.close()
        super().close()


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object closes its properties
    (``additionalProperties: false``) and requires all of them."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties", {})
            if schema.get("additionalProperties", True) is not False or set(
                schema.get("required", [])
            ) != set(props):
                return False
        return all(strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(strict_compatible(v) for v in schema)
    return True
