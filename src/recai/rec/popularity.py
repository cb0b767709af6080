"""Most-popular baseline, optionally time-decayed so recent interest counts more."""

from __future__ import annotations

from typing import Any

import numpy as np

from recai.data.interactions import Interactions
from recai.rec.base import Recommender

DAY = 86_400.0


class Popularity(Recommender):
    """Scores each item by how many distinct users interacted with it: the baseline every model must
    beat, and the only one that needs no history.

    Args:
        half_life_days: when set, an interaction ``d`` days before the newest one in the log weighs
            ``0.5 ** (d / half_life_days)``, which tracks trends instead of all-time hits (needs
            timestamps); None counts every user once.
    """

    name = "popularity"

    def __init__(self, *, half_life_days: float | None = None) -> None:
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        super().__init__(locals())
        self.item_scores_: np.ndarray | None = None

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        first = ~interactions.frame.duplicated(["user_id", "item_id"], keep="last").to_numpy()
        items = interactions.item_codes[first]
        weights = np.ones(len(items))
        if self.half_life_days is not None and len(items):
            if not interactions.has_timestamps:
                raise ValueError("half_life_days needs timestamps, and this log has none")
            ts = interactions.timestamps[first].astype(np.float64)
            age_days = (ts.max() - ts) / DAY
            weights = 0.5 ** (age_days / self.half_life_days)
        self.item_scores_ = np.bincount(items, weights=weights, minlength=interactions.n_items).astype(
            np.float64
        )

    def _score(self, histories: list[np.ndarray], users: list[Any] | None) -> np.ndarray:
        return np.tile(self.item_scores_, (len(histories), 1))

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_scores_ = state["item_scores"]
