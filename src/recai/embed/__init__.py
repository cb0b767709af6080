"""Text embedders, an embedding cache, and vector search over catalog items."""

from recai.embed.encoder import Encoder, load_encoder
from recai.embed.index import VectorIndex

__all__ = ["Encoder", "VectorIndex", "load_encoder"]
