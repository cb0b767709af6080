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
from recai.evaluate.metrics import MetricSummary, coverage, popularity_bias, ranking_metrics, summarize
from recai.rec.validation import quick_ndcg, rank_users  # defined with the models (rec stops early on them)

if TYPE_CHECKING:
    from recai.rec.base import Recommender

__all__ = ["evaluate_recommender", "quick_ndcg", "rank_users"]


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
