"""Counting prompt tokens the way the target model does, so a knowledge budget means what it says.

:func:`token_counter` finds the target model's own tokenizer:

- a local GGUF model (``local:NAME`` / ``llamacpp:NAME``, or a loaded ``LlamaCppChatModel``): the
  GGUF's vocabulary, loaded alone by llama.cpp (``vocab_only``: no weights, no inference);
- a transformers model (``hf:...`` or a loaded ``HFChatModel``): its Hugging Face tokenizer;
- an OpenAI model: ``tiktoken``'s encoding for that model, when tiktoken is installed;
- anything else (an unknown OpenAI-compatible server, the scripted test model), or when the tokenizer
  cannot be loaded: the documented fallback, :class:`ApproximateCounter`, which counts one token per
  ``chars_per_token`` characters (default 3, rounded up). English text averages about 4 characters per
  token with modern BPE vocabularies, so the fallback over-counts and a budget it enforces is rarely
  exceeded by the real tokenizer; it can be for scripts with many tokens per character (CJK, emoji).

Counts are of the text alone (no chat-template or special tokens): the budget is for the knowledge
section, and the model's reported ``prompt_tokens`` (in ``usage.json``) include the template.
"""

from __future__ import annotations

import atexit
import math
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any


class TokenCounter(ABC):
    """Counts the tokens of a text; ``exact`` says whether this is the target model's tokenizer.

    Knowledge budgets are in tokens of the model that reads the prompt, so every counter reports whether
    its counts are exact.

    Attributes:
        name: How the counter is described in run configs.
        exact: Whether the counts are the target model's own.
    """

    name: str = "counter"
    exact: bool = False

    @abstractmethod
    def count(self, text: str) -> int:
        """Tokens in ``text`` (no special tokens)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "exact": self.exact}


class ApproximateCounter(TokenCounter):
    """The fallback: ``ceil(len(text) / chars_per_token)`` (see the module docstring).

    Args:
        chars_per_token: Characters assumed per token.
    """

    exact = False

    def __init__(self, chars_per_token: float = 3.0) -> None:
        if chars_per_token <= 0:
            raise ValueError("chars_per_token must be positive")
        self.chars_per_token = chars_per_token
        self.name = f"approx:{chars_per_token:g}-chars-per-token"

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)


class FunctionCounter(TokenCounter):
    """Any ``encode(text) -> sequence of tokens`` as a counter (a tokenizer, tiktoken, a test fake).

    Args:
        encode: Turns a text into its tokens.
        name: How the counter is described in run configs.
        exact: Whether ``encode`` is the target model's own tokenizer.
    """

    def __init__(self, encode: Any, *, name: str, exact: bool = True) -> None:
        self._encode = encode
        self._lock = threading.Lock()  # tokenizers with native state are not always thread-safe
        self.name = name
        self.exact = exact

    def count(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            return len(self._encode(text))


_VOCABS: list[Any] = []


def _close_vocabs() -> None:
    """Free loaded vocabularies while llama.cpp still exists (its own finaliser fails at exit)."""
    while _VOCABS:
        _VOCABS.pop().close()


atexit.register(_close_vocabs)


def llama_vocab_counter(model_path: str | Path) -> TokenCounter:
    """The tokenizer inside a GGUF file, loaded alone (``vocab_only``: no weights, no compute)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    _VOCABS.append(vocab)
    return FunctionCounter(
        lambda text: vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False),
        name=f"gguf:{Path(model_path).name}",
    )


def hf_counter(tokenizer: Any, name: str) -> TokenCounter:
    return FunctionCounter(lambda text: tokenizer.encode(text, add_special_tokens=False), name=f"hf:{name}")


def tiktoken_counter(model: str) -> TokenCounter | None:
    """tiktoken's encoding for an OpenAI model name, or None (tiktoken missing, model unknown)."""
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model(model)
    except (ImportError, KeyError):
        return None
    return FunctionCounter(encoding.encode, name=f"tiktoken:{encoding.name}")


_MEMO: dict[str, TokenCounter] = {}
_MEMO_LOCK = threading.Lock()


def token_counter(target: Any = None, *, fallback: TokenCounter | None = None) -> TokenCounter:
    """The counter for ``target``: a model spec, a ChatModel, a TokenCounter, or None (the fallback).

    Never fails: when the model's tokenizer cannot be found or loaded, the fallback (by default
    :class:`ApproximateCounter`) is returned, and its ``exact`` is False so callers can say so.
    """
    fallback = fallback or ApproximateCounter()
    if target is None:
        return fallback
    if isinstance(target, TokenCounter):
        return target
    if isinstance(target, str):
        with _MEMO_LOCK:
            if target not in _MEMO:
                found = _for_spec(target)
                if found is None:  # not remembered: the model may be installed or pulled later
                    return fallback
                _MEMO[target] = found
            return _MEMO[target]
    return _for_model(target) or fallback


def _for_spec(spec: str) -> TokenCounter | None:
    from recai.llm.factory import ChatModelConfig

    try:
        config = ChatModelConfig.parse(spec)
    except ValueError:
        return None
    try:
        if config.backend in ("local", "llamacpp"):
            from recai.llm.resolve import resolve_model

            return llama_vocab_counter(resolve_model(config.model, progress=False))
        if config.backend == "hf":
            from recai.llm.resolve import resolve_model

            return _hf_from_path(resolve_model(config.model, progress=False), config.model)
        if config.backend == "openai":
            return tiktoken_counter(config.model)
    except (ImportError, OSError, ValueError, RuntimeError):
        return None
    return None


def _for_model(model: Any) -> TokenCounter | None:
    inner = getattr(model, "inner", None)  # a CachedChatModel: the model underneath decides
    if inner is not None:
        return _for_model(inner)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "encode"):
        return hf_counter(tokenizer, str(getattr(model, "name", "model")))
    model_path = getattr(model, "model_path", None)
    if model_path is not None and Path(model_path).suffix == ".gguf":
        try:
            return llama_vocab_counter(model_path)
        except (ImportError, OSError, ValueError, RuntimeError):
            return None
    if type(model).__name__ == "OpenAIChatModel":
        return tiktoken_counter(str(getattr(model, "model", getattr(model, "name", ""))))
    return None


def _hf_from_path(path: Path, name: str) -> TokenCounter:
    from transformers import AutoTokenizer

    if path.is_file() and path.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(path)
    return hf_counter(tokenizer, name)
