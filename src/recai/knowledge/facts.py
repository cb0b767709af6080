"""What extractors produce and what they are asked about.

A :class:`Query` is one sample: the history the LLM is shown (oldest first) and the candidates it must
rank. A :class:`Fact` is one piece of knowledge about that sample, kept as data (not text) until the
verbaliser renders it, so that the same fact can be shown as a sentence, a reasoning path or an attribute
list, and so that selection can weigh it by how strong it is and how recent the history item it links to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The extractor kinds, in the order their facts are preferred when usefulness ties.
KINDS = ("attributes", "cooccurrence", "embedding", "recommender", "patterns", "graph")


@dataclass(frozen=True)
class Query:
    """One sample an extractor is asked about, as the LLM will see it.

    Attributes:
        history: item positions the LLM is shown, oldest first.
        candidates: item positions it must rank.
        user: the user's id when known (models with per-user parameters use it).
    """

    history: tuple[int, ...]
    candidates: tuple[int, ...]
    user: Any = None

    @classmethod
    def of(cls, history: Sequence[int], candidates: Sequence[int], user: Any = None) -> Query:
        return cls(tuple(int(p) for p in history), tuple(int(p) for p in candidates), user)

    def recency(self, decay: float) -> dict[int, float]:
        """Weight of each history item: 1 for the most recent, ``decay`` per step further back (an item
        seen twice keeps its most recent weight)."""
        out: dict[int, float] = {}
        n = len(self.history)
        for i, position in enumerate(self.history):
            out[position] = float(decay ** (n - 1 - i))
        return out

    def distinct_history(self) -> np.ndarray:
        """History positions without repeats, most recent first (the order facts are searched in)."""
        seen: dict[int, None] = {}
        for position in reversed(self.history):
            seen.setdefault(position, None)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))


@dataclass(frozen=True)
class Fact:
    """One piece of knowledge about a sample, kept as data until the verbaliser renders it.

    Attributes:
        kind: the extractor kind that produced it (one of :data:`KINDS`).
        relation: what it states (``"item_attributes"``, ``"similar"``, ``"path"``...).
        strength: the extractor's own measure (0..1) of how strong the signal is; selection multiplies
            it by the recency of ``anchor``.
        candidate: the candidate position it is about, if any.
        anchor: the history item it links to, if any.
        values: what the verbaliser needs (counts, scores, path steps), as plain JSON types.
        topic: what the fact is evidence of, when two extractors can say the same thing (a co-occurrence
            fact and a one-edge co-occurrence path): selection keeps one fact per topic.
    """

    kind: str
    relation: str
    strength: float
    candidate: int | None = None
    anchor: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    topic: tuple[Any, ...] | None = None

    def sort_key(self) -> tuple[Any, ...]:
        """A total order for ties, so that selection never depends on dict or set order."""
        return (
            KINDS.index(self.kind) if self.kind in KINDS else len(KINDS),
            self.relation,
            -1 if self.candidate is None else self.candidate,
            -1 if self.anchor is None else self.anchor,
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "relation": self.relation,
            "strength": round(float(self.strength), 4),
            "candidate": self.candidate,
            "anchor": self.anchor,
        }
