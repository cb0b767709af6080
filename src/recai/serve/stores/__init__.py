"""Session stores behind one interface (:class:`SessionBackend`): ``memory`` (one process),
``sqlite:///PATH`` (several workers on one machine) and ``redis://HOST:PORT/DB`` (several machines).

``open_store`` turns a ``--store`` URL into a backend and names ``--store`` in every error about it.
"""

from __future__ import annotations

from pathlib import Path

from recai.serve.stores.base import SessionBackend, SessionRecord, StoreUnavailableError, TurnAppend
from recai.serve.stores.memory import MemoryBackend

__all__ = [
    "MemoryBackend",
    "SessionBackend",
    "SessionRecord",
    "StoreUnavailableError",
    "TurnAppend",
    "open_store",
    "shared",
]

FORMS = "memory, sqlite:///PATH (a relative path; sqlite:////abs/path for an absolute one) or redis://HOST:PORT/DB"


def open_store(url: str, *, timeout_s: float = 5.0) -> SessionBackend:
    """The backend for a store URL (see :data:`FORMS`)."""
    text = url.strip()
    if text in ("memory", "memory://"):
        return MemoryBackend()
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/") or len(path) < 2:
            raise ValueError(f"--store {url!r}: write sqlite:///PATH (three slashes, then the file)")
        from recai.serve.stores.sqlite import SqliteBackend

        return SqliteBackend(Path(path[1:]), timeout_s=timeout_s)
    if text.startswith(("redis://", "rediss://", "unix://")):
        from recai.serve.stores.redis import RedisBackend

        return RedisBackend(text, timeout_s=timeout_s)
    raise ValueError(f"--store {url!r} is not a store URL; use {FORMS}")


def shared(url: str) -> bool:
    """Whether several processes can share the store at ``url`` (all but ``memory``)."""
    return url.strip() not in ("memory", "memory://")
