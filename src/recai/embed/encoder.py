"""The Encoder protocol: texts in, L2-normalised float32 vectors out.

``kind`` says whether a text is a query or an item, so that models trained with asymmetric prefixes
("query: ", "passage: ") get them; the cosine similarity of two outputs is their dot product.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np

Kind = Literal["query", "item"]


class Encoder(ABC):
    """Subclasses implement ``_encode`` (raw vectors) and set ``identity`` (model + settings).

    The base class owns what every encoder must do alike: prefixes by kind, batching, shape checks and
    L2 normalisation, so an index or a cache can trust any encoder's vectors.

    Args:
        query_prefix: Prepended to every query text (e.g. ``"query: "`` for E5-style models).
        item_prefix: Prepended to every item text (e.g. ``"passage: "``).
        batch_size: Texts per call to ``_encode`` unless :meth:`encode` is given another.

    Attributes:
        dim: The vectors' dimension, set by the subclass.
        identity: The model and the settings that change its vectors, set by the subclass; caches and
            saved indexes are keyed by it.
    """

    dim: int
    identity: str

    def __init__(self, *, query_prefix: str = "", item_prefix: str = "", batch_size: int = 64) -> None:
        self.query_prefix = query_prefix
        self.item_prefix = item_prefix
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str], kind: Kind = "query", batch_size: int | None = None) -> np.ndarray:
        """(len(texts), dim) float32 rows of unit length (a zero vector stays zero)."""
        if kind not in ("query", "item"):
            raise ValueError(f"kind must be 'query' or 'item', got {kind!r}")
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.query_prefix if kind == "query" else self.item_prefix
        raw = self._encode([prefix + t for t in texts], batch_size or self.batch_size)
        vectors = np.asarray(raw, dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise RuntimeError(
                f"{self.identity} returned shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    @abstractmethod
    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...

    def cache_key(self, kind: Kind) -> str:
        """What the embedding cache keys vectors by (model identity and the prefix in use)."""
        prefix = self.query_prefix if kind == "query" else self.item_prefix
        return f"{self.identity}|{kind}|{prefix}"


def load_encoder(spec: str | None = None, **kwargs: object) -> Encoder:
    """``st:NAME_OR_PATH`` (sentence-transformers; the default ``st:all-minilm-l6-v2``),
    ``openai:MODEL`` or ``openai:http://host/v1#MODEL``; a bare name means sentence-transformers.
    ``RECAI_EMBEDDER`` sets the default."""
    import os

    from recai.llm.resolve import DEFAULT_EMBEDDER

    spec = spec or os.environ.get("RECAI_EMBEDDER") or f"st:{DEFAULT_EMBEDDER}"
    backend, sep, rest = spec.partition(":")
    if sep and backend == "openai":
        from recai.embed.openai_encoder import OpenAIEncoder

        base_url: str | None = None
        model = rest
        if rest.startswith(("http://", "https://")):
            base_url, _, model = rest.partition("#")
            if not model:
                raise ValueError(f"'{spec}': name the embedding model after '#'")
        return OpenAIEncoder(model, base_url=base_url, **kwargs)  # type: ignore[arg-type]
    from recai.embed.st_encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(rest if sep and backend == "st" else spec, **kwargs)  # type: ignore[arg-type]
