"""Text embedders, an embedding cache, and vector search over catalog items.

Importing this package registers :func:`recai.embed.catalog_index.item_index` as the answer to
``Catalog.index`` (recai.data sits below embed and cannot import it).
"""

from recai.embed import catalog_index as catalog_index
from recai.embed.encoder import Encoder, load_encoder
from recai.embed.index import VectorIndex

__all__ = ["Encoder", "VectorIndex", "load_encoder"]
