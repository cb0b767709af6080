"""Item-to-item co-occurrence in the training sequences: "people who watched X often watch Y".

Two items co-occur for a user when they are at most ``window`` steps apart in that user's time-ordered
training sequence (``window=None``: anywhere in it). The raw count is the number of *distinct users*
with such a co-occurrence, so one heavy user cannot make a pair; the normalised score divides by how
many users had each item:

- ``cosine``: ``c / sqrt(n_i * n_j)``;
- ``jaccard``: ``c / (n_i + n_j - c)``;
- ``lift``: ``c * n_users / (n_i * n_j)`` (above 1: more often together than by chance).

Only pairs seen by at least ``min_count`` users are facts. A fact's strength is its score's percentile
among all such pairs of the training data, so it is comparable with the other extractors' strengths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.knowledge.base import Extractor, calibrate, quantiles
from recai.knowledge.facts import Fact, Query
from recai.rec.estimator import check_choice

MEASURES = ("cosine", "jaccard", "lift")


def cooccurrence_counts(train: Interactions, window: int | None) -> sp.csr_matrix:
    """Symmetric (n_items x n_items) counts of distinct users with both items within ``window`` steps
    of each other in their sequence (zero diagonal)."""
    n = train.n_items
    if window is None:
        x = train.to_csr(values="binary").astype(np.float32)
        counts = (x.T @ x).tocsr()
        counts.setdiag(0)
        counts.eliminate_zeros()
        return counts.astype(np.float32)
    if window < 1:
        raise ValueError(f"window must be at least 1 (or None for whole sequences), got {window}")
    codes, users = train.item_codes, train.user_codes
    keys: list[np.ndarray] = []
    for d in range(1, min(window, max(len(codes) - 1, 0)) + 1):
        same = users[:-d] == users[d:]
        a, b = codes[:-d][same], codes[d:][same]
        keep = a != b
        lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        keys.append((users[:-d][same][keep].astype(np.int64) * n + lo) * n + hi)
    if not keys:
        return sp.csr_matrix((n, n), dtype=np.float32)
    unique = np.unique(np.concatenate(keys))  # one (user, pair) counts once
    pair = unique % (n * n)
    lo, hi = pair // n, pair % n
    upper = sp.csr_matrix((np.ones(len(pair), dtype=np.float32), (lo, hi)), shape=(n, n))
    upper.sum_duplicates()
    return (upper + upper.T).tocsr()


def normalise(counts: np.ndarray, n_i: np.ndarray, n_j: np.ndarray, n_users: int, measure: str) -> np.ndarray:
    """The normalised score of pairs with ``counts`` co-occurrences and ``n_i``/``n_j`` users each."""
    counts = np.asarray(counts, dtype=np.float64)
    n_i = np.asarray(n_i, dtype=np.float64)
    n_j = np.asarray(n_j, dtype=np.float64)
    check_choice("measure", measure, MEASURES)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "cosine":
            out = counts / np.sqrt(n_i * n_j)
        elif measure == "jaccard":
            out = counts / (n_i + n_j - counts)
        else:
            out = counts * n_users / (n_i * n_j)
    return np.nan_to_num(out, nan=0.0, posinf=0.0)


class CooccurrenceExtractor(Extractor):
    """Facts linking each candidate to the history items it co-occurs with: the "people who watched X
    also watched Y" evidence, per sample (module docstring).

    Args:
        window: steps apart two items may be in a user's sequence and still co-occur (None: anywhere).
        measure: ``"cosine"``, ``"jaccard"`` or ``"lift"``.
        min_count: users a pair needs before it is a fact.
        max_anchors: facts per candidate, for its highest-scoring history items.
    """

    kind = "cooccurrence"

    def __init__(
        self,
        *,
        window: int | None = 10,
        measure: str = "cosine",
        min_count: int = 2,
        max_anchors: int = 3,
    ) -> None:
        check_choice("measure", measure, MEASURES)
        if min_count < 1 or max_anchors < 1:
            raise ValueError("min_count and max_anchors must be at least 1")
        super().__init__(locals())
        self.counts_: sp.csr_matrix | None = None
        self.item_users_: np.ndarray | None = None
        self.n_users_: int = 0
        self.quantiles_: np.ndarray | None = None

    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        self.counts_ = cooccurrence_counts(train, self.window)
        self.item_users_ = np.asarray(train.to_csr(values="binary").sum(axis=0)).ravel().astype(np.int64)
        self.n_users_ = int(train.n_users)
        coo = sp.triu(self.counts_, k=1).tocoo()
        keep = coo.data >= self.min_count
        scores = self.scores(coo.row[keep], coo.col[keep], coo.data[keep])
        self.quantiles_ = quantiles(scores)

    def scores(self, rows: np.ndarray, cols: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Normalised scores of the pairs (rows[k], cols[k]) seen ``counts[k]`` times."""
        assert self.item_users_ is not None
        return normalise(counts, self.item_users_[rows], self.item_users_[cols], self.n_users_, self.measure)

    def pair(self, a: int, b: int) -> tuple[int, float]:
        """(distinct users, normalised score) of one pair."""
        assert self.counts_ is not None
        count = float(self.counts_[a, b])
        return int(count), float(self.scores(np.array([a]), np.array([b]), np.array([count]))[0])

    def _facts(self, query: Query) -> list[Fact]:
        assert self.counts_ is not None and self.quantiles_ is not None
        history = query.distinct_history()
        if not len(history):
            return []
        candidates = np.asarray(query.candidates, dtype=np.int64)
        block = self.counts_[candidates][:, history].toarray()  # candidates x history
        facts: list[Fact] = []
        for r, candidate in enumerate(candidates):
            cols = np.flatnonzero(block[r] >= self.min_count)
            if not len(cols):
                continue
            counts = block[r, cols]
            scores = self.scores(np.full(len(cols), candidate), history[cols], counts)
            order = np.lexsort((cols, -scores))[: self.max_anchors]  # ties: the more recent history item
            strengths = calibrate(self.quantiles_, scores[order])
            for k, s in zip(order, strengths, strict=True):
                facts.append(
                    Fact(
                        "cooccurrence",
                        "co_occurs",
                        float(s),
                        candidate=int(candidate),
                        anchor=int(history[cols[k]]),
                        values={
                            "count": int(counts[k]),
                            "score": round(float(scores[k]), 4),
                            "measure": self.measure,
                        },
                        topic=("cooccurrence", int(candidate), int(history[cols[k]])),
                    )
                )
        return facts

    def _n_items(self) -> int | None:
        return None if self.counts_ is None else self.counts_.shape[0]

    def _state(self) -> dict[str, np.ndarray]:
        assert self.counts_ is not None and self.item_users_ is not None and self.quantiles_ is not None
        c = self.counts_
        return {
            "data": c.data,
            "indices": c.indices,
            "indptr": c.indptr,
            "shape": np.asarray(c.shape),
            "item_users": self.item_users_,
            "n_users": np.asarray(self.n_users_),
            "quantiles": self.quantiles_,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts_ = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=tuple(int(x) for x in state["shape"])
        )
        self.item_users_ = state["item_users"]
        self.n_users_ = int(state["n_users"])
        self.quantiles_ = state["quantiles"]
