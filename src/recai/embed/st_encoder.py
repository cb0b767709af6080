"""sentence-transformers encoders: any local model folder (including ones recai fine-tunes), a known
name resolved to its offline copy (see recai.llm.resolve), or a causal LM pooled into an embedder
(see recai.embed.decoder)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from recai.embed.encoder import Encoder

# Where a model folder records its prefixes: sentence-transformers' own prompts
# (config_sentence_transformers.json).
QUERY_PROMPT, ITEM_PROMPT = "query", "document"


def load_sentence_transformer(
    model: str | Path,
    *,
    decoder: bool = False,
    pooling: str | None = None,
    device: str | None = None,
    max_seq_length: int | None = None,
) -> tuple[Any, Path]:
    """The sentence-transformers model (and its folder) that an ``st:`` or ``decoder:`` spec names; the
    one loader of :class:`SentenceTransformerEncoder` and of training, so both start from the same model."""
    from sentence_transformers import SentenceTransformer

    from recai.embed.decoder import decoder_sentence_transformer, pooling_mode, prepare_tokenizer

    if decoder:
        loaded = decoder_sentence_transformer(
            model, pooling=pooling, device=device, max_seq_length=max_seq_length
        )
        return loaded, Path(loaded[0].auto_model.name_or_path)
    from recai.llm.resolve import resolve_model

    path = resolve_model(str(model))
    loaded = SentenceTransformer(str(path), device=device)
    if max_seq_length is not None:
        loaded.max_seq_length = max_seq_length
    if pooling_mode(loaded) == "lasttoken":  # a trained decoder embedder loaded with st:
        prepare_tokenizer(loaded.tokenizer, "lasttoken")
    return loaded, path


def recorded_prefixes(model: Any) -> tuple[str, str]:
    """The (query, item) prefixes a model folder was saved with (recai records them as its prompts)."""
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get(QUERY_PROMPT, ""), prompts.get(ITEM_PROMPT, "")


def record_prefixes(model: Any, query_prefix: str, item_prefix: str) -> None:
    """Store the prefixes in the model, so its saved folder loads with them."""
    prompts = {k: v for k, v in ((QUERY_PROMPT, query_prefix), (ITEM_PROMPT, item_prefix)) if v}
    model.prompts = prompts


class SentenceTransformerEncoder(Encoder):
    """A local sentence-transformers model, the default encoder and the one recai fine-tunes.

    Its ``identity`` includes a stamp of the weight files, so vectors cached for a model are not reused
    after it is fine-tuned in place.

    Args:
        model: A model folder, or a known name resolved to its offline copy.
        device: Where the model runs (``"cpu"``, ``"cuda"``).
        query_prefix: Prepended to every query text; None: the prefix the model folder records, else none.
        item_prefix: Prepended to every item text; None as for ``query_prefix``.
        batch_size: Texts per forward pass.
        max_seq_length: Truncate inputs to this many tokens; ``None`` keeps the model's own limit.
        decoder: ``model`` is a causal LM to pool into an embedder (see :mod:`recai.embed.decoder`).
        pooling: decoder only: ``lasttoken`` (the default) or ``mean``.
    """

    def __init__(
        self,
        model: str | Path = "all-minilm-l6-v2",
        *,
        device: str = "cpu",
        query_prefix: str | None = None,
        item_prefix: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
        decoder: bool = False,
        pooling: str | None = None,
    ) -> None:
        try:
            import sentence_transformers  # noqa: F401
        except ImportError as exc:
            raise ImportError("this encoder needs sentence-transformers: pip install 'recai[embed]'") from exc
        if pooling is not None and not decoder:
            raise ValueError("pooling is a decoder encoder's option (decoder:MODEL?pooling=...)")
        self._model, path = load_sentence_transformer(
            model, decoder=decoder, pooling=pooling, device=device, max_seq_length=max_seq_length
        )
        self.path = path
        saved_query, saved_item = recorded_prefixes(self._model)
        super().__init__(
            query_prefix=saved_query if query_prefix is None else query_prefix,
            item_prefix=saved_item if item_prefix is None else item_prefix,
            batch_size=batch_size,
        )
        # sentence-transformers 6 renamed the accessor; older releases only have the long name.
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise ValueError(f"{path} does not report an embedding dimension")
        self.dim = int(dim)
        # Identity changes when the weights change (fine-tuning rewrites model.safetensors).
        weights = sorted(Path(path).glob("*.safetensors")) or sorted(Path(path).glob("*.bin"))
        stamp = "".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)
        digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
        self.identity = f"st:{Path(path).name}:{digest}:{self._model.max_seq_length}"
        if decoder:
            from recai.embed.decoder import pooling_mode

            self.identity = (
                f"decoder:{Path(path).name}:{digest}:{self._model.max_seq_length}:{pooling_mode(self._model)}"
            )

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
