from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recai.embed.cache import EmbeddingCache
from recai.embed.encoder import Encoder
from recai.embed.index import VectorIndex

pytest.importorskip("faiss")


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_matches_brute_force() -> None:
    data, queries = _unit(500, 16, 0), _unit(20, 16, 1)
    index = VectorIndex(16)
    index.add([f"i{j}" for j in range(500)], data)
    ids, scores = index.search(queries, k=5)
    expected = np.argsort(-(queries @ data.T), axis=1)[:, :5]
    assert ids == [[f"i{j}" for j in row] for row in expected]
    assert np.allclose(scores, np.take_along_axis(queries @ data.T, expected, axis=1), atol=1e-5)
    assert index.kind == "exact"


def test_hnsw_recall_against_exact() -> None:
    data, queries = _unit(6000, 32, 2), _unit(100, 32, 3)
    exact, approx = VectorIndex(32), VectorIndex(32, hnsw_threshold=1000, ef_search=64)
    ids = list(range(6000))
    exact.add(ids, data)
    approx.add(ids[:3000], data[:3000])
    approx.add(ids[3000:], data[3000:])  # incremental add keeps working after the switch
    assert approx.kind == "hnsw"
    truth, _ = exact.search(queries, k=10)
    found, _ = approx.search(queries, k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
    assert recall >= 0.9


def test_search_within_a_candidate_set_is_exact() -> None:
    data = _unit(300, 8, 4)
    index = VectorIndex(8, hnsw_threshold=100)
    index.add(list(range(300)), data)
    candidates = [5, 17, 123, 299, 9999]  # 9999 is not indexed: ignored
    ids, scores = index.search(data[17:18], k=3, within=candidates)
    assert ids[0][0] == 17 and set(ids[0]) <= {5, 17, 123, 299} and len(ids[0]) == 3
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)
    assert index.search(data[:1], k=3, within=[])[0] == [[]]


def test_save_load_and_bad_input(tmp_path: Path) -> None:
    index = VectorIndex(8, metadata={"encoder": "x"})
    index.add([10, 20, 30], _unit(3, 8, 5))
    again = VectorIndex.load(index.save(tmp_path / "idx"))
    assert again.ids == [10, 20, 30] and again.metadata == {"encoder": "x"}
    q = _unit(1, 8, 6)
    assert again.search(q, 2)[0] == index.search(q, 2)[0]
    with pytest.raises(ValueError, match="already in the index"):
        index.add([10], _unit(1, 8, 7))
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        index.add([99], _unit(1, 4, 7))


class CountingEncoder(Encoder):
    """Deterministic vectors from a text hash; counts what it was asked to encode."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim, self.identity, self.encoded = dim, "counting-v1", 0

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        self.encoded += len(texts)
        return np.vstack([_unit(1, self.dim, abs(hash(t)) % 2**32)[0] for t in texts])


def test_the_cache_encodes_only_new_texts(tmp_path: Path) -> None:
    cache, enc = EmbeddingCache(tmp_path / "e.sqlite"), CountingEncoder()
    first, new = cache.encode(enc, ["a", "b", "c"])
    assert new == 3 and enc.encoded == 3
    second, new = cache.encode(enc, ["b", "c", "d"])
    assert new == 1 and enc.encoded == 4
    assert np.array_equal(first[1:], second[:2])
    enc.identity = "counting-v2"  # another model (or new weights): nothing is reused
    cache.encode(enc, ["a"])
    assert enc.encoded == 5


def test_catalog_index_is_built_once_and_reused(catalog, tmp_path: Path) -> None:
    enc = CountingEncoder()
    index = catalog.index(enc)
    assert len(index) == len(catalog) and enc.encoded == len(catalog)
    assert catalog.index(enc) is index
    from recai.embed.catalog_index import build_item_index

    again = build_item_index(catalog, enc, progress=False)  # from disk, no encoding
    assert enc.encoded == len(catalog) and again.ids == list(catalog.ids)
    query = enc.encode([catalog.render(12)], "item")
    assert index.search(query, 1)[0] == [[12]]


def test_the_index_cache_key_includes_ids(catalog, films, film_schema) -> None:
    from recai.data import Catalog

    enc = CountingEncoder()
    first = catalog.index(enc)
    renumbered = Catalog(films.assign(item_id=films["item_id"] + 100), film_schema)
    second = renumbered.index(enc)
    assert second.ids == [i + 100 for i in first.ids]
    assert second.metadata["newly_encoded"] == 0  # same texts: vectors came from the cache
