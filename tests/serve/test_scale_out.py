"""Several server processes over one session store (SQLite, Redis): any worker serves any turn, a second
turn of a session is 409 on every worker, sessions survive a restart, a worker killed with SIGKILL in
the middle of a turn leaves its session usable from another, no acknowledged like is lost when Redis
restarts under load, and a store that does not answer is a 503 with the JSON error body."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recai.data import Dataset
from tests.serve.live import free_port

pytestmark = pytest.mark.network  # loopback only
ROOT = Path(__file__).resolve().parents[2]
DELAY_S = 0.6  # per stand-in call; a turn makes two


class Worker:
    """`python -m tests.serve.worker_main` on a free port."""

    def __init__(self, data: Path, profiles: Path, store: str, log: Path) -> None:
        self.data, self.profiles, self.store, self.log_path = data, profiles, store, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        args = [sys.executable, "-m", "tests.serve.worker_main", str(self.data), str(self.profiles),
                str(self.port), self.store, str(DELAY_S)]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ
            )
        return self

    def wait_ready(self) -> Worker:
        deadline = time.monotonic() + 60
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)  # no cleanup, no lease release

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None:
            self.process.wait(15)


@pytest.fixture
def workers(dataset: Dataset, tmp_path: Path) -> Iterator[Callable[..., list[Worker]]]:
    """``workers(store, n)`` starts n worker processes (in parallel) sharing ``store``."""
    folder = dataset.save(tmp_path / "tiny")
    started: list[Worker] = []

    def start(store: str, n: int = 2) -> list[Worker]:
        made = [
            Worker(folder, tmp_path / "profiles", store, tmp_path / f"worker-{len(started) + i}.log").start()
            for i in range(n)
        ]
        started.extend(made)
        return [w.wait_ready() for w in made]

    yield start
    for worker in started:
        worker.stop()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.sqlite3'}"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_url(tmp_path) if request.param == "sqlite" else str(request.getfixturevalue("redis_url"))


def streamed_turn(url: str, session_id: str, message: str, seen: list[str]) -> None:
    """A streamed turn whose event names land in ``seen`` as they arrive; a broken connection (the
    worker was killed) ends it with ``"broken"``."""
    try:
        with httpx.stream(
            "POST",
            f"{url}/chat",
            json={"session_id": session_id, "message": message, "stream": True},
            timeout=30,
        ) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
    except httpx.HTTPError:
        seen.append("broken")


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_any_worker_serves_any_turn_and_a_busy_session_is_409_on_all(
    workers: Callable[..., list[Worker]], store_url: str
) -> None:
    a, b = workers(store_url)
    sid = httpx.post(f"{a.url}/sessions", json={"user": "ann"}).json()["session_id"]
    seen: list[str] = []
    turn = threading.Thread(target=streamed_turn, args=(a.url, sid, "a heist film like Heat", seen))
    turn.start()
    wait_for(lambda: "session" in seen)
    for url in (b.url, a.url):
        busy = httpx.post(f"{url}/chat", json={"session_id": sid, "message": "anything else?"}, timeout=30)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "session_busy"
    reset = httpx.post(f"{b.url}/sessions/{sid}/reset")
    assert reset.status_code == 409
    turn.join()
    assert seen[-1] == "done"
    second = httpx.post(f"{b.url}/chat", json={"session_id": sid, "message": "something French"}, timeout=30)
    assert second.status_code == 200, second.text
    view = httpx.get(f"{a.url}/sessions/{sid}").json()
    assert [t["user"] for t in view["turns"]] == ["a heist film like Heat", "something French"]
    assert httpx.delete(f"{b.url}/sessions/{sid}").status_code == 204
    assert httpx.get(f"{a.url}/sessions/{sid}").status_code == 404


def test_a_worker_killed_mid_turn_loses_no_acknowledged_like(
    workers: Callable[..., list[Worker]], tmp_path: Path
) -> None:
    a, b = workers(sqlite_url(tmp_path))
    sid = httpx.post(f"{a.url}/sessions", json={"user": "bob"}).json()["session_id"]
    assert (
        httpx.post(f"{a.url}/sessions/{sid}/feedback", json={"item_id": 12, "value": "liked"}).status_code
        == 200
    )
    seen: list[str] = []
    turn = threading.Thread(target=streamed_turn, args=(a.url, sid, "Pulp Fiction", seen))
    turn.start()
    wait_for(lambda: "items" in seen)  # the planner and the tools are done; the responder is running
    liked = httpx.post(f"{b.url}/sessions/{sid}/feedback", json={"item_id": 13, "value": "liked"})
    assert liked.status_code == 200  # feedback never waits for a turn
    a.kill()
    turn.join()
    assert "done" not in seen and seen[-1] == "broken"  # the turn died with its worker
    # the dead worker's lease does not lock the session: the next turn runs on the other worker
    after = httpx.post(f"{b.url}/chat", json={"session_id": sid, "message": "something French"}, timeout=30)
    assert after.status_code == 200, after.text
    view = httpx.get(f"{b.url}/sessions/{sid}").json()
    assert [t["user"] for t in view["turns"]] == ["something French"]  # the killed turn was never saved
    assert {12, 13} <= set(view["profile"]["liked"])
    assert {12, 13} <= set(httpx.post(f"{b.url}/sessions", json={"user": "bob"}).json()["profile"]["liked"])


def test_sessions_survive_a_restart(workers: Callable[..., list[Worker]], tmp_path: Path) -> None:
    (a,) = workers(sqlite_url(tmp_path), 1)
    sid = httpx.post(f"{a.url}/sessions", json={}).json()["session_id"]
    assert (
        httpx.post(f"{a.url}/chat", json={"session_id": sid, "message": "Heat"}, timeout=30).status_code
        == 200
    )
    assert (
        httpx.post(f"{a.url}/sessions/{sid}/feedback", json={"item_id": 16, "value": "disliked"}).status_code
        == 200
    )
    a.stop()
    (again,) = workers(sqlite_url(tmp_path), 1)
    view = httpx.get(f"{again.url}/sessions/{sid}").json()
    assert [t["user"] for t in view["turns"]] == ["Heat"] and view["profile"]["disliked"] == [16]
    follow_up = httpx.post(f"{again.url}/chat", json={"session_id": sid, "message": "shorter"}, timeout=30)
    assert follow_up.status_code == 200
    assert 16 not in follow_up.json()["trace"]["items"]  # the anonymous session's dislike still ranks


def test_redis_restarted_under_load_loses_no_acknowledged_like(
    workers: Callable[..., list[Worker]], redis_server: Any, redis_url: str
) -> None:
    a, b = workers(redis_url)
    users = [f"user-{n}" for n in range(4)]
    sessions = {u: httpx.post(f"{a.url}/sessions", json={"user": u}).json()["session_id"] for u in users}
    acknowledged: dict[str, set[int]] = {u: set() for u in users}
    statuses: list[tuple[int, str]] = []
    stop = threading.Event()

    def load(user: str, n: int) -> None:
        items = [10, 11, 12, 13, 14, 15, 16, 17]
        while not stop.is_set():
            url = (a, b)[n % 2].url
            n += 1
            try:
                liked = httpx.post(
                    f"{url}/sessions/{sessions[user]}/feedback",
                    json={"item_id": items[n % 8], "value": "liked"},
                    timeout=10,
                )
            except httpx.HTTPError as exc:
                statuses.append((0, repr(exc)))
                continue
            code = liked.json().get("error", {}).get("code", "") if liked.status_code != 200 else ""
            statuses.append((liked.status_code, code))
            if liked.status_code == 200:
                acknowledged[user].add(items[n % 8])
            else:
                time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(u, i)) for i, u in enumerate(users)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    redis_server.stop()
    time.sleep(0.7)
    redis_server.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert {status for status, _ in statuses} <= {200, 503}, statuses[:20]
    assert {code for status, code in statuses if status == 503} == {"store_unavailable"}
    assert statuses.count((200, "")) > 20 and statuses[-1] == (200, "")  # it recovered by itself
    for user in users:
        view = httpx.get(f"{b.url}/sessions/{sessions[user]}").json()  # sessions survived (append-only file)
        assert acknowledged[user] <= set(view["profile"]["liked"]), user
