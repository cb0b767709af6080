"""The one API every classic recommender implements (on :class:`recai.rec.estimator.Estimator`).

Hyperparameters go to ``__init__``; ``fit(interactions)`` learns attributes that end with ``_`` and
returns self; ``score`` and ``recommend`` work for any history of item positions (catalog row
indices), so a brand-new user needs no retraining; ``save`` / ``load`` write a folder atomically with
versioned metadata.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recai.data.interactions import Interactions
from recai.rec.estimator import E, Estimator


class Recommender(Estimator):
    """Base class of the classic recommenders, so every model scores, recommends and saves alike.

    A model implements ``_fit(interactions, valid)`` and ``_score(histories, users)``; ``score`` checks
    the histories and ``recommend`` ranks, excludes and restricts to candidates for all of them.

    Args:
        arguments: the subclass ``__init__``'s ``locals()`` (its hyperparameters).
    """

    name: ClassVar[str] = "recommender"
    family = "recommender"
    fit_call = "fit(interactions)"
    #: the catalog size the model scores, set by ``fit`` and ``load`` (None: not fitted)
    n_items_: int | None = None

    @property
    def fitted(self) -> bool:
        return self.n_items_ is not None

    # ------------------------------------------------------------------ API
    def fit(self: E, interactions: Interactions, *, valid: Interactions | None = None) -> E:
        """Learn from a log; the item space is the log's item vocabulary.

        Iterative models evaluate NDCG@10 on ``valid`` (one held-out event per user, ranked with the
        training log as history) to stop early and keep their best state; others ignore it.
        """
        self.n_items_ = interactions.n_items
        self._fit(interactions, valid)
        return self

    def score(
        self,
        histories: Sequence[Iterable[int]],
        items: Sequence[int] | None = None,
        *,
        users: Sequence[Any] | None = None,
    ) -> np.ndarray:
        """Scores (n_histories, n_items) for every catalog item, or for ``items`` only.

        ``users`` (aligned with ``histories``) lets models with per-user parameters use them for users
        they were trained on; everyone else, and every model without such parameters, is scored from
        the history alone.
        """
        self._check_fitted()
        arrays = [np.asarray(list(h), dtype=np.int64) for h in histories]
        for h in arrays:
            if len(h) and (h.min() < 0 or h.max() >= self.n_items_):
                raise IndexError(f"history item positions must be in [0, {self.n_items_}), got {h.tolist()}")
        if users is not None and len(users) != len(arrays):
            raise ValueError(f"{len(users)} users for {len(arrays)} histories")
        scores = self._score(arrays, list(users) if users is not None else None)
        if items is not None:
            scores = scores[:, np.asarray(items, dtype=np.int64)]
        return scores

    def recommend(
        self,
        history: Iterable[int],
        k: int = 10,
        *,
        candidates: Sequence[int] | None = None,
        exclude: Iterable[int] | None = None,
        exclude_history: bool = True,
        user: Any | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item positions and their scores for one history.

        Items in the history are excluded unless ``exclude_history`` is False; ``exclude`` removes more;
        ``candidates`` restricts the ranking to a given set. Fewer than k items come back when fewer remain.
        """
        history = np.asarray(list(history), dtype=np.int64)
        scores = self.score([history], users=[user] if user is not None else None)[0].astype(np.float64)
        allowed = np.zeros(len(scores), dtype=bool)
        if candidates is None:
            allowed[:] = True
        else:
            allowed[np.asarray(list(candidates), dtype=np.int64)] = True
        if exclude_history and len(history):
            allowed[history] = False
        if exclude is not None:
            ex = np.asarray(list(exclude), dtype=np.int64)
            if len(ex):
                allowed[ex] = False
        idx = np.flatnonzero(allowed)
        order = np.lexsort((idx, -scores[idx]))[:k]
        return idx[order], scores[idx[order]]

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items most related to ``item`` (a position): cosine of item embeddings for models that have
        them (``item_vectors``), else what the model recommends after a history of just that item."""
        self._check_fitted()
        vectors = getattr(self, "item_vectors", None)
        if vectors is None:
            return self.recommend([item], k)
        v = vectors()
        norms = np.linalg.norm(v, axis=1) + 1e-12
        sims = (v @ v[item]) / (norms * norms[item])
        sims[item] = -np.inf
        order = np.lexsort((np.arange(len(sims)), -sims))[:k]
        return order.astype(np.int64), sims[order]

    # ------------------------------------------------------------- persist
    @classmethod
    def load(cls: type[E], path: str | Path) -> E:
        """A model saved by :meth:`save` (use :meth:`recai.rec.MODELS.saved_class` when the class is
        not known in advance)."""
        return cls._restore(path)

    def _meta(self) -> dict[str, Any]:
        return {"name": self.name, "n_items": self.n_items_}

    def _restore_meta(self, meta: dict[str, Any]) -> None:
        self.n_items_ = int(meta["n_items"])

    # --------------------------------------------------------- subclassing
    @abstractmethod
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None: ...

    @abstractmethod
    def _score(self, histories: list[np.ndarray], users: list[Any] | None) -> np.ndarray: ...
