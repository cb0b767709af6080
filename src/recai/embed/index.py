"""Vector search over item embeddings with faiss.

- Below ``hnsw_threshold`` vectors the index is exact (inner product over all vectors); above it, HNSW
  (approximate, much faster at 100k+ vectors; ``ef_search`` trades speed for recall).
- ``search(..., within=ids)`` restricts results to a candidate set and is always exact: the candidate
  vectors are scored directly, which is what a recommender's candidate bus needs.
- Ids are the caller's (catalog ids or positions); ``add`` appends incrementally; ``save``/``load``
  write a folder atomically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recai.data.atomic import atomic_directory

FORMAT_VERSION = 1


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("vector search needs faiss: pip install 'recai[embed]' (faiss-cpu)") from exc
    return faiss


class VectorIndex:
    """Inner-product search over unit vectors (so scores are cosine similarities).

    Args:
        dim: The vectors' dimension.
        hnsw_threshold: From this many vectors on the index is HNSW (approximate) instead of exact.
        hnsw_m: Neighbours per HNSW node (more: better recall, more memory).
        ef_search: HNSW search breadth; trades speed for recall.
        ef_construction: HNSW build breadth; trades build time for graph quality.
        metadata: Saved with the index (e.g. the encoder identity it was built with).
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 200,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.dim = int(dim)
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.metadata = dict(metadata or {})
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._ids: list[Any] = []
        self._positions: dict[Any, int] = {}
        self._index: Any = None
        self.kind = "exact"

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[Any]:
        return list(self._ids)

    def vectors(self) -> np.ndarray:
        return self._vectors

    def vector(self, item_id: Any) -> np.ndarray:
        return self._vectors[self._positions[item_id]]

    def add(self, ids: Sequence[Any], vectors: np.ndarray) -> None:
        """Append vectors; an id already present is an error (rebuild to change a vector)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        dupes = [i for i in ids if i in self._positions]
        if dupes or len(set(ids)) != len(ids):
            raise ValueError(f"ids already in the index or repeated: {(dupes or list(ids))[:5]}")
        start = len(self._ids)
        for offset, item_id in enumerate(ids):
            self._positions[item_id] = start + offset
        self._ids.extend(ids)
        self._vectors = np.vstack([self._vectors, vectors])
        self._sync(vectors, start)

    def _sync(self, new: np.ndarray, start: int) -> None:
        faiss = _faiss()
        if self._index is None or (self.kind == "exact" and len(self._ids) >= self.hnsw_threshold):
            if len(self._ids) >= self.hnsw_threshold:
                index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = self.ef_construction
                index.hnsw.efSearch = self.ef_search
                self.kind = "hnsw"
            else:
                index = faiss.IndexFlatIP(self.dim)
                self.kind = "exact"
            index.add(self._vectors)
            self._index = index
        else:
            self._index.add(new)

    def search(
        self, queries: np.ndarray, k: int = 10, *, within: Iterable[Any] | None = None
    ) -> tuple[list[list[Any]], np.ndarray]:
        """Top-k ids and scores per query row; ``within`` restricts to those ids (exactly)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries must have {self.dim} columns, got {queries.shape[1]}")
        if within is not None:
            positions = np.array(
                sorted({self._positions[i] for i in within if i in self._positions}), dtype=np.int64
            )
            return self._search_subset(queries, k, positions)
        if not self._ids or k <= 0:
            return [[] for _ in queries], np.zeros((len(queries), 0), dtype=np.float32)
        k = min(k, len(self._ids))
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.ef_search, k)
        scores, rows = self._index.search(queries, k)
        ids = [[self._ids[r] for r in row if r >= 0] for row in rows]
        return ids, scores

    def _search_subset(
        self, queries: np.ndarray, k: int, positions: np.ndarray
    ) -> tuple[list[list[Any]], np.ndarray]:
        if len(positions) == 0 or k <= 0:
            return [[] for _ in queries], np.zeros((len(queries), 0), dtype=np.float32)
        scores = queries @ self._vectors[positions].T
        k = min(k, len(positions))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[self._ids[positions[j]] for j in row] for row in top], np.take_along_axis(
            scores, top, axis=1
        )

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            np.save(tmp / "vectors.npy", self._vectors)
            meta = {
                "format_version": FORMAT_VERSION,
                "dim": self.dim,
                "ids": [i.item() if isinstance(i, np.generic) else i for i in self._ids],
                "hnsw_threshold": self.hnsw_threshold,
                "hnsw_m": self.hnsw_m,
                "ef_search": self.ef_search,
                "ef_construction": self.ef_construction,
                "metadata": self.metadata,
            }
            (tmp / "index.json").write_text(json.dumps(meta), encoding="utf-8")
            if self._index is not None:
                _faiss().write_index(self._index, str(tmp / "faiss.index"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        path = Path(path)
        meta = json.loads((path / "index.json").read_text(encoding="utf-8"))
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path} was written by a newer recai")
        index = cls(
            meta["dim"],
            hnsw_threshold=meta["hnsw_threshold"],
            hnsw_m=meta["hnsw_m"],
            ef_search=meta["ef_search"],
            ef_construction=meta["ef_construction"],
            metadata=meta.get("metadata"),
        )
        index._vectors = np.load(path / "vectors.npy")
        index._ids = list(meta["ids"])
        index._positions = {i: p for p, i in enumerate(index._ids)}
        if (path / "faiss.index").exists():
            index._index = _faiss().read_index(str(path / "faiss.index"))
            index.kind = "hnsw" if len(index._ids) >= index.hnsw_threshold else "exact"
        return index
