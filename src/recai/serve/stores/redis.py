"""Sessions in Redis: several machines behind one load balancer share them.

Keys (all under ``recai:``): ``s:ID`` a hash (user, client, times, the last turn's candidates), ``t:ID``
the turns (a list of JSON), ``l:ID`` the lease (the owner, with an expiry), ``p:KEY`` a profile (JSON),
``z`` and ``zc:CLIENT`` sorted sets of live sessions by last use (for the limits). A session's keys
expire with its idle time; the multi-key steps (create within the limits, a fenced append) are Lua
scripts, so they are atomic; a profile change is an optimistic WATCH/MULTI transaction.

Durability is Redis's: for sessions and acknowledged likes to survive a Redis restart, run it with an
append-only file (``appendonly yes``; ``appendfsync always`` for every like, ``everysec`` loses at most a
second). A Redis that does not answer within ``timeout_s`` is a 503 ``store_unavailable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from recai.serve.stores.base import (
    TOUCH_EVERY_S,
    ProfileChange,
    SessionBackend,
    SessionRecord,
    StoreUnavailableError,
    TurnAppend,
    owner_is_dead,
    profile_key,
)

PREFIX = "recai:"

# KEYS: z, zc, s, t ; ARGV: now, ttl_s, max, max_client, id, user (JSON), client, created, ttl_ms, turns...
_CREATE = """
local cutoff = tonumber(ARGV[1]) - tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 'total' end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'client' end
redis.call('HSET', KEYS[3], 'user', ARGV[6], 'client', ARGV[7], 'created', ARGV[8], 'last_used', ARGV[1],
  'last_candidates', '[]')
redis.call('PEXPIRE', KEYS[3], ARGV[9])
for i = 10, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
if #ARGV >= 10 then redis.call('PEXPIRE', KEYS[4], ARGV[9]) end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return 'ok'
"""
# KEYS: l, s, t, z, zc, p ; ARGV: owner, max_turns, now, ttl_ms, id, last_candidates, turns...
_APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for i = 7, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[2]), -1)
redis.call('HSET', KEYS[2], 'last_used', ARGV[3], 'last_candidates', ARGV[6])
for i = 2, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PEXPIRE', KEYS[6], ARGV[4]) end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
return 1
"""
# KEYS: l, s, t ; ARGV: owner, now
_CLEAR = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[2], 'last_used', ARGV[2], 'last_candidates', '[]')
return 1
"""
# KEYS: l ; ARGV: expected owner ('' for none), new owner, ttl_ms
_TAKE = """
local held = redis.call('GET', KEYS[1])
if (held or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS: l ; ARGV: owner
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend(SessionBackend):
    """Sessions in Redis, so workers on several machines share them.

    Args:
        url: ``redis://HOST:PORT/DB`` (or ``rediss://`` for TLS, ``unix:///path.sock``).
        timeout_s: The longest wait for Redis (then :class:`StoreUnavailableError`).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        try:
            import redis
        except ImportError as exc:
            raise ImportError(
                f"--store {url} needs the redis package: pip install 'recai[serve]' ({exc})"
            ) from None
        self.url, self.timeout_s = url, timeout_s
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
        self._watch_error = redis.exceptions.WatchError
        try:
            self.db = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
            )
        except ValueError as exc:
            raise ValueError(f"--store {url}: {exc}") from None
        self._create = self.db.register_script(_CREATE)
        self._append = self.db.register_script(_APPEND)
        self._clear = self.db.register_script(_CLEAR)
        self._take = self.db.register_script(_TAKE)
        self._release = self.db.register_script(_RELEASE)

    # ------------------------------------------------------------ sessions
    def create(
        self, record: SessionRecord, *, max_sessions: int, max_per_client: int, ttl_s: float
    ) -> str | None:
        keys = [_k("z"), _k("zc:", record.client), _k("s:", record.id), _k("t:", record.id)]
        args = [
            record.last_used, ttl_s, max_sessions, max_per_client, record.id, json.dumps(record.user),
            record.client, record.created, _ms(ttl_s), *[json.dumps(t) for t in record.turns],
        ]  # fmt: skip
        outcome = self._call(self._create, keys=keys, args=args)
        return None if outcome == "ok" else str(outcome)

    def load(self, session_id: str, *, ttl_s: float) -> SessionRecord | None:
        def read() -> tuple[dict[str, str], list[str], str | None]:
            pipe = self.db.pipeline(transaction=True)
            pipe.hgetall(_k("s:", session_id)).lrange(_k("t:", session_id), 0, -1).get(_k("l:", session_id))
            fields, turns, lease = pipe.execute()
            return fields, turns, lease

        fields, turns, lease = self._run(read)
        if not fields:
            return None
        now, last_used = time.time(), float(fields["last_used"])
        if now - last_used > ttl_s and lease is None:
            return None
        record = SessionRecord(
            id=session_id,
            user=json.loads(fields["user"]),
            client=fields["client"],
            created=float(fields["created"]),
            last_used=last_used,
            turns=[json.loads(t) for t in turns],
            last_candidates=json.loads(fields.get("last_candidates", "[]")),
        )
        if now - last_used > TOUCH_EVERY_S:
            self._run(lambda: self._touch(record, now, ttl_s))
        return record

    def delete(self, session_id: str) -> bool:
        def drop() -> bool:
            fields = self.db.hgetall(_k("s:", session_id))
            if not fields:
                return False
            pipe = self.db.pipeline(transaction=True)
            pipe.delete(_k("s:", session_id), _k("t:", session_id), _k("l:", session_id))
            if json.loads(fields["user"]) is None:
                pipe.delete(_k("p:", profile_key(session_id, None)))
            pipe.zrem(_k("z"), session_id).zrem(_k("zc:", fields["client"]), session_id)
            return bool(pipe.execute()[0])

        return bool(self._run(drop))

    def count(self, *, ttl_s: float) -> int:
        return int(self._run(lambda: self.db.zcount(_k("z"), time.time() - ttl_s, "+inf")))

    # ------------------------------------------------------------ leases
    def acquire(self, session_id: str, owner: str, ttl_s: float) -> bool:
        def take() -> bool:
            if not self.db.exists(_k("s:", session_id)):
                return False
            if self.db.set(_k("l:", session_id), owner, nx=True, px=_ms(ttl_s)):
                return True
            held = self.db.get(_k("l:", session_id))
            if held is not None and not owner_is_dead(held):
                return False
            return bool(self._take(keys=[_k("l:", session_id)], args=[held or "", owner, _ms(ttl_s)]))

        return bool(self._run(take))

    def release(self, session_id: str, owner: str) -> None:
        self._call(self._release, keys=[_k("l:", session_id)], args=[owner])

    def append_turns(self, append: TurnAppend) -> bool:
        session_id = append.session_id
        client = self._run(lambda: self.db.hget(_k("s:", session_id), "client"))
        user = self._run(lambda: self.db.hget(_k("s:", session_id), "user"))
        if client is None:
            return False
        anonymous_profile = (
            _k("p:", profile_key(session_id, None)) if json.loads(user or "null") is None else _k("p:-")
        )
        keys = [
            _k("l:", session_id), _k("s:", session_id), _k("t:", session_id), _k("z"), _k("zc:", client),
            anonymous_profile,
        ]  # fmt: skip
        ttl_ms = int(self._run(lambda: self.db.pttl(_k("s:", session_id))))
        args = [
            append.owner, append.max_turns, time.time(), max(ttl_ms, 1000), session_id,
            json.dumps(append.last_candidates), *[json.dumps(t) for t in append.turns],
        ]  # fmt: skip
        return bool(self._call(self._append, keys=keys, args=args))

    def clear_turns(self, session_id: str, owner: str) -> bool:
        keys = [_k("l:", session_id), _k("s:", session_id), _k("t:", session_id)]
        return bool(self._call(self._clear, keys=keys, args=[owner, time.time()]))

    # ------------------------------------------------------------ profiles
    def get_profile(self, key: str) -> dict[str, Any] | None:
        data = self._run(lambda: self.db.get(_k("p:", key)))
        return None if data is None else dict(json.loads(data))

    def update_profile(
        self, key: str, change: ProfileChange, on_commit: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        name = _k("p:", key)
        session_key = _k("s:", key[2:]) if key.startswith("s:") else None

        def attempt() -> dict[str, Any]:
            with self.db.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(name)
                        data = pipe.get(name)
                        new = change(None if data is None else json.loads(data))
                        # an anonymous session's profile lives as long as its session
                        ttl = pipe.pttl(session_key) if session_key is not None else -1
                        pipe.multi()
                        pipe.set(name, json.dumps(new), px=ttl if ttl and ttl > 0 else None)
                        pipe.execute()
                        return new
                    except self._watch_error:  # another worker changed it first: read again
                        continue

        new = self._run(attempt)
        if on_commit is not None:
            on_commit(new)
        return new

    def delete_profile(self, key: str) -> None:
        self._run(lambda: self.db.delete(_k("p:", key)))

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ internals
    def _touch(self, record: SessionRecord, now: float, ttl_s: float) -> None:
        pipe = self.db.pipeline(transaction=False)
        pipe.hset(_k("s:", record.id), "last_used", now)
        for key in (_k("s:", record.id), _k("t:", record.id), _k("p:", profile_key(record.id, None))):
            pipe.pexpire(key, _ms(ttl_s))
        pipe.zadd(_k("z"), {record.id: now}).zadd(_k("zc:", record.client), {record.id: now})
        pipe.pexpire(_k("zc:", record.client), _ms(ttl_s))
        pipe.execute()

    def _call(self, script: Any, *, keys: list[str], args: list[Any]) -> Any:
        return self._run(lambda: script(keys=keys, args=args))

    def _run(self, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except self._errors as exc:
            raise StoreUnavailableError(_safe(self.url), self.timeout_s, type(exc).__name__) from None


def _k(kind: str, name: str = "") -> str:
    return f"{PREFIX}{kind}{name}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _safe(url: str) -> str:
    """The URL without a password (it may appear in an error body)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"
