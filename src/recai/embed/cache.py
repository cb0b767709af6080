"""An on-disk embedding cache keyed by model identity and text hash.

Re-indexing a catalog after a few items changed encodes only those items. SQLite keeps it one file,
safe against interrupted writes (transactions) and shared by processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from recai.data.home import data_home
from recai.embed.encoder import Encoder, Kind


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors already computed, keyed by the encoder's cache key and a hash of the text.

    It makes re-indexing a changed catalog, or re-running an evaluation, encode only the new texts.

    Args:
        path: The SQLite file; defaults to ``embeddings.sqlite`` in the recai data home.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_home() / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, text_hash BLOB, dim INTEGER, vector BLOB, "
                "PRIMARY KEY (model, text_hash))"
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success, rolls back on error, and is always closed."""
        con = sqlite3.connect(self.path, timeout=30)
        try:
            with con:
                yield con
        finally:
            con.close()

    def encode(self, encoder: Encoder, texts: Sequence[str], kind: Kind = "item") -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (cached ones read, the rest encoded and stored); also how many were new."""
        model = encoder.cache_key(kind)
        keys = [_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock, self._connect() as con:
            for start in range(0, len(keys), 500):
                batch = keys[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = con.execute(
                    f"SELECT text_hash, dim, vector FROM vectors WHERE model = ? AND text_hash IN ({marks})",
                    [model, *batch],
                ).fetchall()
                for text_hash, dim, blob in rows:
                    if dim == encoder.dim:
                        found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = encoder.encode([texts[i] for i in missing], kind=kind)
            with self._lock, self._connect() as con:
                con.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                    [(model, keys[i], encoder.dim, fresh[j].tobytes()) for j, i in enumerate(missing)],
                )
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j]
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = found[k]
        return out, len(missing)
