"""How popular each item is, from the log: what "most popular", "most listened to" and "trending" mean.

Every dataset with a log gets these as columns of the catalog's SQL view (``popularity``: distinct users
who interacted; ``trending``: the same count with each user's latest event weighted by its age, half
of it gone every ``half_life_days``, on logs with timestamps), so an LLM planner can ask for them on
any catalog, not only on one that ships a popularity column.
"""

from __future__ import annotations

import numpy as np

from recai.data.interactions import Interactions

DAY_S = 86_400.0
#: The age at which an interaction counts half in ``trending``.
TRENDING_HALF_LIFE_DAYS = 90.0


def user_counts(interactions: Interactions) -> np.ndarray:
    """Distinct users per item code (zeros for items nobody touched)."""
    frame = interactions.frame
    if len(frame) == 0:
        return np.zeros(interactions.n_items, dtype=np.int64)
    first = ~frame.duplicated(["user_id", "item_id"]).to_numpy()
    return np.bincount(interactions.item_codes[first], minlength=interactions.n_items).astype(np.int64)


def trending_counts(
    interactions: Interactions, *, half_life_days: float = TRENDING_HALF_LIFE_DAYS
) -> np.ndarray | None:
    """Distinct users per item, each weighted by ``0.5 ** (age / half_life)`` of their latest event on it,
    where age is measured back from the newest event in the log; None for a log without timestamps."""
    if not interactions.has_timestamps:
        return None
    frame = interactions.frame
    if len(frame) == 0:
        return np.zeros(interactions.n_items, dtype=np.float64)
    last = ~frame.duplicated(["user_id", "item_id"], keep="last").to_numpy()
    ts = interactions.timestamps[last].astype(np.float64)
    weights = 0.5 ** ((ts.max() - ts) / (half_life_days * DAY_S))
    return np.bincount(interactions.item_codes[last], weights=weights, minlength=interactions.n_items)
