"""In-context examples from similar users (DOKE's collaborative demonstrations).

Before the model ranks, it is shown what users with overlapping taste did: each example is a similar
user's recent items and the item they chose next. That is collaborative knowledge in the form an LLM
reads best, a worked example, rather than a statistic.

Similarity is the cosine of binary item sets. The examples come from the training log only: a user's
"next" item is the last one of their training sequence, and the user being ranked is never their own
example. On a log without timestamps "next" is the last item in file order, which the prompt does not
call "next" (:attr:`SimilarUsers.timed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recai.data.interactions import Interactions


@dataclass(frozen=True)
class UserExample:
    """One similar user's demonstration.

    Attributes:
        user: the similar user's id.
        history: item positions they interacted with before ``chosen`` (oldest first, most recent kept).
        chosen: the item position they chose after ``history``.
        similarity: cosine similarity of their item set to the ranked user's history.
    """

    user: Any
    history: tuple[int, ...]
    chosen: int
    similarity: float


class SimilarUsers:
    """Finds the training users most like a history and turns them into examples.

    Args:
        train: the training interactions (never the held-out events).
        history_items: how many of an example user's items precede their choice in the prompt.
        min_items: users with fewer training items are never examples (nothing to show before a choice).
    """

    def __init__(self, train: Interactions, *, history_items: int = 5, min_items: int = 3) -> None:
        self.train = train
        self.history_items = history_items
        self.timed = train.has_timestamps
        matrix = train.to_csr(values="binary").astype(np.float32)
        lengths = np.asarray(matrix.sum(axis=1)).ravel()
        self._norms = np.sqrt(np.maximum(lengths, 1.0))
        self._matrix_t = matrix.T.tocsr()  # item x user: a history's overlaps are a sum of item rows
        self._eligible = lengths >= min_items
        self._indptr, self._codes = train.sequence_arrays()

    def examples(self, history: Sequence[int], n: int, *, exclude_user: Any = None) -> list[UserExample]:
        """The ``n`` most similar eligible users' examples, most similar first (ties by user order)."""
        items = np.unique(np.asarray(list(history), dtype=np.int64))
        if n <= 0 or items.size == 0:
            return []
        overlap = np.asarray(self._matrix_t[items].sum(axis=0)).ravel()
        scores = overlap / (self._norms * np.sqrt(items.size))
        scores[~self._eligible] = -1.0
        if exclude_user is not None:
            with contextlib.suppress(KeyError):  # a user unknown to training has no row to skip
                scores[self.train.user_index(exclude_user)] = -1.0
        order = np.lexsort((np.arange(scores.size), -scores))
        out = []
        for u in order:
            if scores[u] <= 0 or len(out) == n:
                break
            sequence = self._codes[self._indptr[u] : self._indptr[u + 1]]
            before = sequence[:-1][-self.history_items :]
            out.append(
                UserExample(
                    user=self.train.user_ids[u],
                    history=tuple(int(p) for p in before),
                    chosen=int(sequence[-1]),
                    similarity=float(scores[u]),
                )
            )
        return out
