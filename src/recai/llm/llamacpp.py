"""In-process GGUF inference with llama-cpp-python.

- The chat template comes from the GGUF's own metadata (llama-cpp-python's Jinja formatter), never a
  hard-coded format.
- JSON schemas are enforced by a grammar compiled from the schema (``response_format`` with a
  ``schema``); the grammar lets raw newlines into strings, which the parser accepts.
- Consecutive calls reuse the KV cache for the longest common token prefix (llama.cpp does this when
  the new prompt extends the previous one), so a multi-turn chat does not re-read its history; with
  ``prompt_cache_mb`` KV states are also kept in RAM by prompt prefix, so prompts that alternate (an
  agent's planner and responder) each find their own prefix again.
- One model instance is not thread-safe: calls are serialised with a lock.
- ``n_batch`` is 64: on a 2-core AVX2 CPU it read prompts faster than 256 (53 against 46 tokens/s with
  the 1.5B model), and every saved prompt state carries ``n_batch`` rows of logits (152k floats each for
  Qwen2.5), so states are 4x smaller to save and restore.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recai.llm.base import ChatModel, Decoding, Generation, Message


class LlamaCppChatModel(ChatModel):
    """A GGUF model loaded once in this process: the default local backend, no server needed.

    Args:
        model_path: The GGUF file.
        name: The name in usage reports (default: the file's stem).
        n_ctx: Context length in tokens.
        n_threads: CPU threads (default: every core).
        n_batch: Prompt tokens read per step (64: see the module).
        seed: llama.cpp's default sampling seed (a call's own seed wins).
        verbose: Let llama.cpp print its logs.
        prompt_cache_mb: RAM for KV states kept by prompt prefix; 0 keeps none.
    """

    native_schema = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 64,
        seed: int = 0,
        verbose: bool = False,
        prompt_cache_mb: int = 2048,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ImportError(
                "the llamacpp backend needs llama-cpp-python: pip install 'recai[local]'"
            ) from exc
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.model_path}")
        self.name = name or self.model_path.stem
        self._lock = threading.Lock()
        self._llm = Llama(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_threads=n_threads or max(1, (os.cpu_count() or 2)),
            n_batch=n_batch,
            seed=seed,
            verbose=verbose,
        )
        self.n_ctx = n_ctx
        if prompt_cache_mb > 0:
            # Saved KV states keyed by prompt prefix: an agent alternating planner and responder prompts
            # gets each fixed system prompt back from memory instead of re-reading it every turn.
            self._llm.set_cache(_sized_ram_cache(prompt_cache_mb * 2**20))

    def _generate(
        self, messages: list[Message], *, schema: dict[str, Any] | None, decoding: Decoding
    ) -> Generation:
        kwargs = decoding.request_fields()
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with self._lock:
            out = self._llm.create_chat_completion(messages=messages, **kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    def _stream(self, messages: list[Message], *, decoding: Decoding, usage: dict[str, int]) -> Iterator[str]:
        kwargs = decoding.request_fields()
        with self._lock:
            chunks = 0
            try:
                for chunk in self._llm.create_chat_completion(messages=messages, stream=True, **kwargs):
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if delta:
                        chunks += 1
                        yield delta
            finally:  # also when the consumer stops early (a stop sequence found by the caller)
                usage["completion_tokens"] = chunks
                usage["prompt_tokens"] = max(int(self._llm.n_tokens) - chunks, 0)

    def close(self) -> None:
        """Free the weights now; llama-cpp-python's own finaliser fails if it runs at interpreter exit."""
        llm = getattr(self, "_llm", None)
        if llm is not None:
            with self._lock:
                llm.close()
                self._llm = None
        super().close()


def _sized_ram_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's RAM prompt cache, with every byte of a saved state counted.

    Its own ``cache_size`` counts only the llama.cpp state, not the logits copy each saved state also
    holds (``n_tokens x n_vocab`` floats: 365 MB for a 600-token prompt with Qwen2.5's 151,936-token
    vocabulary), so a "1 GB" cache grew without bound over a long evaluation (10 GB after a few hundred
    prompts). Counted properly, 2 GB holds an agent's planner and responder prefixes.
    """
    from llama_cpp import LlamaRAMCache

    class SizedRAMCache(LlamaRAMCache):
        """LlamaRAMCache with its size counted in full (see above)."""

        @property
        def cache_size(self) -> int:
            return sum(
                int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)
                for state in self.cache_state.values()
            )

    return SizedRAMCache(capacity_bytes=capacity_bytes)
