"""The session store's interface: what every worker needs to serve any session's turn.

A store keeps three things that used to live in one server process, so that several workers (processes
on one machine, or machines) can share them:

- **sessions**: the owner (client address, user id), times, and the dialogue's turns (as JSON);
- **profiles**: liked, disliked, seen and constraints, keyed ``u:<user id>`` for a user (shared by the
  user's sessions) or ``s:<session id>`` for an anonymous session;
- **leases**: the per-session busy flag. A turn holds its session's lease; a second turn, or a reset, is
  refused with 409 while it is held. A lease names its owner (``host/pid/random``) and expires, so a
  worker killed mid-turn cannot lock a session forever: it expires after the turn timeout, and sooner
  when the owner's process is on this machine and no longer alive.

Writes at the end of a turn are *fenced* by the lease: if the lease expired and another worker took the
session meanwhile, the late turn's write is refused rather than clobbering the newer one.

Times are wall-clock seconds (``time.time()``), which processes and machines share; monotonic clocks are
per process. Every backend raises :class:`StoreUnavailableError` (a 503 ``store_unavailable``) when it cannot
answer in time, so a client always gets the documented JSON error body.
"""

from __future__ import annotations

import os
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recai.data.atomic import process_alive
from recai.serve.errors import ApiError

HOST = socket.gethostname()
#: a session touched this recently is not touched again by a read (saves a write per request)
TOUCH_EVERY_S = 5.0

ProfileChange = Callable[[dict[str, Any] | None], dict[str, Any]]


class StoreUnavailableError(ApiError):
    """The session store did not answer (a SQLite file locked past the timeout, Redis down): a 503
    with Retry-After, so clients try again rather than lose the session. Every backend words it the
    same way, so clients and operators see one message.

    Args:
        store: The store as the error may show it (no password).
        timeout_s: How long the backend waited.
        cause: Why it did not answer (the driver's error).
    """

    def __init__(self, store: str, timeout_s: float, cause: str) -> None:
        message = f"the session store ({store}) did not answer within {timeout_s:g} s: {cause}; try again"
        super().__init__(503, "store_unavailable", message, headers={"Retry-After": "2"})


@dataclass
class SessionRecord:
    """One session as stored: everything but its profile (stored under :attr:`profile_key`).

    Attributes:
        id: The session's id.
        user: The long-term profile owner, or None for an anonymous session.
        client: The client address that created it.
        created: When it was created (epoch seconds).
        last_used: When it was last used (epoch seconds).
        turns: Turn dicts without candidate_ids, oldest first.
        last_candidates: The newest turn's candidate_ids.
    """

    id: str
    user: str | None
    client: str
    created: float
    last_used: float
    turns: list[dict[str, Any]] = field(default_factory=list)
    last_candidates: list[Any] = field(default_factory=list)

    @property
    def profile_key(self) -> str:
        return profile_key(self.id, self.user)


@dataclass(frozen=True)
class TurnAppend:
    """What the end of a turn writes to its session: one value for the fenced append, so every backend
    takes the same request and the fields are documented once.

    Attributes:
        session_id: The session the turns belong to.
        owner: The lease owner that ran the turn; the write is refused unless it still holds the lease.
        turns: The new turn dicts without candidate_ids, oldest first.
        last_candidates: The newest turn's candidate_ids (replaces the stored ones).
        max_turns: How many turns the session keeps; older ones drop.
    """

    session_id: str
    owner: str
    turns: list[dict[str, Any]]
    last_candidates: list[Any]
    max_turns: int


def profile_key(session_id: str, user: str | None) -> str:
    return f"u:{user}" if user is not None else f"s:{session_id}"


def new_owner() -> str:
    """A lease owner token: this host, this process, and a random part for this turn."""
    return f"{HOST}/{os.getpid()}/{secrets.token_hex(6)}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process on this machine that no longer runs (killed mid-turn). A process
    on another machine, or one we cannot judge, counts as alive: its lease then ends only by expiry."""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != HOST or not pid_text.isdigit():
        return False
    return not process_alive(int(pid_text))


class SessionBackend(ABC):
    """Where sessions, profiles and leases live, so any worker can serve any session's turn (see the
    module). Implementations: memory, SQLite, Redis.

    Attributes:
        url: The store as ``--store`` names it.
    """

    url: str

    @abstractmethod
    def create(
        self, record: SessionRecord, *, max_sessions: int, max_per_client: int, ttl_s: float
    ) -> str | None:
        """Store a new session, atomically with the limits; ``None``, or ``"total"`` / ``"client"``
        when that limit is reached (nothing is stored). Expired sessions are removed first."""

    @abstractmethod
    def load(self, session_id: str, *, ttl_s: float) -> SessionRecord | None:
        """The session, or None if it does not exist or has been idle for ``ttl_s`` (and is not in a
        turn). Marks it used."""

    @abstractmethod
    def delete(self, session_id: str) -> bool:
        """Remove a session, its turns, its lease and an anonymous session's profile; False if absent."""

    @abstractmethod
    def count(self, *, ttl_s: float) -> int:
        """Live sessions."""

    @abstractmethod
    def acquire(self, session_id: str, owner: str, ttl_s: float) -> bool:
        """Take the session's lease for ``ttl_s`` unless another live owner holds it."""

    @abstractmethod
    def release(self, session_id: str, owner: str) -> None:
        """Give the lease back if ``owner`` still holds it."""

    @abstractmethod
    def append_turns(self, append: TurnAppend) -> bool:
        """Add ``append.turns`` (keeping the last ``append.max_turns``) if ``append.owner`` still holds the
        lease; False if not."""

    @abstractmethod
    def clear_turns(self, session_id: str, owner: str) -> bool:
        """Forget the dialogue if ``owner`` still holds the lease; False if not."""

    @abstractmethod
    def get_profile(self, key: str) -> dict[str, Any] | None:
        """A stored profile, or None."""

    @abstractmethod
    def update_profile(
        self, key: str, change: ProfileChange, on_commit: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Read, change and write a profile atomically (``change`` may run more than once, so it must
        not have side effects); ``on_commit`` runs with the result once it is stored. Returns it."""

    @abstractmethod
    def delete_profile(self, key: str) -> None:
        """Forget a profile (an anonymous session's reset)."""

    def close(self) -> None:  # noqa: B027 - most backends have nothing to close
        """Release connections."""
