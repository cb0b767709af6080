"""Full-ranking evaluation of any Recommender under the shared protocol.

Protocol: every user with a target event is ranked over the whole catalog; the items of the user's
input history are excluded from the ranking (for every model alike); metrics are computed on the
top-k with a bootstrap interval. For the test phase of a leave-one-out split the input history is
train + validation (the model itself was trained on train only, as in RecBole).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recai.data.interactions import Interactions
from recai.evaluate.metrics import MetricSummary, coverage, popularity_bias, ranking_metrics, summarize, top_k

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


def evaluate_recommender(
    model: Recommender,
    history: Interactions,
    targets: Interactions,
    *,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = ("hit", "ndcg", "mrr", "recall"),
    item_counts: np.ndarray | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    candidates: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics (mean and 95% bootstrap interval) plus coverage and popularity bias of the top-max(k)."""
    rankings, target_items, users = rank_users(model, history, targets, k=max(ks), candidates=candidates)
    per_user = ranking_metrics(rankings, target_items, ks=ks, metrics=metrics)
    summary: dict[str, MetricSummary] = summarize(per_user, n_resamples=bootstrap, seed=seed)
    out: dict[str, Any] = {name: s.as_dict() for name, s in summary.items()}
    out["users"] = len(users)
    out["coverage"] = coverage(rankings, history.n_items if candidates is None else len(candidates))
    if item_counts is not None:
        out["popularity_bias"] = popularity_bias(rankings, item_counts)
    return out


def quick_ndcg(model: Recommender, history: Interactions, targets: Interactions, k: int = 10) -> float:
    """Mean NDCG@k without intervals: the validation signal for early stopping.

    Items that appear neither in the history log nor among the targets are left out of the ranking:
    a model has learnt nothing about them, and in a filtered dataset they do not exist.
    """
    known = (history.item_counts() > 0) | (targets.item_counts() > 0)
    rankings, target_items, _ = rank_users(model, history, targets, k=k, candidates=np.flatnonzero(known))
    return float(ranking_metrics(rankings, target_items, ks=(k,), metrics=("ndcg",))[f"ndcg@{k}"].mean())
