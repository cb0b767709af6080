"""Item-to-item similarity in a trained recommender's item embeddings (MF or SASRec).

The model is any fitted :class:`~recai.rec.base.Recommender` with ``item_vectors()`` (BPR, ALS and
SASRec have them; item-CF and popularity do not), trained on the training part of the split. Only
items with at least ``min_item_count`` training events get facts: the embedding of an item nobody
trained on is its random initialisation, and one trained on a handful of events is close to whatever
other rare items it happened to share a user with, so its "similarity" would be noise. A fact's
strength is the cosine's percentile among the cosines of random pairs of such items (seeded), so
"similar" means "more similar than most pairs", whatever the model's scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.knowledge.base import Extractor, calibrate, quantiles
from recai.knowledge.facts import Fact, Query


class EmbeddingExtractor(Extractor):
    """Facts linking each candidate to its most similar history items in a trained recommender's item
    embeddings: similarity the model learnt, which reaches items no user shared (module docstring).

    Args:
        model: the name (in :data:`recai.rec.MODELS`) of the recommender the vectors come from; shown
            in the facts and recorded in the configuration.
        max_anchors: facts per candidate, for its most similar history items.
        min_percentile: the least similarity percentile (among random pairs) a fact needs.
        reference_pairs: random item pairs the percentiles are measured on.
        min_item_count: training events an item needs before its embedding is trusted.
        seed: seeds the random reference pairs.
    """

    kind = "embedding"
    needs_model = True

    def __init__(
        self,
        *,
        model: str = "sasrec",
        max_anchors: int = 2,
        min_percentile: float = 0.9,
        reference_pairs: int = 20000,
        min_item_count: int = 5,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= min_percentile <= 1.0:
            raise ValueError(f"min_percentile must be in [0, 1], got {min_percentile}")
        super().__init__(locals())
        self.vectors_: np.ndarray | None = None
        self.trained_: np.ndarray | None = None
        self.quantiles_: np.ndarray | None = None

    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        vectors_of = getattr(model, "item_vectors", None)
        if vectors_of is None:
            raise ValueError(
                f"{type(model).__name__} has no item embeddings (item_vectors); use sasrec, bpr or als"
            )
        vectors = np.asarray(vectors_of(), dtype=np.float32)
        if vectors.shape[0] != len(catalog):
            raise ValueError(f"the model has {vectors.shape[0]} item vectors for a catalog of {len(catalog)}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors_ = vectors / np.maximum(norms, 1e-12)
        self.trained_ = train.item_counts() >= max(self.min_item_count, 1)
        trained = np.flatnonzero(self.trained_)
        rng = np.random.default_rng(self.seed)
        if len(trained) >= 2:
            a = rng.choice(trained, size=self.reference_pairs)
            b = rng.choice(trained, size=self.reference_pairs)
            keep = a != b
            sims = np.einsum("ij,ij->i", self.vectors_[a[keep]], self.vectors_[b[keep]])
        else:
            sims = np.zeros(0)
        self.quantiles_ = quantiles(sims)

    def _facts(self, query: Query) -> list[Fact]:
        assert self.vectors_ is not None and self.trained_ is not None and self.quantiles_ is not None
        history = query.distinct_history()
        history = history[self.trained_[history]]
        if not len(history):
            return []
        candidates = np.asarray(query.candidates, dtype=np.int64)
        sims = self.vectors_[candidates] @ self.vectors_[history].T  # candidates x history
        strengths = calibrate(self.quantiles_, sims)
        facts: list[Fact] = []
        for r, candidate in enumerate(candidates):
            if not self.trained_[candidate]:
                continue
            cols = np.flatnonzero(strengths[r] >= self.min_percentile)
            order = cols[np.lexsort((cols, -sims[r, cols]))][: self.max_anchors]
            facts.extend(
                Fact(
                    "embedding",
                    "similar",
                    float(strengths[r, c]),
                    candidate=int(candidate),
                    anchor=int(history[c]),
                    values={"similarity": round(float(sims[r, c]), 4), "model": self.model},
                )
                for c in order
            )
        return facts

    def _n_items(self) -> int | None:
        return None if self.vectors_ is None else self.vectors_.shape[0]

    def _state(self) -> dict[str, np.ndarray]:
        assert self.vectors_ is not None and self.trained_ is not None and self.quantiles_ is not None
        return {"vectors": self.vectors_, "trained": self.trained_, "quantiles": self.quantiles_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_ = state["vectors"]
        self.trained_ = state["trained"].astype(bool)
        self.quantiles_ = state["quantiles"]
