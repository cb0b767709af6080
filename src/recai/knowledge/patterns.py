"""Global patterns of the training log: item popularity and the most strongly associated item pairs.

Unlike the per-sample co-occurrence facts, these are facts about the whole log, computed once:

- ``popularity`` (one per candidate): how many training users had the item, its rank among the items
  of the training log, and the share of items it beats; the strength is that share times
  ``popularity_weight`` (0.5: candidates are often all popular, when negatives are drawn by
  popularity, and then this fact tells them apart less than the links to the user's history do);
- ``associated_pair``: the ``top_pairs`` item pairs with the highest normalised co-occurrence (see
  :mod:`recai.knowledge.cooccurrence`; whole sequences by default) among pairs seen by at least
  ``min_count`` users. A candidate in such a pair gets a fact; its strength falls with the pair's rank,
  and is cut to ``unlinked_weight`` of it when the partner is not in the user's history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.knowledge.base import Extractor
from recai.knowledge.cooccurrence import MEASURES, cooccurrence_counts, normalise
from recai.knowledge.facts import Fact, Query
from recai.rec.estimator import check_choice


class PatternsExtractor(Extractor):
    """Facts about the whole training log, not one user: how popular each candidate is, and which item
    pairs go together most strongly (module docstring).

    Args:
        top_pairs: how many of the most associated pairs are kept (0: none).
        min_count: users a pair needs before it can be one.
        measure: ``"cosine"``, ``"jaccard"`` or ``"lift"`` (see :mod:`recai.knowledge.cooccurrence`).
        window: steps apart two items may be and still co-occur (None: anywhere in a sequence).
        max_pairs: pair facts per candidate.
        unlinked_weight: share of a pair fact's strength kept when the partner is not in the history.
        popularity: give each candidate a popularity fact.
        popularity_weight: the popularity fact's strength per unit of the share of items it beats.
    """

    kind = "patterns"

    def __init__(
        self,
        *,
        top_pairs: int = 5000,
        min_count: int = 5,
        measure: str = "cosine",
        window: int | None = None,
        max_pairs: int = 2,
        unlinked_weight: float = 0.3,
        popularity: bool = True,
        popularity_weight: float = 0.5,
    ) -> None:
        check_choice("measure", measure, MEASURES)
        if top_pairs < 0 or min_count < 1 or max_pairs < 0:
            raise ValueError("top_pairs and max_pairs must be 0 or more, min_count at least 1")
        super().__init__(locals())
        self.item_users_: np.ndarray | None = None
        self.pairs_: np.ndarray | None = None  # (top_pairs, 2) item positions, strongest first
        self.pair_counts_: np.ndarray | None = None
        self.pair_scores_: np.ndarray | None = None
        self._by_item: dict[int, list[int]] = {}

    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        self.item_users_ = np.asarray(train.to_csr(values="binary").sum(axis=0)).ravel().astype(np.int64)
        upper = sp.triu(cooccurrence_counts(train, self.window), k=1).tocoo()
        keep = upper.data >= self.min_count
        rows, cols, counts = upper.row[keep], upper.col[keep], upper.data[keep]
        scores = normalise(
            counts, self.item_users_[rows], self.item_users_[cols], train.n_users, self.measure
        )
        order = np.lexsort((cols, rows, -scores))[: self.top_pairs]
        self.pairs_ = np.stack([rows[order], cols[order]], axis=1).astype(np.int64)
        self.pair_counts_ = counts[order].astype(np.int64)
        self.pair_scores_ = scores[order].astype(np.float64)
        self._index()

    def _index(self) -> None:
        assert self.pairs_ is not None
        self._by_item = {}
        for rank, (a, b) in enumerate(self.pairs_.tolist()):
            self._by_item.setdefault(a, []).append(rank)
            self._by_item.setdefault(b, []).append(rank)

    def _facts(self, query: Query) -> list[Fact]:
        assert self.item_users_ is not None and self.pairs_ is not None
        assert self.pair_counts_ is not None and self.pair_scores_ is not None
        facts: list[Fact] = []
        history = set(query.history)
        users = self.item_users_
        trained = users[users > 0]
        for candidate in query.candidates:
            if self.popularity:
                n = int(users[candidate])
                beats = float((trained < n).sum() / len(trained)) if len(trained) else 0.0
                facts.append(
                    Fact(
                        "patterns",
                        "popularity",
                        beats * self.popularity_weight,
                        candidate=int(candidate),
                        values={
                            "users": n,
                            "rank": int((trained > n).sum()) + 1 if n > 0 else None,
                            "of": len(trained),
                            "percent_beaten": round(100 * beats),
                        },
                    )
                )
            ranks = self._by_item.get(int(candidate), [])
            linked = [r for r in ranks if int(self.pairs_[r].sum() - candidate) in history]
            unlinked = [r for r in ranks if r not in linked]
            for r in (linked + unlinked)[: self.max_pairs]:
                partner = int(self.pairs_[r].sum() - candidate)
                strength = 1.0 - r / max(len(self.pairs_), 1)
                in_history = partner in history
                facts.append(
                    Fact(
                        "patterns",
                        "associated_pair",
                        strength if in_history else strength * self.unlinked_weight,
                        candidate=int(candidate),
                        anchor=partner if in_history else None,
                        values={
                            "partner": partner,
                            "pair_rank": r + 1,
                            "count": int(self.pair_counts_[r]),
                            "score": round(float(self.pair_scores_[r]), 4),
                            "measure": self.measure,
                        },
                        topic=("cooccurrence", int(candidate), partner) if in_history else None,
                    )
                )
        return facts

    def _n_items(self) -> int | None:
        return None if self.item_users_ is None else len(self.item_users_)

    def _state(self) -> dict[str, np.ndarray]:
        assert self.item_users_ is not None and self.pairs_ is not None
        assert self.pair_counts_ is not None and self.pair_scores_ is not None
        return {
            "item_users": self.item_users_,
            "pairs": self.pairs_,
            "pair_counts": self.pair_counts_,
            "pair_scores": self.pair_scores_,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_users_ = state["item_users"]
        self.pairs_ = state["pairs"].reshape(-1, 2)
        self.pair_counts_ = state["pair_counts"]
        self.pair_scores_ = state["pair_scores"]
        self._index()
