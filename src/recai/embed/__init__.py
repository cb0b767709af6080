"""Text embedders, an embedding cache, and vector search over catalog items.

:mod:`recai.embed.catalog_index` answers ``Catalog.index`` (recai.data sits below embed and cannot
import it): importing it registers :func:`recai.embed.catalog_index.item_index`, and ``Catalog.index``
imports it on first use. The names below are imported on first access, so that ``recai --help`` does
not import the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".encoder": ["Encoder", "load_encoder"],
        ".index": ["VectorIndex"],
    },
)

__all__ = ["Encoder", "VectorIndex", "load_encoder"]

if TYPE_CHECKING:
    from recai.embed.encoder import Encoder, load_encoder
    from recai.embed.index import VectorIndex
