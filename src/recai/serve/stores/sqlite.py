"""Sessions in one SQLite file: the embedded default, shared by several worker processes on one machine.

WAL mode lets readers run while one writer commits; every write is a short ``BEGIN IMMEDIATE``
transaction, so two workers never interleave a read-modify-write. ``synchronous=NORMAL`` (with WAL): a
committed write (an acknowledged like) is in the WAL file before the reply, so it survives a killed
worker; only a power cut or OS crash can lose the last few commits. ``FULL`` would add an fsync to
every commit, held under the write lock that every worker waits for. A write that cannot get the lock
within ``timeout_s`` is a 503 ``store_unavailable``, not a hang. Each thread has its own connection
(sqlite3 connections are not shared between threads).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT,
    client TEXT NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    last_candidates TEXT NOT NULL DEFAULT '[]',
    lease_owner TEXT,
    lease_expires REAL
);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions (client);
CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions (last_used);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
);
CREATE TABLE IF NOT EXISTS profiles (key TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


class SqliteBackend(SessionBackend):
    """Sessions in one SQLite file, so worker processes on one machine share them (not on a network
    share: SQLite's locks do not hold there).

    Args:
        path: The file (created with its folder).
        timeout_s: The longest wait for a lock (then :class:`StoreUnavailableError`).
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"--store {self.url}: cannot create the folder {self.path.parent}: {exc}"
            ) from None
        with self._write() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    # ------------------------------------------------------------ sessions
    def create(
        self, record: SessionRecord, *, max_sessions: int, max_per_client: int, ttl_s: float
    ) -> str | None:
        with self._write() as db:
            self._expire(db, ttl_s)
            if db.execute("SELECT count(*) FROM sessions").fetchone()[0] >= max_sessions:
                return "total"
            mine = db.execute("SELECT count(*) FROM sessions WHERE client = ?", (record.client,)).fetchone()[
                0
            ]
            if mine >= max_per_client:
                return "client"
            db.execute(
                "INSERT INTO sessions (id, user, client, created, last_used) VALUES (?, ?, ?, ?, ?)",
                (record.id, record.user, record.client, record.created, record.last_used),
            )
            self._insert_turns(db, record.id, 0, record.turns)
            return None

    def load(self, session_id: str, *, ttl_s: float) -> SessionRecord | None:
        now = time.time()
        with self._read() as db:
            row = db.execute(
                "SELECT user, client, created, last_used, last_candidates, lease_expires FROM sessions "
                "WHERE id = ?",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            user, client, created, last_used, candidates, lease_expires = row
            if now - last_used > ttl_s and (lease_expires is None or lease_expires <= now):
                return None  # expired: the next create() removes it
            turns = [
                json.loads(data)
                for (data,) in db.execute(
                    "SELECT data FROM turns WHERE session_id = ? ORDER BY n", (session_id,)
                )
            ]
        if now - last_used > TOUCH_EVERY_S:
            with self._write() as db:
                db.execute("UPDATE sessions SET last_used = ? WHERE id = ?", (now, session_id))
        return SessionRecord(session_id, user, client, created, last_used, turns, json.loads(candidates))

    def delete(self, session_id: str) -> bool:
        with self._write() as db:
            return self._drop(db, [session_id]) > 0

    def count(self, *, ttl_s: float) -> int:
        now = time.time()
        with self._read() as db:
            return int(
                db.execute(
                    "SELECT count(*) FROM sessions WHERE last_used >= ? OR lease_expires > ?",
                    (now - ttl_s, now),
                ).fetchone()[0]
            )

    # ------------------------------------------------------------ leases
    def acquire(self, session_id: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT lease_owner, lease_expires FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                return False
            held, expires = row
            if held is not None and expires > now and not owner_is_dead(held):
                return False
            db.execute(
                "UPDATE sessions SET lease_owner = ?, lease_expires = ?, last_used = ? WHERE id = ?",
                (owner, now + ttl_s, now, session_id),
            )
            return True

    def release(self, session_id: str, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE sessions SET lease_owner = NULL, lease_expires = NULL "
                "WHERE id = ? AND lease_owner = ?",
                (session_id, owner),
            )

    def append_turns(self, append: TurnAppend) -> bool:
        session_id = append.session_id
        with self._write() as db:
            if not self._holds(db, session_id, append.owner):
                return False
            last = db.execute("SELECT max(n) FROM turns WHERE session_id = ?", (session_id,)).fetchone()[0]
            first = 0 if last is None else last + 1
            self._insert_turns(db, session_id, first, append.turns)
            db.execute(
                "DELETE FROM turns WHERE session_id = ? AND n < ?",
                (session_id, first + len(append.turns) - append.max_turns),
            )
            db.execute(
                "UPDATE sessions SET last_candidates = ?, last_used = ? WHERE id = ?",
                (json.dumps(append.last_candidates), time.time(), session_id),
            )
            return True

    def clear_turns(self, session_id: str, owner: str) -> bool:
        with self._write() as db:
            if not self._holds(db, session_id, owner):
                return False
            db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            db.execute(
                "UPDATE sessions SET last_candidates = '[]', last_used = ? WHERE id = ?",
                (time.time(), session_id),
            )
            return True

    # ------------------------------------------------------------ profiles
    def get_profile(self, key: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT data FROM profiles WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def update_profile(
        self, key: str, change: ProfileChange, on_commit: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        with self._write() as db:
            row = db.execute("SELECT data FROM profiles WHERE key = ?", (key,)).fetchone()
            new = change(None if row is None else json.loads(row[0]))
            db.execute(
                "INSERT INTO profiles (key, data) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                (key, json.dumps(new)),
            )
            if on_commit is not None:  # still inside the write lock: the file follows the store's order
                on_commit(new)
        return new

    def delete_profile(self, key: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM profiles WHERE key = ?", (key,))

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.ProgrammingError):  # another thread is still using it
                    connection.close()
            self._connections.clear()
        self._local = threading.local()

    # ------------------------------------------------------------ internals
    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        try:
            yield db
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked, busy, disk I/O
            self._rollback(db)
            raise self._unavailable(exc) from None
        except BaseException:
            self._rollback(db)
            raise

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailableError:
        return StoreUnavailableError(self.url, self.timeout_s, str(exc))

    @staticmethod
    def _holds(db: sqlite3.Connection, session_id: str, owner: str) -> bool:
        row = db.execute("SELECT lease_owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None and row[0] == owner

    @staticmethod
    def _insert_turns(
        db: sqlite3.Connection, session_id: str, first: int, turns: list[dict[str, Any]]
    ) -> None:
        db.executemany(
            "INSERT INTO turns (session_id, n, data) VALUES (?, ?, ?)",
            [(session_id, first + i, json.dumps(turn)) for i, turn in enumerate(turns)],
        )

    def _expire(self, db: sqlite3.Connection, ttl_s: float) -> None:
        now = time.time()
        gone = [
            row[0]
            for row in db.execute(
                "SELECT id FROM sessions WHERE last_used < ? "
                "AND (lease_expires IS NULL OR lease_expires <= ?)",
                (now - ttl_s, now),
            )
        ]
        self._drop(db, gone)

    @staticmethod
    def _drop(db: sqlite3.Connection, ids: list[str]) -> int:
        dropped = 0
        for session_id in ids:
            row = db.execute("DELETE FROM sessions WHERE id = ? RETURNING user", (session_id,)).fetchone()
            if row is None:
                continue
            dropped += 1
            db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            if row[0] is None:
                db.execute("DELETE FROM profiles WHERE key = ?", (profile_key(session_id, None),))
        return dropped
