"""Shared state of one build: the catalog profile, the log, cached masks and title guards, and the
hard-negative picker every task uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from recai.data.catalog import Catalog
from recai.data.dataset import Dataset
from recai.data.errors import plain_value
from recai.data.interactions import Interactions
from recai.embed.tasks.predicates import Predicate
from recai.embed.tasks.profile import CatalogProfile
from recai.embed.tasks.writer import LLMWriter
from recai.evaluate.conversation import TitleGuard, title_guard

#: Hard negatives are drawn from this many times ``n_negatives`` of the closest eligible items, so that
#: one positive does not get the very same negatives in every example.
POOL_FACTOR = 3
#: Each extra violated condition costs this much closeness: near misses (one violation) come first.
VIOLATION_PENALTY = 0.5


@dataclass
class TaskContext:
    """Everything a task needs to turn an anchor (a user or an item) into one example; built once per
    build by :class:`~recai.embed.tasks.build.ExampleBuilder` and read-only for tasks.

    Attributes:
        dataset: the dataset examples are built from.
        log: the interactions histories come from (the dataset's, or a split's training log).
        profile: column kinds and item similarity of the catalog.
        noun: what an item is called in queries.
        n_negatives: hard negatives per example.
        history_len: the most history items a query shows.
        max_query_chars: the longest query kept.
        writer: the LLM writer, or None to use templates.
        store: per-build precomputations of individual tasks, keyed by task name.
    """

    dataset: Dataset
    log: Interactions
    profile: CatalogProfile
    noun: str = "item"
    n_negatives: int = 5
    history_len: int = 10
    max_query_chars: int = 1000
    writer: LLMWriter | None = None
    #: Per-build precomputations of individual tasks (normalised titles, ...), keyed by task name.
    store: dict[str, Any] = field(default_factory=dict, repr=False)
    _masks: dict[Predicate, np.ndarray] = field(default_factory=dict, repr=False)
    _guards: dict[int, TitleGuard] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._similarity = lru_cache(maxsize=2048)(self.profile.similarity)

    @property
    def catalog(self) -> Catalog:
        return self.dataset.catalog

    # ------------------------------------------------------------ items
    def item_id(self, position: int) -> Any:
        return plain_value(self.catalog.ids[int(position)])

    def title(self, position: int) -> str:
        return self.catalog.display_title(int(position))

    def guard(self, position: int) -> TitleGuard:
        """Detects the item's title (with or without year, or its main part) in text."""
        if position not in self._guards:
            self._guards[position] = title_guard(self.catalog, int(position))
        return self._guards[position]

    def mask(self, predicate: Predicate) -> np.ndarray:
        """``predicate.mask(catalog)``, computed once per build."""
        if predicate not in self._masks:
            self._masks[predicate] = predicate.mask(self.catalog)
        return self._masks[predicate]

    def satisfying(self, predicates: tuple[Predicate, ...] | list[Predicate]) -> np.ndarray:
        out = np.ones(len(self.catalog), dtype=bool)
        for p in predicates:
            out &= self.mask(p)
        return out

    def violations(self, predicates: tuple[Predicate, ...] | list[Predicate]) -> np.ndarray:
        out = np.zeros(len(self.catalog), dtype=np.int64)
        for p in predicates:
            out += ~self.mask(p)
        return out

    def share(self, predicate: Predicate) -> float:
        """The share of the catalog that satisfies ``predicate``."""
        return float(self.mask(predicate).mean())

    # ------------------------------------------------------------ users
    def sequence(self, user_index: int) -> np.ndarray:
        indptr, codes = self.log.sequence_arrays()
        return codes[indptr[user_index] : indptr[user_index + 1]]

    def user_id(self, user_index: int) -> Any:
        return plain_value(self.log.user_ids[user_index])

    def seen_mask(self, user_index: int) -> np.ndarray:
        """Items the user interacted with anywhere in the log (never negatives for that user)."""
        out = np.zeros(len(self.catalog), dtype=bool)
        out[self.sequence(user_index)] = True
        return out

    def history(self, user_index: int, cut: int) -> list[int]:
        """Up to ``history_len`` distinct items before index ``cut`` of the sequence, newest first."""
        seq = self.sequence(user_index)[:cut]
        out: list[int] = []
        for pos in reversed(seq.tolist()):
            if pos not in out:
                out.append(int(pos))
            if len(out) == self.history_len:
                break
        return out

    # ------------------------------------------------------------ negatives
    def closeness(self, position: int) -> np.ndarray:
        """Similarity of every item to ``position`` (cached): attributes, text and co-occurrence."""
        return self._similarity(int(position))

    def hard_negatives(
        self,
        positive: int,
        eligible: np.ndarray,
        rng: np.random.Generator,
        *,
        violations: np.ndarray | None = None,
        closeness: np.ndarray | None = None,
    ) -> list[int]:
        """Up to ``n_negatives`` eligible items close to ``positive``, closest first.

        ``eligible`` is the proof obligation and is decided by the task (items that violate the query,
        or that the user never touched, or that never co-occur); closeness only orders them: attribute,
        text and co-occurrence similarity by default, minus :data:`VIOLATION_PENALTY` for each violated
        condition beyond the first.
        """
        eligible = np.asarray(eligible, dtype=bool).copy()
        eligible[int(positive)] = False
        candidates = np.flatnonzero(eligible)
        if candidates.size == 0 or self.n_negatives <= 0:
            return []
        score = (self._similarity(int(positive)) if closeness is None else closeness)[candidates].astype(
            float
        )
        if violations is not None:
            score = score - VIOLATION_PENALTY * np.maximum(violations[candidates] - 1, 0)
        score = score + 1e-9 * rng.random(candidates.size)  # a seeded tie-break
        ranked = candidates[np.argsort(-score, kind="stable")]
        pool = ranked[: POOL_FACTOR * self.n_negatives]
        chosen = np.sort(rng.choice(pool.size, size=min(self.n_negatives, pool.size), replace=False))
        return [int(p) for p in pool[chosen]]
