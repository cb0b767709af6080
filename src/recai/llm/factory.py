"""Build a ChatModel from one string or a config object.

Specs:
- ``openai:gpt-4o-mini``: OpenAI (or ``OPENAI_BASE_URL``) with that model;
- ``openai:http://host:8000/v1#qwen``: any OpenAI-compatible server, model after ``#``;
- ``local:qwen2.5-1.5b-instruct`` (or ``llamacpp:NAME_OR_PATH``): in-process GGUF via llama.cpp;
- ``hf:/path/to/model`` or ``hf:qwen2.5-0.5b-instruct``: transformers (a GGUF is dequantised on load);
- ``scripted:echo``: a fake that echoes the last user message (demos and smoke tests).
Options follow ``?`` as ``key=value&...`` (``local:qwen2.5-0.5b-instruct?n_ctx=8192``,
``hf:/models/mine?adapter=/models/lora``). ``RECAI_LLM`` sets the default; otherwise the default is
``local:qwen2.5-1.5b-instruct``.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict

from recai.llm.base import ChatModel
from recai.llm.resolve import DEFAULT_CHAT, resolve_model

DEFAULT_SPEC = f"local:{DEFAULT_CHAT}"
BACKENDS = ("openai", "local", "llamacpp", "hf", "scripted")


class ChatModelConfig(BaseModel):
    """A ChatModel described as data, so YAML configs and the CLI name models the same way.

    Attributes:
        backend: One of ``BACKENDS`` (openai, local, llamacpp, hf, scripted).
        model: The model: a name, a path or a known model, depending on the backend.
        base_url: The server of an ``openai`` backend, or None for the default.
        api_key: The key of an ``openai`` backend, or None for the environment's.
        options: Backend keyword arguments (from the spec's ``?key=value`` query).
    """

    model_config = ConfigDict(extra="forbid")

    backend: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    options: dict[str, Any] = {}

    @classmethod
    def parse(cls, spec: str) -> ChatModelConfig:
        backend, sep, rest = spec.partition(":")
        if not sep or backend not in BACKENDS:
            raise ValueError(
                f"model spec '{spec}' must start with one of {', '.join(b + ':' for b in BACKENDS)}"
            )
        rest, _, query = rest.partition("?")
        options: dict[str, Any] = {k: parse_value(v) for k, v in parse_qsl(query, keep_blank_values=True)}
        base_url = None
        model = rest
        if backend == "openai" and rest.startswith(("http://", "https://")):
            base_url, _, model = rest.partition("#")
            if not model:
                raise ValueError(
                    f"'{spec}': name the served model after '#', e.g. openai:{base_url}#my-model"
                )
        if not model:
            raise ValueError(f"'{spec}': the model name is missing")
        return cls(backend=backend, model=model, base_url=base_url, options=options)


def parse_value(value: str) -> Any:
    """'8192' -> 8192, '0.5' -> 0.5, 'false' -> False, anything else stays text (spec and CLI options)."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


_CACHE: dict[str, ChatModel] = {}
_CACHE_LOCK = threading.Lock()


def close_cached_models() -> None:
    """Release every cached model now (also run at interpreter exit, while native libraries still exist)."""
    with _CACHE_LOCK:
        models = list(_CACHE.values())
        _CACHE.clear()
    for model in models:
        model.close()


atexit.register(close_cached_models)


def load_chat_model(spec: str | ChatModelConfig | None = None, *, cache: bool = True) -> ChatModel:
    """A ChatModel for ``spec`` (default: ``$RECAI_LLM`` or the offline 1.5B model).

    Loaded models are cached per spec string so that weights load once per process.
    """
    if spec is None:
        spec = os.environ.get("RECAI_LLM") or DEFAULT_SPEC
    config = ChatModelConfig.parse(spec) if isinstance(spec, str) else spec
    if not cache:
        return _build(config)
    key = config.model_dump_json()
    with _CACHE_LOCK:  # one build per spec: a second caller waits instead of loading the weights twice
        model = _CACHE.get(key)
        if model is None or model.closed:
            model = _CACHE[key] = _build(config)
        return model


def _build(config: ChatModelConfig) -> ChatModel:
    opts = dict(config.options)
    if config.backend == "openai":
        from recai.llm.openai_compat import OpenAIChatModel

        return OpenAIChatModel(config.model, base_url=config.base_url, api_key=config.api_key, **opts)
    if config.backend in ("local", "llamacpp"):
        from recai.llm.llamacpp import LlamaCppChatModel

        return LlamaCppChatModel(resolve_model(config.model), name=config.model, **opts)
    if config.backend == "hf":
        from recai.llm.hf import HFChatModel

        return HFChatModel(resolve_model(config.model), name=config.model, **opts)
    if config.backend == "scripted":
        from recai.llm.scripted import ScriptedChatModel

        if config.model != "echo":
            raise ValueError(
                "only 'scripted:echo' can be built from a string; build ScriptedChatModel in code"
            )
        return ScriptedChatModel(
            lambda msgs: next(m["content"] for m in reversed(msgs) if m["role"] == "user"),
            name="scripted:echo",
        )
    raise ValueError(f"unknown backend '{config.backend}'")
