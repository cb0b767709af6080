"""Build (and cache) the vector index of a catalog's items for an encoder.

Importing this module (``import recai.embed`` does) makes :meth:`recai.data.catalog.Catalog.index` answer
through :func:`item_index`: data sits below embed, so embed registers itself rather than being imported.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from recai.data.catalog import Catalog, set_index_provider
from recai.data.home import data_home
from recai.embed.cache import EmbeddingCache
from recai.embed.encoder import Encoder, load_encoder
from recai.embed.index import VectorIndex


def build_item_index(
    catalog: Catalog,
    encoder: Encoder,
    *,
    columns: Sequence[str] | None = None,
    max_chars: int = 512,
    cache: EmbeddingCache | None = None,
    save_to: str | Path | None = None,
    progress: bool = True,
    chunk: int = 2048,
) -> VectorIndex:
    """Encode every item's rendered text (reusing cached vectors) into a VectorIndex keyed by item id.

    The index is saved under ``$RECAI_HOME/indexes/<catalog fingerprint>-<encoder>`` by default, and a
    later call with the same catalog text and encoder loads it instead of rebuilding.
    """
    texts = catalog.texts(columns=columns, max_chars=max_chars)
    ids = list(catalog.ids)
    # What the index depends on: every id with its text, and how the encoder reads item texts.
    material = (
        "\n".join(f"{i}\t{t}" for i, t in zip(ids, texts, strict=True)) + "\n" + encoder.cache_key("item")
    )
    fingerprint = hashlib.sha256(material.encode()).hexdigest()[:16]
    enc_tag = hashlib.sha256(encoder.cache_key("item").encode()).hexdigest()[:12]
    target = Path(save_to) if save_to is not None else data_home() / "indexes" / f"{fingerprint}-{enc_tag}"
    if (target / "index.json").exists():
        index = VectorIndex.load(target)
        if (
            index.metadata.get("fingerprint") == fingerprint
            and index.metadata.get("encoder") == encoder.identity
        ):
            return index
    cache = cache or EmbeddingCache()
    index = VectorIndex(
        encoder.dim, metadata={"fingerprint": fingerprint, "encoder": encoder.identity, "items": len(texts)}
    )
    new = 0
    with tqdm(total=len(texts), desc="encoding items", unit="item", disable=not progress) as bar:
        for start in range(0, len(texts), chunk):
            vectors, fresh = cache.encode(encoder, texts[start : start + chunk], kind="item")
            index.add(ids[start : start + chunk], vectors)
            new += fresh
            bar.update(len(vectors))
    index.metadata["newly_encoded"] = new
    index.save(target)
    return index


# the indexes built for each live catalog, keyed by encoder identity and options (dropped with the catalog)
_INDEXES: weakref.WeakKeyDictionary[Catalog, dict[tuple[str, str], VectorIndex]] = weakref.WeakKeyDictionary()


def item_index(catalog: Catalog, encoder: Encoder | str | None = None, **kwargs: object) -> VectorIndex:
    """What ``catalog.index(encoder, **kwargs)`` returns: the item VectorIndex for ``encoder`` (default:
    the default embedder; a string is an encoder spec), built once per catalog and cached on disk; see
    :func:`build_item_index` for the options."""
    if encoder is None or isinstance(encoder, str):
        encoder = load_encoder(encoder)
    key = (encoder.identity, tuple(sorted(kwargs.items(), key=lambda kv: kv[0])).__repr__())
    built = _INDEXES.setdefault(catalog, {})
    cached = built.get(key)
    if cached is None:
        cached = built[key] = build_item_index(catalog, encoder, **kwargs)  # type: ignore[arg-type]
    return cached


set_index_provider(item_index)
