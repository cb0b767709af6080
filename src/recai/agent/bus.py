"""The candidate bus: the set of items a turn is considering, passed from tool to tool.

It starts unrestricted ("the whole catalog", held lazily, not as a 1M-element list) and every tool either
narrows it, re-scores it, or reads it. Items keep their scores and a provenance trail (which step put
them there, with what score), so the responder and the trace can say why an item is in the answer.
Nothing is truncated at random: when a tool must keep k items it keeps the k best by score, ties by
catalog order. An empty bus is an explicit state the executor reacts to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Provenance:
    """Which step put an item on the bus (or re-scored it), so the trace can say why an item is there.

    Attributes:
        step: the step's number in its plan.
        tool: the tool that ran the step.
        score: the score the step gave the item (None: it kept the item without scoring it).
    """

    step: int
    tool: str
    score: float | None = None


@dataclass
class CandidateBus:
    """The candidates a plan works on, passed from tool to tool: item positions with scores, so each tool
    narrows or re-scores what the previous one left instead of starting over. ``positions is None`` means
    every catalog item is still a candidate (nothing has restricted the bus yet).

    Attributes:
        n_items: the catalog's size.
        positions: the candidate positions, best first (None: every item).
        scores: the candidates' scores, aligned with ``positions`` (None: not scored yet).
        provenance: per position, the steps that kept or scored it.
    """

    n_items: int
    positions: np.ndarray | None = None
    scores: np.ndarray | None = None
    provenance: dict[int, list[Provenance]] = field(default_factory=dict)

    @property
    def unrestricted(self) -> bool:
        return self.positions is None

    def __len__(self) -> int:
        return self.n_items if self.positions is None else len(self.positions)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def candidates(self) -> np.ndarray:
        """Current positions (all items when unrestricted), in bus order."""
        return np.arange(self.n_items) if self.positions is None else self.positions

    def current_scores(self) -> np.ndarray:
        if self.scores is not None:
            return self.scores
        return np.zeros(len(self))

    def restrict(
        self, positions: Iterable[int], *, step: int, tool: str, scores: Sequence[float] | None = None
    ) -> None:
        """Keep the given ``positions`` that are already candidates, in that order, with their new scores."""
        wanted = np.asarray(list(positions), dtype=np.int64)
        if self.positions is not None:
            allowed = np.isin(wanted, self.positions)
            old = dict(zip(self.positions.tolist(), self.current_scores().tolist(), strict=True))
        else:
            allowed = np.ones(len(wanted), dtype=bool)
            old = {}
        wanted_scores = None if scores is None else np.asarray(scores, dtype=np.float64)[allowed]
        kept = wanted[allowed]
        _, first = np.unique(kept, return_index=True)  # a tool naming an item twice keeps the first
        order = np.sort(first)
        kept = kept[order]
        if wanted_scores is not None:
            new_scores = wanted_scores[order]
        else:
            new_scores = np.asarray([old.get(int(p), 0.0) for p in kept], dtype=np.float64)
        self.positions, self.scores = kept, new_scores
        for p, s in zip(kept.tolist(), new_scores.tolist(), strict=True):
            self.provenance.setdefault(p, []).append(
                Provenance(step, tool, s if scores is not None else None)
            )

    def discard(self, positions: Iterable[int], *, step: int, tool: str) -> None:
        """Drop ``positions`` from the candidates, keeping the others' order and scores (an unrestricted
        bus becomes every other item)."""
        drop = np.asarray(list(positions), dtype=np.int64)
        if len(drop):
            candidates = self.candidates()
            self.restrict(candidates[~np.isin(candidates, drop)], step=step, tool=tool)

    def rescore(self, scores: np.ndarray, *, step: int, tool: str) -> None:
        """Replace the scores of the current candidates (aligned with :meth:`candidates`) and sort by them."""
        candidates = self.candidates()
        if len(scores) != len(candidates):
            raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates")
        order = np.lexsort((candidates, -np.asarray(scores, dtype=np.float64)))
        self.restrict(candidates[order], step=step, tool=tool, scores=np.asarray(scores)[order])

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best candidates by score (ties: catalog order), without changing the bus."""
        candidates, scores = self.candidates(), self.current_scores()
        order = np.lexsort((candidates, -scores))[:k]
        return candidates[order], scores[order]

    def snapshot(self) -> dict[str, object]:
        """A small description for the trace."""
        size = len(self)
        return {"size": "all" if self.unrestricted else size}
