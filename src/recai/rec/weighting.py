"""Event weights (listen counts, hours played, purchases) as the values of a user x item matrix.

Weighted implicit feedback is what Hu, Koren & Volinsky's confidence was made for: a user who played
an artist 500 times likes it more surely than one who played it once. Raw counts are heavy-tailed, so
``"log"`` (log(1 + w)) is usually the better choice; ``"binary"`` ignores weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recai.data.interactions import Interactions

WEIGHTINGS = ("binary", "weight", "log")


def weighted_matrix(interactions: Interactions, weighting: str) -> Any:
    """User x item values for ``weighting``: 1 per pair, the summed event weights, or log(1 + weight)."""
    if weighting == "binary":
        return interactions.to_csr(values="binary").astype(np.float32)
    if not interactions.has_weights:
        raise ValueError(
            f"weighting={weighting!r} needs event weights and this log has none (import it with a "
            "`weight:` column)"
        )
    matrix = interactions.to_csr(values="weight").astype(np.float32)
    matrix.data = np.maximum(matrix.data, 0.0)
    if weighting == "log":
        matrix.data = np.log1p(matrix.data)
    matrix.eliminate_zeros()
    return matrix
