"""Deterministic stand-ins for learned parts (no model weights in unit tests); no pytest needed."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from recai.embed.encoder import Encoder


class BagOfWordsEncoder(Encoder):
    """Hashed bag of words: texts sharing words are similar, which is all retrieval tests need.

    Args:
        dim: The vectors' dimension (words are hashed into this many buckets).
    """

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim, self.identity = dim, f"bag-of-words-{dim}"

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if len(word) > 2:
                    out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out
