"""One conformance suite for every session store (memory, SQLite, Redis): limits, expiry, leases with
owners and expiry, fenced writes, atomic profile changes, and 503 when the store does not answer."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recai.serve.stores import SessionBackend, SessionRecord, StoreUnavailableError, TurnAppend, open_store
from recai.serve.stores.base import HOST, new_owner, owner_is_dead
from tests.serve.live import free_port

KINDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionBackend]:
    if request.param == "memory":
        backend = open_store("memory")
    elif request.param == "sqlite":
        backend = open_store(f"sqlite:///{tmp_path / 'sessions.db'}", timeout_s=5.0)
    else:
        backend = open_store(request.getfixturevalue("redis_url"), timeout_s=1.0)
    yield backend
    backend.close()


def record(
    session_id: str, client: str = "1.2.3.4", user: str | None = None, age_s: float = 0.0
) -> SessionRecord:
    now = time.time() - age_s
    return SessionRecord(id=session_id, user=user, client=client, created=now, last_used=now)


def make(store: SessionBackend, *ids: str, **kw: Any) -> None:
    for session_id in ids:
        assert store.create(record(session_id, **kw), max_sessions=100, max_per_client=100, ttl_s=60) is None


def dead_owner() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{HOST}/{child.pid}/0"


def test_a_session_round_trips(store: SessionBackend) -> None:
    make(store, "s1", user="ann")
    loaded = store.load("s1", ttl_s=60)
    assert loaded is not None and (loaded.id, loaded.user, loaded.client, loaded.turns) == (
        "s1",
        "ann",
        "1.2.3.4",
        [],
    )
    assert store.load("nope", ttl_s=60) is None
    assert store.count(ttl_s=60) == 1


def test_limits_hold_in_total_and_per_client(store: SessionBackend) -> None:
    limits = {"max_sessions": 3, "max_per_client": 2, "ttl_s": 60}
    assert store.create(record("a"), **limits) is None
    assert store.create(record("b"), **limits) is None
    assert store.create(record("c"), **limits) == "client"
    assert store.create(record("c", client="5.6.7.8"), **limits) is None
    assert store.create(record("d", client="9.9.9.9"), **limits) == "total"
    assert store.load("d", ttl_s=60) is None and store.count(ttl_s=60) == 3


def test_idle_sessions_expire_unless_a_turn_holds_them(store: SessionBackend) -> None:
    make(store, "old", age_s=120)
    make(store, "busy", age_s=120)
    assert store.acquire("busy", new_owner(), ttl_s=30)
    assert store.load("old", ttl_s=60) is None
    assert store.load("busy", ttl_s=60) is not None
    assert not store.acquire("busy", new_owner(), ttl_s=30)


def test_a_lease_has_one_owner_and_ends_by_release_or_expiry(store: SessionBackend) -> None:
    make(store, "s")
    first, second = new_owner(), new_owner()
    assert store.acquire("s", first, ttl_s=30)
    assert not store.acquire("s", second, ttl_s=30)
    store.release("s", second)  # not the holder: nothing happens
    assert not store.acquire("s", second, ttl_s=30)
    store.release("s", first)
    assert store.acquire("s", second, ttl_s=0.2)
    time.sleep(0.35)
    assert store.acquire("s", first, ttl_s=30)  # the second one's lease expired
    assert not store.acquire("missing", first, ttl_s=30)


def test_a_lease_whose_owner_died_on_this_machine_is_free(store: SessionBackend) -> None:
    make(store, "s")
    gone = dead_owner()
    assert owner_is_dead(gone) and not owner_is_dead(new_owner())
    assert not owner_is_dead(f"another-host/{1}/0")  # another machine's: only expiry frees it
    assert store.acquire("s", gone, ttl_s=300)
    assert store.acquire("s", new_owner(), ttl_s=300)


def test_turns_are_written_only_by_the_lease_holder_and_the_newest_are_kept(store: SessionBackend) -> None:
    make(store, "s")
    owner = new_owner()
    before_the_lease = TurnAppend("s", owner, [{"user": "x", "reply": "y"}], [], max_turns=3)
    assert not store.append_turns(before_the_lease)
    assert store.acquire("s", owner, ttl_s=30)
    for n in range(5):
        assert store.append_turns(
            TurnAppend("s", owner, [{"user": f"u{n}", "reply": "r"}], [n, "x"], max_turns=3)
        )
    loaded = store.load("s", ttl_s=60)
    assert loaded is not None and [t["user"] for t in loaded.turns] == ["u2", "u3", "u4"]
    assert loaded.last_candidates == [4, "x"]
    late = TurnAppend("s", new_owner(), [{"user": "late", "reply": ""}], [], max_turns=3)
    assert not store.append_turns(late)
    assert store.clear_turns("s", owner)
    loaded = store.load("s", ttl_s=60)
    assert loaded is not None and loaded.turns == [] and loaded.last_candidates == []
    assert not store.clear_turns("s", new_owner())


def test_profile_changes_are_atomic_across_threads(store: SessionBackend) -> None:
    committed: list[int] = []

    def like(item: int) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
        return lambda stored: {**(stored or {}), "liked": [*(stored or {}).get("liked", []), item]}

    def worker(offset: int) -> None:
        for n in range(15):
            store.update_profile("u:ann", like(offset + n), lambda data: committed.append(len(data["liked"])))

    threads = [threading.Thread(target=worker, args=(100 * t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    profile = store.get_profile("u:ann")
    assert profile is not None and sorted(profile["liked"]) == sorted(
        100 * t + n for t in range(6) for n in range(15)
    )
    assert len(committed) == 90 and max(committed) == 90
    assert store.get_profile("u:bob") is None


def test_deleting_a_session_takes_its_turns_lease_and_anonymous_profile(store: SessionBackend) -> None:
    make(store, "anon")
    make(store, "named", user="ann")
    for session_id, key in (("anon", "s:anon"), ("named", "u:ann")):
        owner = new_owner()
        assert store.acquire(session_id, owner, ttl_s=30)
        store.append_turns(TurnAppend(session_id, owner, [{"user": "u", "reply": "r"}], [], max_turns=5))
        store.update_profile(key, lambda stored: {"liked": [1]})
        assert store.delete(session_id)
        assert store.load(session_id, ttl_s=60) is None and not store.delete(session_id)
    assert store.get_profile("s:anon") is None
    assert store.get_profile("u:ann") == {"liked": [1]}  # a user's profile outlives the session
    make(store, "anon")  # the same id again starts empty
    loaded = store.load("anon", ttl_s=60)
    assert loaded is not None and loaded.turns == [] and store.acquire("anon", new_owner(), ttl_s=30)


def test_a_locked_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = open_store(f"sqlite:///{path}", timeout_s=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            store.create(record("s"), max_sessions=10, max_per_client=10, ttl_s=60)
        assert raised.value.status == 503 and raised.value.code == "store_unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    make(store, "s")  # and it recovers
    store.close()


def test_an_unreachable_redis_is_store_unavailable() -> None:
    pytest.importorskip("redis")
    store = open_store(f"redis://:secret@127.0.0.1:{free_port()}/0", timeout_s=0.3)
    with pytest.raises(StoreUnavailableError) as raised:
        store.load("s", ttl_s=60)
    assert "secret" not in raised.value.message and "***@127.0.0.1" in raised.value.message


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgres://db/x", "not a store URL"),
        ("sqlite://x.db", "sqlite:///PATH"),
        ("sqlite:///", "sqlite:///PATH"),
    ],
)
def test_a_bad_url_names_the_store_option(url: str, named: str) -> None:
    with pytest.raises(ValueError, match="--store") as raised:
        open_store(url)
    assert named in str(raised.value)


@pytest.mark.anyio
async def test_the_api_answers_503_store_unavailable_with_the_json_body(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    pytest.importorskip("redis")
    async with make_client(store=f"redis://127.0.0.1:{free_port()}/0", store_timeout_s=0.3) as (client, _):
        for response in (
            await client.post("/sessions", json={}),
            await client.post("/chat", json={"message": "Heat"}),
            await client.get("/sessions/abc"),
            await client.get("/health"),  # a load balancer takes this worker out
        ):
            assert response.status_code == 503 and response.headers["Retry-After"] == "2"
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("server_error", "store_unavailable")
            assert "did not answer within 0.3 s" in error["message"]
    path = tmp_path / "s.db"
    async with make_client(store=f"sqlite:///{path}", store_timeout_s=0.2) as (client, _):
        sid = (await client.post("/sessions", json={})).json()["session_id"]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            liked = await client.post(f"/sessions/{sid}/feedback", json={"item_id": 12, "value": "liked"})
            assert liked.status_code == 503 and liked.json()["error"]["code"] == "store_unavailable"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        liked = await client.post(f"/sessions/{sid}/feedback", json={"item_id": 12, "value": "liked"})
        assert liked.status_code == 200 and liked.json()["liked"] == [12]
