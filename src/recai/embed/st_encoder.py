"""sentence-transformers encoders: any local model folder (including ones recai fine-tunes) or a known
name resolved to its offline copy (see recai.llm.resolve)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from recai.embed.encoder import Encoder


class SentenceTransformerEncoder(Encoder):
    """A local sentence-transformers model, the default encoder and the one recai fine-tunes.

    Its ``identity`` includes a stamp of the weight files, so vectors cached for a model are not reused
    after it is fine-tuned in place.

    Args:
        model: A model folder, or a known name resolved to its offline copy.
        device: Where the model runs (``"cpu"``, ``"cuda"``).
        query_prefix: Prepended to every query text.
        item_prefix: Prepended to every item text.
        batch_size: Texts per forward pass.
        max_seq_length: Truncate inputs to this many tokens; ``None`` keeps the model's own limit.
    """

    def __init__(
        self,
        model: str | Path = "all-minilm-l6-v2",
        *,
        device: str = "cpu",
        query_prefix: str = "",
        item_prefix: str = "",
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ) -> None:
        super().__init__(query_prefix=query_prefix, item_prefix=item_prefix, batch_size=batch_size)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError("this encoder needs sentence-transformers: pip install 'recai[embed]'") from exc
        from recai.llm.resolve import resolve_model

        path = resolve_model(str(model))
        self.path = path
        self._model = SentenceTransformer(str(path), device=device)
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
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

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
