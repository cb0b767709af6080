"""Sessions in this process's memory: the default for tests and for one worker that may forget its
sessions on restart. Records are kept as JSON-shaped copies, exactly as the shared stores keep them, so
the same conformance suite holds for all three backends."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from recai.serve.stores.base import (
    TOUCH_EVERY_S,
    ProfileChange,
    SessionBackend,
    SessionRecord,
    TurnAppend,
    owner_is_dead,
    profile_key,
)


class MemoryBackend(SessionBackend):
    """A dict behind one lock: the default for one process, with nothing to set up.

    It cannot be shared between processes (``--workers`` > 1 refuses it).
    """

    url = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionRecord] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # session id -> (owner, expires)
        self._profiles: dict[str, dict[str, Any]] = {}

    def create(
        self, record: SessionRecord, *, max_sessions: int, max_per_client: int, ttl_s: float
    ) -> str | None:
        with self._lock:
            self._expire(ttl_s)
            if len(self._sessions) >= max_sessions:
                return "total"
            if sum(1 for s in self._sessions.values() if s.client == record.client) >= max_per_client:
                return "client"
            self._sessions[record.id] = copy.deepcopy(record)
            return None

    def load(self, session_id: str, *, ttl_s: float) -> SessionRecord | None:
        now = time.time()
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None:
                return None
            if self._expired(record, now, ttl_s):
                self._drop(session_id)
                return None
            if now - record.last_used > TOUCH_EVERY_S:
                record.last_used = now
            return copy.deepcopy(record)

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._drop(session_id)

    def count(self, *, ttl_s: float) -> int:
        now = time.time()
        with self._lock:
            return sum(1 for s in self._sessions.values() if not self._expired(s, now, ttl_s))

    def acquire(self, session_id: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        with self._lock:
            if session_id not in self._sessions:
                return False
            held = self._leases.get(session_id)
            if held is not None and held[1] > now and not owner_is_dead(held[0]):
                return False
            self._leases[session_id] = (owner, now + ttl_s)
            return True

    def release(self, session_id: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(session_id, ("", 0.0))[0] == owner:
                del self._leases[session_id]

    def append_turns(self, append: TurnAppend) -> bool:
        with self._lock:
            record = self._sessions.get(append.session_id)
            if record is None or self._leases.get(append.session_id, ("", 0.0))[0] != append.owner:
                return False
            kept = [*record.turns, *copy.deepcopy(append.turns)][-append.max_turns :]
            self._sessions[append.session_id] = replace(
                record, turns=kept, last_candidates=list(append.last_candidates), last_used=time.time()
            )
            return True

    def clear_turns(self, session_id: str, owner: str) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or self._leases.get(session_id, ("", 0.0))[0] != owner:
                return False
            record.turns, record.last_candidates, record.last_used = [], [], time.time()
            return True

    def get_profile(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._profiles.get(key))

    def update_profile(
        self, key: str, change: ProfileChange, on_commit: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        with self._lock:
            new = change(copy.deepcopy(self._profiles.get(key)))
            self._profiles[key] = copy.deepcopy(new)
            if on_commit is not None:
                on_commit(new)
            return new

    def delete_profile(self, key: str) -> None:
        with self._lock:
            self._profiles.pop(key, None)

    # ------------------------------------------------------------ internals
    def _expired(self, record: SessionRecord, now: float, ttl_s: float) -> bool:
        if now - record.last_used <= ttl_s:
            return False
        held = self._leases.get(record.id)
        return held is None or held[1] <= now

    def _expire(self, ttl_s: float) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if self._expired(s, now, ttl_s)]:
            self._drop(key)

    def _drop(self, session_id: str) -> bool:
        record = self._sessions.pop(session_id, None)
        self._leases.pop(session_id, None)
        if record is not None and record.user is None:
            self._profiles.pop(profile_key(session_id, None), None)
        return record is not None
