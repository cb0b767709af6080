"""A knowledge graph of items, attribute values and co-occurrence, with bounded k-hop path search.

Nodes are the catalog's items and the values of its categorical columns (genre, director, actor,
tag, decade... see :mod:`recai.knowledge.attributes`). Edges:

- item -- value, for every value an item has, weighted by the value's rarity (inverse document
  frequency over the catalog: a shared director says more than a shared "Drama");
- item -- item, for each item's ``cooc_neighbours`` strongest co-occurring items in the training
  sequences (see :mod:`recai.knowledge.cooccurrence`), weighted by the percentile of their score times
  ``cooc_weight`` (below 1, so that a rare shared director or actor can outrank a common co-occurrence,
  which the co-occurrence extractor states anyway).

For a sample, every candidate is joined to the history by paths of at most ``hops`` edges, found by a
meet-in-the-middle search: up to ``ceil(hops / 2)`` steps out from the candidate and
``floor(hops / 2)`` out from the history items, joined where they meet. The search is bounded: each
node expands only its ``fan_out`` heaviest edges (ties: lower node id), nodes with more than
``max_degree`` edges are meeting points but are never expanded, and a path never passes through
another history item or candidate. A path's strength is the geometric mean of its edge weights times
``length_penalty`` per edge beyond the first; each candidate keeps its ``max_paths`` strongest paths,
one per history item. Everything is ordered by (weight, node id), so the same sample gives the same
paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recai.data.catalog import Catalog
from recai.data.interactions import Interactions
from recai.knowledge.attributes import ValueTable, attribute_columns
from recai.knowledge.base import Extractor, calibrate, quantiles
from recai.knowledge.cooccurrence import cooccurrence_counts, normalise
from recai.knowledge.facts import Fact, Query

COOCCURRENCE = "cooccurrence"


@dataclass(frozen=True)
class _Trail:
    """A best path from a search root to a node: the nodes (root first) and the edge ids between them."""

    nodes: tuple[int, ...]
    edges: tuple[int, ...]
    log_weight: float


class GraphExtractor(Extractor):
    """Reasoning paths between history items and candidates over items, attribute values and
    co-occurrence: multi-step links ("same director as X, who starred Y") no single extractor states
    (module docstring).

    Args:
        hops: the most edges in a path (1 to 4).
        columns: catalog columns whose values are nodes (None: every categorical one).
        exclude: columns to leave out of that default.
        decades: add ``decade`` value nodes derived from a year or date column.
        cooccurrence: add item -- item co-occurrence edges.
        cooc_window: steps apart two items may be and still co-occur (None: anywhere).
        cooc_neighbours: co-occurrence edges per item, its strongest ones.
        cooc_min_count: users a co-occurring pair needs.
        cooc_weight: a co-occurrence edge's weight per unit of its percentile (in (0, 1]).
        fan_out: heaviest edges a node expands in the search.
        max_degree: nodes with more edges are meeting points but never expanded.
        max_paths: paths kept per candidate, one per history item.
        length_penalty: a path's strength factor per edge beyond the first.
    """

    kind = "graph"

    def __init__(
        self,
        *,
        hops: int = 2,
        columns: list[str] | None = None,
        exclude: list[str] | None = None,
        decades: bool = True,
        cooccurrence: bool = True,
        cooc_window: int | None = 10,
        cooc_neighbours: int = 10,
        cooc_min_count: int = 2,
        cooc_weight: float = 0.6,
        fan_out: int = 30,
        max_degree: int = 200,
        max_paths: int = 2,
        length_penalty: float = 0.85,
    ) -> None:
        if not 1 <= hops <= 4:
            raise ValueError(f"hops must be between 1 and 4, got {hops}")
        if fan_out < 1 or max_paths < 1 or cooc_neighbours < 0:
            raise ValueError("fan_out and max_paths must be at least 1, cooc_neighbours 0 or more")
        if not 0.0 < cooc_weight <= 1.0:
            raise ValueError(f"cooc_weight must be in (0, 1], got {cooc_weight}")
        super().__init__(locals())
        self.table_: ValueTable | None = None
        self.cooc_: sp.csr_matrix | None = None  # items x items, percentile weights
        self._adjacency: sp.csr_matrix | None = None  # node x node, data = edge id + 1
        self._weights: np.ndarray = np.zeros(0)
        self._relations: np.ndarray = np.zeros(0, dtype=np.int64)  # -1 co-occurrence, else value column
        self._columns: list[str] = []
        self._neighbours: dict[int, list[tuple[int, int]]] = {}

    # ------------------------------------------------------------------ fit
    def _fit(self, catalog: Catalog, train: Interactions, model: Any) -> None:
        columns = attribute_columns(catalog, self.columns, self.exclude or ())
        self.table_ = ValueTable.build(catalog, columns, decades=self.decades)
        n = len(catalog)
        cooc = sp.csr_matrix((n, n), dtype=np.float64)
        if self.cooccurrence and self.cooc_neighbours > 0:
            counts = cooccurrence_counts(train, self.cooc_window).tocoo()
            keep = counts.data >= self.cooc_min_count
            rows, cols, data = counts.row[keep], counts.col[keep], counts.data[keep]
            users = np.asarray(train.to_csr(values="binary").sum(axis=0)).ravel()
            scores = normalise(data, users[rows], users[cols], train.n_users, "cosine")
            weights = calibrate(quantiles(scores), scores) * self.cooc_weight
            kept = _top_per_row(rows, cols, scores, self.cooc_neighbours)
            # an edge exists when either end keeps the other among its neighbours
            cooc = sp.csr_matrix((weights[kept], (rows[kept], cols[kept])), shape=(n, n))
            cooc = cooc.maximum(cooc.T).tocsr()
        self.cooc_ = cooc
        self._build()

    def _build(self) -> None:
        """The node adjacency from the value table and the co-occurrence edges."""
        assert self.table_ is not None and self.cooc_ is not None
        table, n = self.table_, self.table_.matrix.shape[0]
        self._columns = sorted(set(table.columns.tolist()))
        column_code = {c: i for i, c in enumerate(self._columns)}
        values = table.matrix.tocoo()
        cooc = sp.triu(self.cooc_, k=1).tocoo()
        weights = np.concatenate([table.idf[values.col], cooc.data]).astype(np.float64)
        relations = np.concatenate(
            [
                np.asarray([column_code[c] for c in table.columns[values.col]], dtype=np.int64),
                np.full(len(cooc.data), -1, dtype=np.int64),
            ]
        )
        a = np.concatenate([values.row, cooc.row]).astype(np.int64)
        b = np.concatenate([n + values.col, cooc.col]).astype(np.int64)
        ids = np.arange(1, len(a) + 1, dtype=np.float64)
        size = n + table.matrix.shape[1]
        adjacency = sp.csr_matrix(
            (np.concatenate([ids, ids]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(size, size)
        )
        self._adjacency = adjacency
        self._weights = np.maximum(weights, 1e-6)  # a value every item has (idf 0) is a very weak edge
        self._relations = relations
        self._neighbours = {}

    # --------------------------------------------------------------- search
    def neighbours(self, node: int) -> list[tuple[int, int]]:
        """(neighbour, edge id) of the ``fan_out`` heaviest edges of ``node`` (ties: lower node id)."""
        cached = self._neighbours.get(node)
        if cached is not None:
            return cached
        assert self._adjacency is not None
        start, end = self._adjacency.indptr[node], self._adjacency.indptr[node + 1]
        others = self._adjacency.indices[start:end]
        edges = self._adjacency.data[start:end].astype(np.int64) - 1
        if len(others) > self.max_degree:
            out: list[tuple[int, int]] = []  # a hub: a meeting point, never expanded
        else:
            order = np.lexsort((others, -self._weights[edges]))[: self.fan_out]
            out = [(int(others[i]), int(edges[i])) for i in order]
        self._neighbours[node] = out
        return out

    def _reach(self, roots: Sequence[int], depth: int, blocked: set[int]) -> dict[int, _Trail]:
        """The strongest trail from any root to every node within ``depth`` steps. Nodes in ``blocked``
        are reached but never expanded or passed through."""
        best: dict[int, _Trail] = {r: _Trail((r,), (), 0.0) for r in roots}
        frontier = sorted(roots)
        for _ in range(depth):
            found: dict[int, _Trail] = {}
            for node in frontier:
                trail = best[node]
                if node in blocked and len(trail.nodes) > 1:
                    continue
                for other, edge in self.neighbours(node):
                    if other in trail.nodes:
                        continue
                    new = _Trail(
                        (*trail.nodes, other),
                        (*trail.edges, edge),
                        trail.log_weight + math.log(self._weights[edge]),
                    )
                    old = found.get(other) or best.get(other)
                    if old is None or _better(new, old):
                        found[other] = new
            for node, trail in found.items():
                current = best.get(node)
                if current is None or _better(trail, current):
                    best[node] = trail
            frontier = sorted(found)
        return best

    def paths(self, query: Query) -> dict[int, list[tuple[float, int, tuple[int, ...], tuple[int, ...]]]]:
        """For each candidate: (strength, history item, nodes from history to candidate, edge ids), the
        strongest first, at most ``max_paths`` (one per history item)."""
        assert self.table_ is not None
        n_items = self.table_.matrix.shape[0]
        history = [int(h) for h in query.distinct_history()]
        candidates = [int(c) for c in dict.fromkeys(query.candidates)]
        items = set(history) | set(candidates)
        from_history: dict[int, dict[int, _Trail]] = {}
        down = self.hops // 2
        for h in history:  # one search per history item: each path keeps its own anchor
            from_history[h] = self._reach([h], down, items - {h})
        out: dict[int, list[tuple[float, int, tuple[int, ...], tuple[int, ...]]]] = {}
        for c in candidates:
            reached = self._reach([c], self.hops - down, items - {c})
            found: list[tuple[float, int, tuple[int, ...], tuple[int, ...]]] = []
            for h in history:
                best: tuple[float, tuple[int, ...], tuple[int, ...]] | None = None
                for node, back in from_history[h].items():
                    forward = reached.get(node)
                    if forward is None:
                        continue
                    nodes = back.nodes + tuple(reversed(forward.nodes[:-1]))
                    edges = back.edges + tuple(reversed(forward.edges))
                    if not edges or len(set(nodes)) != len(nodes):
                        continue
                    if any(p in items for p in nodes[1:-1] if p < n_items):
                        continue
                    mean = math.exp((back.log_weight + forward.log_weight) / len(edges))
                    strength = mean * self.length_penalty ** (len(edges) - 1)
                    if best is None or (strength, tuple(-x for x in nodes)) > (
                        best[0],
                        tuple(-x for x in best[1]),
                    ):
                        best = (strength, nodes, edges)
                if best is not None:
                    found.append((best[0], h, best[1], best[2]))
            found.sort(key=lambda f: (-f[0], history.index(f[1])))
            if found:
                out[c] = found[: self.max_paths]
        return out

    def _facts(self, query: Query) -> list[Fact]:
        facts = []
        for candidate, found in self.paths(query).items():
            for strength, anchor, nodes, edges in found:
                facts.append(
                    Fact(
                        "graph",
                        "path",
                        float(strength),
                        candidate=candidate,
                        anchor=anchor,
                        values={"steps": self.describe(nodes, edges)},
                        topic=("cooccurrence", candidate, anchor) if len(nodes) == 2 else None,
                    )
                )
        return facts

    def describe(self, nodes: Sequence[int], edges: Sequence[int]) -> list[dict[str, Any]]:
        """A path as plain data for the verbaliser: items, values and the relations between them."""
        assert self.table_ is not None
        n_items = self.table_.matrix.shape[0]
        steps: list[dict[str, Any]] = []
        for i, node in enumerate(nodes):
            if node < n_items:
                steps.append({"item": int(node)})
            else:
                v = node - n_items
                steps.append({"column": str(self.table_.columns[v]), "value": str(self.table_.names[v])})
            if i < len(edges):
                code = int(self._relations[edges[i]])
                relation = COOCCURRENCE if code < 0 else self._columns[code]
                steps.append({"relation": relation, "towards_value": bool(nodes[i + 1] >= n_items)})
        return steps

    # -------------------------------------------------------------- persist
    def _n_items(self) -> int | None:
        return None if self.table_ is None else self.table_.matrix.shape[0]

    def _state(self) -> dict[str, np.ndarray]:
        assert self.table_ is not None and self.cooc_ is not None
        c = self.cooc_
        return {
            **self.table_.state("values_"),
            "cooc_data": c.data,
            "cooc_indices": c.indices,
            "cooc_indptr": c.indptr,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.table_ = ValueTable.from_state(state, "values_")
        n = self.table_.matrix.shape[0]
        self.cooc_ = sp.csr_matrix(
            (state["cooc_data"], state["cooc_indices"], state["cooc_indptr"]), shape=(n, n)
        )
        self._build()


def _better(a: _Trail, b: _Trail) -> bool:
    """Stronger per edge first, then shorter, then lower node ids: a total order, so searches agree."""
    wa, wb = a.log_weight / max(len(a.edges), 1), b.log_weight / max(len(b.edges), 1)
    if wa != wb:
        return wa > wb
    if len(a.edges) != len(b.edges):
        return len(a.edges) < len(b.edges)
    return a.nodes < b.nodes


def _top_per_row(rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best-scoring entries of each row (ties: lower column)."""
    order = np.lexsort((cols, -scores, rows))
    sorted_rows = rows[order]
    starts = np.r_[0, np.flatnonzero(sorted_rows[1:] != sorted_rows[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < k]
