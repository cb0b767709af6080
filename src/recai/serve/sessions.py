"""Live conversations on the server: each has its own dialogue and candidate state, and sessions of the
same user id share that user's long-term profile (liked, disliked, seen), which is saved atomically.

A session id is an unguessable capability (``secrets.token_urlsafe``). One turn runs per session at a
time (a second one is refused with 409 rather than interleaving two turns' memory). Idle sessions end
after ``session_ttl_s``; the store is bounded in total and per client address.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from recai.agent import Agent, Session
from recai.agent.memory import Dialogue, Profile
from recai.serve.errors import ApiError


@dataclass
class ServedSession:
    id: str
    session: Session
    client: str
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    busy: threading.Lock = field(default_factory=threading.Lock)

    @property
    def user(self) -> str | None:
        return self.session.user

    def touch(self) -> None:
        self.last_used = time.monotonic()


class SessionStore:
    """Thread-safe map of session id to ServedSession, with limits and idle expiry."""

    def __init__(
        self,
        agent: Agent,
        *,
        max_sessions: int,
        max_per_client: int,
        ttl_s: float,
        max_turns: int,
    ) -> None:
        self.agent = agent
        self.max_sessions, self.max_per_client, self.ttl_s = max_sessions, max_per_client, ttl_s
        self.max_turns = max_turns
        self._lock = threading.Lock()
        self._sessions: dict[str, ServedSession] = {}
        # One live Profile object per user id, shared by that user's sessions and dropped with the last one.
        self._profiles: weakref.WeakValueDictionary[str, Profile] = weakref.WeakValueDictionary()
        self._user_locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(self, client: str, user: str | None = None) -> ServedSession:
        with self._lock:
            self._expire()
            if len(self._sessions) >= self.max_sessions:
                raise ApiError(
                    503,
                    "too_many_sessions",
                    f"the server holds its limit of {self.max_sessions} sessions; end one (DELETE "
                    "/sessions/{id}) or try again later",
                    headers={"Retry-After": "60"},
                )
            mine = sum(1 for s in self._sessions.values() if s.client == client)
            if mine >= self.max_per_client:
                raise ApiError(
                    429,
                    "too_many_sessions",
                    f"this client already has {mine} sessions (the limit is {self.max_per_client}); "
                    "end one with DELETE /sessions/{id}",
                )
            session = Session(
                user=user,
                dialogue=Dialogue(budget=self.agent.settings.history_tokens),
                profile=self._profile(user),
            )
            served = ServedSession(id=secrets.token_urlsafe(16), session=session, client=client)
            self._sessions[served.id] = served
            return served

    def get(self, session_id: str) -> ServedSession:
        with self._lock:
            served = self._sessions.get(session_id)
            if served is None or self._expired(served):
                self._sessions.pop(session_id, None)
                raise ApiError(
                    404,
                    "session_not_found",
                    f"no session '{session_id[:40]}' (it was deleted, expired after "
                    f"{self.ttl_s:.0f} s idle, or the server restarted); create one with POST /sessions",
                )
            served.touch()
            return served

    def delete(self, session_id: str) -> None:
        served = self.get(session_id)
        with self._lock:
            self._sessions.pop(served.id, None)

    def discard(self, session_id: str) -> None:
        """End a session if it still exists (the OpenAI-compatible endpoint's one-request sessions)."""
        with self._lock:
            self._sessions.pop(session_id, None)

    def reset(self, session_id: str) -> ServedSession:
        """Forget the conversation. A user's long-term profile stays; an anonymous session's goes."""
        served = self.get(session_id)
        if not served.busy.acquire(blocking=False):
            raise ApiError(409, "session_busy", "a turn is running in this session; reset it when it ends")
        try:
            served.session.dialogue = Dialogue(budget=self.agent.settings.history_tokens)
            if served.user is None:
                served.session.profile = Profile()
        finally:
            served.busy.release()
        return served

    def trim(self, served: ServedSession) -> None:
        """Keep the last ``max_turns`` turns (prompts only ever use the recent ones)."""
        turns = served.session.dialogue.turns
        if len(turns) > self.max_turns:
            del turns[: len(turns) - self.max_turns]

    def feedback(self, served: ServedSession, item_id: Any, value: str) -> Profile:
        """Mark an item liked, disliked or neither, and save the user's profile."""
        with self._user_lock(served.user):
            profile = served.session.profile
            if value in ("liked", "disliked"):
                profile.add(value, [item_id])
            else:
                profile.liked = [i for i in profile.liked if i != item_id]
                profile.disliked = [i for i in profile.disliked if i != item_id]
            if served.user is not None:
                self.agent.profile_store.save(served.user, profile)
        return profile

    # ------------------------------------------------------------ internals
    def _profile(self, user: str | None) -> Profile:
        if user is None:
            return Profile()
        profile = self._profiles.get(user)
        if profile is None:
            profile = self.agent.profile_store.load(user)
            # a user the dataset's log knows: their logged items rank candidates and count as seen
            profile.history = self.agent.logged_history(user)
            self._profiles[user] = profile
        return profile

    def _user_lock(self, user: str | None) -> Any:
        key = user if user is not None else ""
        with self._lock:
            lock = self._user_locks.get(key)
            if lock is None:
                lock = _Lock()
                self._user_locks[key] = lock
            return lock

    def _expired(self, served: ServedSession) -> bool:
        return time.monotonic() - served.last_used > self.ttl_s and not served.busy.locked()

    def _expire(self) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s)]:
            del self._sessions[key]


class _Lock:
    """A weak-referenceable lock (``threading.Lock`` objects cannot be weakly referenced)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
