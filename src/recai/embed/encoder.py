"""The Encoder protocol: texts in, L2-normalised float32 vectors out, and the encoder specs that name one.

``kind`` says whether a text is a query or an item, so that models trained with asymmetric prefixes
("query: ", "passage: ") get them; the cosine similarity of two outputs is their dot product.

A spec is ``BACKEND:MODEL?OPTIONS``: ``st:`` (sentence-transformers, the default backend), ``decoder:``
(a causal LM pooled into an embedder, see :mod:`recai.embed.decoder`) or ``openai:``; the options are
URL-style (``?prefixes=e5``, ``?query=query: &item=passage: ``, ``?pooling=mean``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

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
        identity: The model and the settings that change its vectors, set by the subclass; the prefixes
            in use are appended when there are any. Caches and saved indexes are keyed by it, so vectors
            made with other prefixes are never reused.
    """

    dim: int
    _model_identity: str

    @property
    def identity(self) -> str:
        if not (self.query_prefix or self.item_prefix):
            return self._model_identity
        return f"{self._model_identity}|prefixes={self.query_prefix!r},{self.item_prefix!r}"

    @identity.setter
    def identity(self, value: str) -> None:
        self._model_identity = value

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


PREFIX_PRESETS: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge": ("Represent this sentence for searching relevant passages: ", ""),
}
SPEC_OPTIONS: dict[str, tuple[str, ...]] = {
    "st": ("query", "item", "prefixes"),
    "decoder": ("query", "item", "prefixes", "pooling"),
    "openai": ("query", "item", "prefixes"),
}
DECODER_POOLINGS = ("lasttoken", "mean")


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec: which backend loads which model, with which prefixes and pooling.

    Training reads the same spec as :func:`load_encoder`, so a fine-tuned model starts from exactly the
    encoder that its base spec names.

    Attributes:
        backend: ``st``, ``decoder`` or ``openai``.
        model: A model name, folder, or (openai) model name or ``URL#MODEL``.
        query_prefix: Prepended to queries; None: not set by the spec (a model folder's own, else none).
        item_prefix: Prepended to items; None as for ``query_prefix``.
        pooling: decoder only: ``lasttoken`` or ``mean``; None: not set by the spec.
    """

    backend: Literal["st", "decoder", "openai"]
    model: str
    query_prefix: str | None = None
    item_prefix: str | None = None
    pooling: str | None = None

    def prefix_kwargs(self) -> dict[str, str]:
        """The prefixes the spec sets, as encoder keyword arguments."""
        given = {"query_prefix": self.query_prefix, "item_prefix": self.item_prefix}
        return {k: v for k, v in given.items() if v is not None}


def parse_encoder_spec(spec: str) -> EncoderSpec:
    """``BACKEND:MODEL?key=value&...``; a spec without a known backend is a sentence-transformers model.

    Options (URL-encoded; ``+`` is a space): ``query`` and ``item`` (the prefixes), ``prefixes`` (a preset:
    ``e5`` or ``bge``; not together with ``query``/``item``) and, for ``decoder:``, ``pooling``
    (``lasttoken``, the default, or ``mean``).
    """
    head, _, options = spec.partition("?")
    backend, sep, model = head.partition(":")
    if not (sep and backend in SPEC_OPTIONS):
        backend, model = "st", head
    if not model.strip():
        raise ValueError(
            f"encoder spec {spec!r}: no model named (expected BACKEND:MODEL, e.g. st:all-minilm-l6-v2)"
        )
    pairs = parse_qsl(options, keep_blank_values=True, strict_parsing=bool(options))  # type: ignore[arg-type]
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in SPEC_OPTIONS[backend]:
            allowed = ", ".join(SPEC_OPTIONS[backend])
            raise ValueError(
                f"encoder spec {spec!r}: unknown option {key!r} for {backend}: (allowed: {allowed})"
            )
        if key in values:
            raise ValueError(f"encoder spec {spec!r}: option {key!r} given twice")
        values[key] = value
    query, item = values.get("query"), values.get("item")
    if "prefixes" in values:
        if query is not None or item is not None:
            raise ValueError(f"encoder spec {spec!r}: give either prefixes= or query=/item=, not both")
        if values["prefixes"] not in PREFIX_PRESETS:
            presets = ", ".join(PREFIX_PRESETS)
            raise ValueError(
                f"encoder spec {spec!r}: unknown prefixes preset {values['prefixes']!r} ({presets})"
            )
        query, item = PREFIX_PRESETS[values["prefixes"]]
    pooling = values.get("pooling")
    if pooling is not None and pooling not in DECODER_POOLINGS:
        raise ValueError(
            f"encoder spec {spec!r}: pooling must be one of {', '.join(DECODER_POOLINGS)}, got {pooling!r}"
        )
    return EncoderSpec(backend, model, query, item, pooling)  # type: ignore[arg-type]


def load_encoder(spec: str | None = None, **kwargs: object) -> Encoder:
    """The encoder a spec names (see :func:`parse_encoder_spec`): ``st:NAME_OR_PATH`` (sentence-transformers;
    the default ``st:all-minilm-l6-v2``), ``decoder:NAME_OR_PATH`` (a causal LM, last-token pooled unless
    ``?pooling=mean``), ``openai:MODEL`` or ``openai:http://host/v1#MODEL``; a bare name means
    sentence-transformers. ``RECAI_EMBEDDER`` sets the default. ``kwargs`` go to the encoder and win over
    the spec's prefixes."""
    import os

    from recai.llm.resolve import DEFAULT_EMBEDDER

    parsed = parse_encoder_spec(spec or os.environ.get("RECAI_EMBEDDER") or f"st:{DEFAULT_EMBEDDER}")
    kwargs = {**parsed.prefix_kwargs(), **kwargs}
    if parsed.backend == "openai":
        from recai.embed.openai_encoder import OpenAIEncoder

        base_url: str | None = None
        model = parsed.model
        if model.startswith(("http://", "https://")):
            base_url, _, model = model.partition("#")
            if not model:
                raise ValueError(f"'{spec}': name the embedding model after '#'")
        return OpenAIEncoder(model, base_url=base_url, **kwargs)  # type: ignore[arg-type]
    from recai.embed.st_encoder import SentenceTransformerEncoder

    if parsed.backend == "decoder":
        kwargs.setdefault("decoder", True)
        kwargs.setdefault("pooling", parsed.pooling)
    return SentenceTransformerEncoder(parsed.model, **kwargs)  # type: ignore[arg-type]
