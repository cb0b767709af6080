"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

import os

import numpy as np

from recai.embed.encoder import Encoder


class OpenAIEncoder(Encoder):
    """An encoder served over HTTP, so hosted models and local servers index a catalog like a local one.

    Args:
        model: The embedding model's name on the server.
        base_url: The server's ``/v1`` URL; defaults to ``OPENAI_BASE_URL``, else OpenAI.
        api_key: Defaults to ``OPENAI_API_KEY`` (a placeholder for a local server that needs none).
        dim: The vectors' dimension; ``None`` asks the server once with a probe text.
        timeout: Seconds per request.
        max_retries: Retries of a failed request (by the OpenAI client).
        query_prefix: Prepended to every query text.
        item_prefix: Prepended to every item text.
        batch_size: Texts per request.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        query_prefix: str = "",
        item_prefix: str = "",
        batch_size: int = 256,
    ) -> None:
        super().__init__(query_prefix=query_prefix, item_prefix=item_prefix, batch_size=batch_size)
        import openai

        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        key = api_key or os.environ.get("OPENAI_API_KEY") or ("not-needed" if base_url else None)
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.identity = f"openai:{base_url or 'api.openai.com'}#{model}"
        self.dim = dim if dim is not None else int(self._encode(["dimension probe"], 1).shape[1])

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            response = self._client.embeddings.create(
                model=self.model, input=texts[start : start + batch_size]
            )
            rows.extend(d.embedding for d in sorted(response.data, key=lambda d: d.index))
        return np.asarray(rows, dtype=np.float32)
