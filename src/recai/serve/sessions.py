"""Live conversations on the server: each has its own dialogue and candidate state, and sessions of the
same user id share that user's long-term profile (liked, disliked, seen), which is saved atomically.

The state lives in a session store (:mod:`recai.serve.stores`: memory, SQLite or Redis), so any worker
process can serve any turn and sessions can outlive a process. A request loads the session from the
store into a :class:`ServedSession` (its own copy); a turn takes the session's lease first, so one turn
runs per session at a time across every worker (a second one is refused with 409 rather than
interleaving two turns' memory), reloads the session under the lease, and writes back only what it
added: its turns, and the *changes* it made to the profile. Changes, not the whole profile, because a
like sent from another tab during the turn must not be overwritten.

A session id is an unguessable capability (``secrets.token_urlsafe``). Idle sessions end after
``session_ttl_s``; the store is bounded in total and per client address.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from recai.agent import Agent, Session
from recai.agent.memory import Dialogue, Profile, Turn
from recai.serve.errors import ApiError
from recai.serve.stores import MemoryBackend, SessionBackend, SessionRecord, TurnAppend
from recai.serve.stores.base import new_owner, profile_key

log = logging.getLogger("recai.serve")
LEASE_GRACE_S = 10.0  # a lease outlives the turn timeout by this much (the worker notices the timeout late)
_KINDS = ("liked", "disliked", "seen", "constraints")


@dataclass
class ServedSession:
    """One request's copy of a session, so the end of a turn writes back only what the turn added or
    changed.

    Attributes:
        id: The session's id.
        session: The dialogue and profile the agent works on.
        client: The client address that created it.
        created: When it was created (epoch seconds).
        loaded_turns: Turns the store held when the turn began.
        profile_before: The profile the store held when the turn began.
        lease: The owner token while this copy runs a turn.
    """

    id: str
    session: Session
    client: str
    created: float = field(default_factory=time.time)
    loaded_turns: int = 0
    profile_before: dict[str, list[Any]] = field(default_factory=dict)
    lease: str | None = None

    @property
    def user(self) -> str | None:
        return self.session.user

    @property
    def profile_key(self) -> str:
        return profile_key(self.id, self.user)


class SessionStore:
    """Sessions in a :class:`SessionBackend`, with limits, idle expiry and per-session turn leases.

    Args:
        agent: The agent whose sessions these are.
        max_sessions: Live sessions on the server.
        max_per_client: Live sessions per client address.
        ttl_s: Idle time after which a session ends.
        max_turns: Turns a session keeps (older ones drop).
        backend: Where sessions live (default: this process's memory).
        lease_s: How long a turn's lease lasts (the turn timeout and a grace).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        max_sessions: int,
        max_per_client: int,
        ttl_s: float,
        max_turns: int,
        backend: SessionBackend | None = None,
        lease_s: float = 180.0 + LEASE_GRACE_S,
    ) -> None:
        self.agent = agent
        self.max_sessions, self.max_per_client, self.ttl_s = max_sessions, max_per_client, ttl_s
        self.max_turns, self.lease_s = max_turns, lease_s
        self.backend = backend or MemoryBackend()

    def __len__(self) -> int:
        return self.backend.count(ttl_s=self.ttl_s)

    def create(self, client: str, user: str | None = None) -> ServedSession:
        now = time.time()
        record = SessionRecord(
            id=secrets.token_urlsafe(16), user=user, client=client, created=now, last_used=now
        )
        limit = self.backend.create(
            record, max_sessions=self.max_sessions, max_per_client=self.max_per_client, ttl_s=self.ttl_s
        )
        if limit == "total":
            raise ApiError(
                503,
                "too_many_sessions",
                f"the server holds its limit of {self.max_sessions} sessions; end one (DELETE "
                "/sessions/{id}) or try again later",
                headers={"Retry-After": "60"},
            )
        if limit == "client":
            raise ApiError(
                429,
                "too_many_sessions",
                f"this client already has {self.max_per_client} sessions (the limit); end one with DELETE "
                "/sessions/{id}",
            )
        return self._served(record)

    def get(self, session_id: str) -> ServedSession:
        record = self.backend.load(session_id, ttl_s=self.ttl_s)
        if record is None:
            raise ApiError(
                404,
                "session_not_found",
                f"no session '{session_id[:40]}' (it was deleted, expired after "
                f"{self.ttl_s:.0f} s idle, or its store was emptied); create one with POST /sessions",
            )
        return self._served(record)

    def delete(self, session_id: str) -> None:
        if not self.backend.delete(session_id):
            self.get(session_id)  # the 404
            self.backend.delete(session_id)

    def discard(self, session_id: str) -> None:
        """End a session if it still exists (the OpenAI-compatible endpoint's one-request sessions)."""
        self.backend.delete(session_id)

    def reset(self, session_id: str) -> ServedSession:
        """Forget the conversation. A user's long-term profile stays; an anonymous session's goes."""
        served = self.get(session_id)
        owner = new_owner()
        if not self.backend.acquire(session_id, owner, self.lease_s):
            raise ApiError(409, "session_busy", "a turn is running in this session; reset it when it ends")
        try:
            self.backend.clear_turns(session_id, owner)
            if served.user is None:
                self.backend.delete_profile(served.profile_key)
        finally:
            self.backend.release(session_id, owner)
        return self.get(session_id)

    # ------------------------------------------------------------ turns
    def begin_turn(self, served: ServedSession) -> None:
        """Take the session's lease (409 if another turn, on any worker, holds it), then reload the
        session: a turn that another worker finished a moment ago is part of this one's dialogue."""
        owner = new_owner()
        if not self.backend.acquire(served.id, owner, self.lease_s):
            raise ApiError(
                409, "session_busy", "a turn is already running in this session; wait for it to finish"
            )
        try:
            record = self.backend.load(served.id, ttl_s=self.ttl_s)
            if record is None:
                raise ApiError(
                    404, "session_not_found", f"no session '{served.id[:40]}' (it was just deleted)"
                )
            fresh = self._served(record)
        except BaseException:
            self.backend.release(served.id, owner)
            raise
        # turns added to this copy but not stored yet (the OpenAI endpoint's restored history) stay
        unsaved = served.session.dialogue.turns[served.loaded_turns :]
        fresh.session.dialogue.turns.extend(unsaved)
        served.session.dialogue, served.session.profile = fresh.session.dialogue, fresh.session.profile
        served.loaded_turns, served.profile_before = fresh.loaded_turns, fresh.profile_before
        served.lease = owner

    def end_turn(self, served: ServedSession) -> None:
        """Write what the turn added: its turns (only while the lease is still ours) and its profile
        changes, merged into the stored profile. The user's profile file follows."""
        assert served.lease is not None, "end_turn without begin_turn"
        turns = served.session.dialogue.turns
        new = [_turn_dict(t) for t in turns[served.loaded_turns :]]
        candidates = list(turns[-1].candidate_ids) if turns else []
        append = TurnAppend(served.id, served.lease, new, candidates, self.max_turns)
        if new and not self.backend.append_turns(append):
            raise ApiError(
                500,
                "turn_failed",
                "the turn outlived its session lease (another request took the session, or it was deleted); "
                "its answer was not saved",
            )
        before = {k: list(v) for k, v in served.profile_before.items()}
        after = _profile_lists(served.session.profile)
        if after != before:
            updated = self.backend.update_profile(
                served.profile_key,
                lambda stored: _merge(self._initial(served.user, stored), before, after),
                self._persist(served.user),
            )
            served.session.profile = self._with_history(Profile.from_dict(updated), served.user)
        served.loaded_turns = len(turns)
        served.profile_before = _profile_lists(served.session.profile)

    def end_lease(self, served: ServedSession) -> None:
        """Give the lease back (after the turn, saved or not). A store that is down lets it expire."""
        if served.lease is None:
            return
        owner, served.lease = served.lease, None
        try:
            self.backend.release(served.id, owner)
        except ApiError:
            log.warning("lease not released; it expires", extra={"fields": {"session": served.id[:8]}})

    def feedback(self, served: ServedSession, item_id: Any, value: str) -> Profile:
        """Mark an item liked, disliked or neither, in the store (and the user's profile file) before
        answering: an acknowledged like is never lost."""

        def change(stored: dict[str, Any] | None) -> dict[str, Any]:
            profile = self._initial(served.user, stored)
            if value in ("liked", "disliked"):
                profile.add(value, [item_id])
            else:
                profile.liked = [i for i in profile.liked if i != item_id]
                profile.disliked = [i for i in profile.disliked if i != item_id]
            return profile.to_dict()

        updated = self.backend.update_profile(served.profile_key, change, self._persist(served.user))
        served.session.profile = self._with_history(Profile.from_dict(updated), served.user)
        return served.session.profile

    # ------------------------------------------------------------ internals
    def _served(self, record: SessionRecord) -> ServedSession:
        dialogue = Dialogue(budget=self.agent.settings.history_tokens)
        dialogue.turns = [_turn(t) for t in record.turns]
        if dialogue.turns:
            dialogue.turns[-1].candidate_ids = list(record.last_candidates)
        stored = self.backend.get_profile(record.profile_key)
        profile = self._with_history(self._initial(record.user, stored), record.user)
        session = Session(user=record.user, dialogue=dialogue, profile=profile)
        return ServedSession(
            id=record.id,
            session=session,
            client=record.client,
            created=record.created,
            loaded_turns=len(dialogue.turns),
            profile_before=_profile_lists(profile),
        )

    def _initial(self, user: str | None, stored: dict[str, Any] | None) -> Profile:
        """The stored profile; else a user's saved file (the store is new, or was emptied); else empty."""
        if stored is not None:
            return Profile.from_dict(stored)
        return self.agent.profile_store.load(user) if user is not None else Profile()

    def _with_history(self, profile: Profile, user: str | None) -> Profile:
        # a user the dataset's log knows: their logged items rank candidates and count as seen
        if user is not None:
            profile.history = self.agent.logged_history(user)
        return profile

    def _persist(self, user: str | None) -> Any:
        if user is None:
            return None
        return lambda data: self.agent.profile_store.save(user, Profile.from_dict(data))


def _profile_lists(profile: Profile) -> dict[str, list[Any]]:
    return {kind: list(getattr(profile, kind)) for kind in _KINDS}


def _merge(current: Profile, before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, Any]:
    """``current`` with the changes that turned ``before`` into ``after``: removals first, then
    additions (``Profile.add`` moves an item between liked and disliked)."""
    for kind in _KINDS:
        removed = [i for i in before[kind] if i not in after[kind]]
        if removed:
            setattr(current, kind, [i for i in getattr(current, kind) if i not in removed])
    for kind in _KINDS:
        added = [i for i in after[kind] if i not in before[kind]]
        if not added:
            continue
        if kind in ("liked", "disliked"):
            current.add(kind, added)
        else:
            target = getattr(current, kind)
            target.extend(i for i in added if i not in target)
    return current.to_dict()


def _turn_dict(turn: Turn) -> dict[str, Any]:
    data = asdict(turn)
    data.pop("candidate_ids")  # only the newest turn's matter; the store keeps them beside the session
    return data


def _turn(data: dict[str, Any]) -> Turn:
    return Turn(
        user=data["user"],
        reply=data["reply"],
        items=list(data.get("items", [])),
        item_ids=list(data.get("item_ids", [])),
    )
