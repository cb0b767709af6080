"""User-to-item signals: a trained recommender's opinion of each candidate for this user.

The recommender (any :class:`~recai.rec.base.Recommender`, fitted on the training part of the split)
scores the candidates from the history the LLM is shown (and the user's own trained parameters, for
models that have them). Each candidate gets one fact with its rank among the candidates and, with
``scope="catalog"``, its rank among every item the user has not seen. The strength decays with the
rank (``decay ** rank``), so the recommender's top candidates are the facts worth their tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.knowledge.base import Extractor
from recai.knowledge.facts import Fact, Query
from recai.rec.estimator import check_choice

SCOPES = ("candidates", "catalog")


class RecommenderExtractor(Extractor):
    """One fact per candidate from a fitted recommender (module docstring); ``model`` is its name.

    Args:
        model: The recommender's name (``"sasrec"``, ``"bpr"``...), fitted by the knowledge build.
        scope: ``"candidates"`` states each candidate's rank among the candidates; ``"catalog"`` also
            its rank among every item the user has not seen.
        decay: Strength of a fact is ``decay ** rank``, in (0, 1).
    """

    kind = "recommender"
    needs_model = True

    def __init__(self, *, model: str = "sasrec", scope: str = "candidates", decay: float = 0.8) -> None:
        check_choice("scope", scope, SCOPES)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        super().__init__(locals())
        self.model_: Any = None

    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        if getattr(model, "n_items_", None) != len(catalog):
            raise ValueError(
                f"the recommender must be fitted on this catalog's items ({len(catalog)}), "
                f"it has {getattr(model, 'n_items_', None)}"
            )
        self.model_ = model

    def _facts(self, query: Query) -> list[Fact]:
        history = np.asarray(query.history, dtype=np.int64)
        candidates = np.asarray(query.candidates, dtype=np.int64)
        users = [query.user] if query.user is not None else None
        scores = self.model_.score([history], users=users)[0].astype(np.float64)
        own = scores[candidates]
        order = np.lexsort((np.arange(len(candidates)), -own))  # ties: the order shown
        ranks = np.empty(len(candidates), dtype=np.int64)
        ranks[order] = np.arange(len(candidates))
        catalog_ranks = None
        if self.scope == "catalog":
            allowed = np.ones(len(scores), dtype=bool)
            allowed[history] = False
            pool = scores[allowed]
            # rank among unseen items = how many unseen items score strictly higher, plus one
            sorted_pool = np.sort(pool)
            catalog_ranks = len(sorted_pool) - np.searchsorted(sorted_pool, own, side="right") + 1
            catalog_size = int(allowed.sum())
        facts = []
        for r, candidate in enumerate(candidates):
            values: dict[str, Any] = {
                "rank": int(ranks[r]) + 1,
                "of": len(candidates),
                "model": self.model,
            }
            if catalog_ranks is not None:
                values["catalog_rank"] = int(catalog_ranks[r])
                values["catalog_size"] = catalog_size
            facts.append(
                Fact(
                    "recommender",
                    "recommender_score",
                    float(self.decay ** int(ranks[r])),
                    candidate=int(candidate),
                    values=values,
                )
            )
        return facts

    def _n_items(self) -> int | None:
        return None if self.model_ is None else int(self.model_.n_items_)

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    def _save_extra(self, folder: Path) -> None:
        self.model_.save(folder / "model")

    def _load_extra(self, folder: Path) -> None:
        from recai.rec import MODELS

        self.model_ = MODELS.saved_class(folder / "model").load(folder / "model")
