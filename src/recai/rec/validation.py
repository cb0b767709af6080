"""Ranking every target user over the catalog, and the NDCG a model stops early on.

The ranking is the one :mod:`recai.evaluate.recommender` scores (re-exported there); it lives with the
models because SASRec, BPR and ALS call :func:`quick_ndcg` on the validation split while they train.
Only the pure ranking metrics of :mod:`recai.evaluate.metrics` (the bottom layer) are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recai.data.interactions import Interactions
from recai.evaluate.metrics import ranking_metrics, top_k

if TYPE_CHECKING:
    from recai.rec.base import Recommender


def rank_users(
    model: Recommender,
    history: Interactions,
    targets: Interactions,
    *,
    k: int = 20,
    batch_size: int = 512,
    exclude_history: bool = True,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Top-k item positions per target user, their target items, and the user ids (target order).

    ``candidates`` limits the ranking to those item positions (for example the items that survive a
    k-core filter, which is the item set RecBole ranks over); by default every catalog item competes.
    """
    users = list(targets.user_ids)
    target_items = np.array([targets.sequence(u)[-1] for u in users], dtype=np.int64)
    histories = []
    for u in users:
        try:
            histories.append(history.sequence(u))
        except KeyError:
            histories.append(np.empty(0, dtype=np.int64))
    rankings = np.full((len(users), min(k, history.n_items)), -1, dtype=np.int64)
    for start in range(0, len(users), batch_size):
        batch = histories[start : start + batch_size]
        scores = model.score(batch, users=users[start : start + batch_size])
        if candidates is not None:
            blocked = np.ones(scores.shape[1], dtype=bool)
            blocked[candidates] = False
            scores[:, blocked] = -np.inf
        rankings[start : start + len(batch)] = top_k(scores, k, exclude=batch if exclude_history else None)
    return rankings, target_items, users


def quick_ndcg(model: Recommender, history: Interactions, targets: Interactions, k: int = 10) -> float:
    """Mean NDCG@k without intervals: the validation signal for early stopping.

    Items that appear neither in the history log nor among the targets are left out of the ranking:
    a model has learnt nothing about them, and in a filtered dataset they do not exist.
    """
    known = (history.item_counts() > 0) | (targets.item_counts() > 0)
    rankings, target_items, _ = rank_users(model, history, targets, k=k, candidates=np.flatnonzero(known))
    return float(ranking_metrics(rankings, target_items, ks=(k,), metrics=("ndcg",))[f"ndcg@{k}"].mean())
