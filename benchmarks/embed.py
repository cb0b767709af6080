"""Embedding and vector-search speed.

Usage: python benchmarks/embed.py [--sizes 10000 100000 1000000] [--out benchmarks/results/embed.json]

- Encoding: items/s for the default embedder (all-MiniLM-L6-v2) on the demo catalog's rendered item
  texts (repeated to 2,000 texts, batch 64), and the median latency of one short query.
- Search: synthetic unit vectors (dim 384) at each size, drawn around 2,000 random centres so that,
  like real embeddings, they have neighbourhoods (uniform random vectors in 384 dimensions have none,
  which no ANN index can exploit); median latency of one query (k=10) for exact inner product and for
  HNSW (M=16, efConstruction=100, efSearch=128: cheaper to build than the library default M=32,
  efConstruction=200), plus HNSW build time and recall@10 against exact search over 100 queries
  (queries are perturbed data points).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from recai.data import load
from recai.data.atomic import write_text_atomic
from recai.embed import VectorIndex, load_encoder


def _clustered(
    n: int, dim: int, rng: np.random.Generator, centres: np.ndarray, spread: float = 0.6
) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        block = centres[rng.integers(0, len(centres), size)] + spread * rng.standard_normal(
            (size, dim), dtype=np.float32
        ) / np.sqrt(dim)
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def encoding() -> dict[str, Any]:
    enc = load_encoder()
    texts = (load("demo").catalog.texts(max_chars=512) * 7)[:2000]
    enc.encode(texts[:64], "item")  # warm-up
    start = time.perf_counter()
    enc.encode(texts, "item", batch_size=64)
    items_s = len(texts) / (time.perf_counter() - start)
    latencies = []
    for q in ["dark and atmospheric", "a 90s crime film like Heat", "something funny for kids"] * 10:
        t = time.perf_counter()
        enc.encode([q], "query")
        latencies.append(time.perf_counter() - t)
    return {
        "encoder": enc.identity,
        "items_per_s": round(items_s, 1),
        "query_latency_ms": round(1000 * statistics.median(latencies), 2),
    }


def search(size: int, dim: int, rng: np.random.Generator) -> dict[str, Any]:
    centres = rng.standard_normal((2000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = _clustered(size, dim, rng, centres)
    picks = data[rng.integers(0, size, 100)]
    queries = picks + 0.3 * rng.standard_normal(picks.shape, dtype=np.float32) / np.sqrt(dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = VectorIndex(dim, hnsw_threshold=size + 1)
    exact.add(list(range(size)), data)
    t = time.perf_counter()
    hnsw = VectorIndex(dim, hnsw_threshold=1, hnsw_m=16, ef_construction=100, ef_search=128)
    hnsw.add(list(range(size)), data)
    build_s = time.perf_counter() - t
    row: dict[str, Any] = {"size": size, "dim": dim, "hnsw_build_s": round(build_s, 2)}
    truth = exact.search(queries, 10)[0]
    found = hnsw.search(queries, 10)[0]
    row["hnsw_recall_at_10"] = round(
        float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])), 3
    )
    for name, index in (("exact", exact), ("hnsw", hnsw)):
        times = []
        for q in queries[:50]:
            t = time.perf_counter()
            index.search(q[None, :], 10)
            times.append(time.perf_counter() - t)
        row[f"{name}_query_ms"] = round(1000 * statistics.median(times), 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "embed.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    report: dict[str, Any] = {
        "benchmark": "embed",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "encoding": encoding(),
        "search": [],
    }
    print(json.dumps(report["encoding"]))
    for size in args.sizes:
        row = search(size, args.dim, rng)
        print(json.dumps(row))
        report["search"].append(row)
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
