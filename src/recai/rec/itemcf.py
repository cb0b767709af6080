"""Item-based collaborative filtering from sparse co-occurrence.

Two items are similar when the same users interacted with both. With binary user x item matrix X,
co-occurrence is C = X^T X; ``similarity='cosine'`` divides by sqrt(n_i * n_j) (+ ``shrink``),
``'asymmetric'`` by n_i^alpha * n_j^(1-alpha) (alpha=0.5 is cosine; larger alpha favours popular
neighbours less), ``'count'`` keeps raw co-occurrence. Each item keeps its ``neighbours`` most similar
items, and a candidate j is scored by summing its similarity to the history items that are among j's
``neighbours`` (the classic item-KNN rule, as in RecBole); recent history items can be up-weighted
with ``recency_decay``. With ``weighting="weight"`` or ``"log"`` X holds the events' weights (listen
counts, hours; log(1 + w) for "log") instead of ones, and the norms in the denominators are the
columns' Euclidean norms, so two items are close when the same users engage with both strongly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recai.data.interactions import Interactions
from recai.rec.base import Recommender
from recai.rec.estimator import check_choice
from recai.rec.weighting import WEIGHTINGS, weighted_matrix

SIMILARITIES = ("cosine", "asymmetric", "count")


class ItemKNN(Recommender):
    """Item-based collaborative filtering: items are close when the same users interacted with both
    (module docstring), the strong, cheap baseline and the agent's "people who liked this" signal.

    Args:
        neighbours: how many most similar items each item keeps.
        similarity: ``"cosine"``, ``"asymmetric"`` (``alpha`` weighs the two items' counts) or
            ``"count"`` (raw co-occurrence).
        shrink: added to the denominator, so pairs seen by few users count less.
        alpha: the asymmetric similarity's exponent (0.5 is cosine; larger favours popular
            neighbours less).
        recency_decay: history item ``t`` steps before the newest weighs ``exp(-recency_decay * t)``
            (0: all alike).
        weighting: ``"binary"``, ``"weight"`` or ``"log"``: what the user x item matrix holds
            (see :mod:`recai.rec.weighting`).
    """

    name = "itemcf"

    def __init__(
        self,
        *,
        neighbours: int = 100,
        similarity: str = "cosine",
        shrink: float = 0.0,
        alpha: float = 0.5,
        recency_decay: float = 0.0,
        weighting: str = "binary",
    ) -> None:
        check_choice("weighting", weighting, WEIGHTINGS)
        check_choice("similarity", similarity, SIMILARITIES)
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        super().__init__(locals())
        self.similarity_: sp.csr_matrix | None = None

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        x = weighted_matrix(interactions, self.weighting)
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        # squared column norms: the item's user count for binary X
        counts = np.asarray(x.multiply(x).sum(axis=0)).ravel()
        co = co.tocoo()
        if self.similarity == "cosine":
            denom = np.sqrt(counts[co.row] * counts[co.col]) + self.shrink
        elif self.similarity == "asymmetric":
            denom = counts[co.row] ** self.alpha * counts[co.col] ** (1 - self.alpha) + self.shrink
        else:
            denom = np.ones_like(co.data)
        sim = sp.csr_matrix((co.data / np.maximum(denom, 1e-12), (co.row, co.col)), shape=co.shape)
        # W[i, j] is kept only when i is among j's nearest neighbours: score(h) = h @ W.
        self.similarity_ = _top_per_row(sim, self.neighbours).T.tocsr()

    def _score(self, histories: list[np.ndarray], users: list[Any] | None) -> np.ndarray:
        assert self.similarity_ is not None
        rows, cols, vals = [], [], []
        for r, h in enumerate(histories):
            if not len(h):
                continue
            weights = np.ones(len(h))
            if self.recency_decay > 0:
                weights = np.exp(-self.recency_decay * np.arange(len(h))[::-1])
            rows.extend([r] * len(h))
            cols.extend(h.tolist())
            vals.extend(weights.tolist())
        h_matrix = sp.csr_matrix(
            (vals, (rows, cols)), shape=(len(histories), self.n_items_), dtype=np.float32
        )
        h_matrix.sum_duplicates()
        return np.asarray((h_matrix @ self.similarity_).todense(), dtype=np.float64)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        assert self.similarity_ is not None
        column = self.similarity_.getcol(item).tocoo()  # the item's own nearest neighbours
        order = np.lexsort((column.row, -column.data))[:k]
        return column.row[order].astype(np.int64), column.data[order].astype(np.float64)

    def _state(self) -> dict[str, np.ndarray]:
        assert self.similarity_ is not None
        s = self.similarity_
        return {"data": s.data, "indices": s.indices, "indptr": s.indptr, "shape": np.array(s.shape)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.similarity_ = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=tuple(state["shape"].tolist())
        )


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties: lower column first)."""
    matrix = matrix.tocsr()
    data, indices, indptr = [], [], [0]
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        vals, cols = matrix.data[start:end], matrix.indices[start:end]
        if len(vals) > k:
            keep = np.lexsort((cols, -vals))[:k]
            vals, cols = vals[keep], cols[keep]
        order = np.argsort(cols)
        data.append(vals[order])
        indices.append(cols[order])
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix(
        (np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr),
        shape=matrix.shape,
        dtype=np.float32,
    )
