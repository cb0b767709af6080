"""Hostile inputs against `recai serve` and the profile store (the hardening issue's findings 2, 3, 8, 9
and 10, and more of their kind). Each test failed on 5308919.

The app runs in-process (httpx over ASGI) with the stand-in model, except where the finding lives in the
HTTP server itself (forwarded headers, a body shorter than its Content-Length): there a real uvicorn
server, started exactly as `recai serve` starts it, listens on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from recai.agent import Agent
from recai.agent.memory import Profile, ProfileStore
from recai.data import Dataset
from recai.serve import ServeSettings, create_app
from recai.serve.stand_in import stand_in_model
from tests.serve.conftest import build_agent
from tests.serve.live import free_port

Client = Callable[..., Any]

# ids the store used to map to one file (carol_x.json), and ids it could not store at all
COLLIDING = ["carol/x", "carol?x", "carol_x", "carol x", "carol\0x", "Carol_x", "carol\\x", "../carol_x"]
LONG = "😀" * 100  # 400 bytes: "File name too long"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_client(dataset: Dataset, tmp_path: Path) -> Client:
    """``make_client(**settings)``: an async context manager yielding (client, agent); a server error is
    answered as the app answers it (not raised into the test), because that answer is what is tested."""

    @asynccontextmanager
    async def made(**settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Agent]]:
        agent = build_agent(dataset, stand_in_model(), tmp_path / "profiles")
        app = create_app(agent, ServeSettings(**settings))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://recai.test", timeout=30)
        try:
            yield client, agent
        finally:
            await client.aclose()
            app.state.recai.runner.close(grace_s=5)

    return made


def error_of(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The documented error body: JSON, {"error": {"type", "code", "message"[, "details"]}}."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and {"type", "code", "message"} <= set(body["error"]), body
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


def raw_json(text: str) -> dict[str, Any]:
    """Keyword arguments sending ``text`` as the body verbatim (httpx would refuse a lone surrogate)."""
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


# ------------------------------------------------------------------ 2: profile files collide
def test_ids_that_shared_a_profile_file_get_one_each(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    ids = [*COLLIDING, LONG, "x" * 5000, "carol\ud800x", "con", "CON", "alice", ".", "..", ""]
    for n, user in enumerate(ids):
        store.save(user, Profile(liked=[n]))
    reopened = ProfileStore(tmp_path)
    assert [reopened.load(user).liked for user in ids] == [[n] for n in range(len(ids))]
    files = sorted(tmp_path.iterdir())
    assert len(files) == len(ids) and all(f.parent == tmp_path for f in files)
    stored = {json.loads(f.read_text(encoding="utf-8"))["user"] for f in files}
    assert stored == set(ids)  # every file names its owner
    assert (tmp_path / "alice.json").exists()  # simple ids keep readable names


def test_a_file_that_names_another_id_is_refused(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.save("carol/x", Profile(liked=[1]))
    store.save("mallory", Profile(liked=[2]))
    (path,) = [p for p in tmp_path.iterdir() if p.name != "mallory.json"]
    path.write_text((tmp_path / "mallory.json").read_text())  # mallory's file copied over carol's
    with pytest.raises(ValueError, match="belongs to another user id"):  # ProfileError
        store.load("carol/x")


def test_files_of_the_old_naming_load_only_for_the_id_that_is_their_name(tmp_path: Path) -> None:
    (tmp_path / "carol_x.json").write_text(json.dumps({"liked": [16], "disliked": [10]}))
    (tmp_path / "Bob.json").write_text(json.dumps({"liked": [12]}))
    store = ProfileStore(tmp_path)
    assert store.load("carol_x").liked == [16]  # written by the old scheme under this very name
    for other in ("carol/x", "carol x", "carol?x", "carol\0x"):  # the old scheme rewrote these: no guess
        assert store.load(other) == Profile()
    bob = store.load("Bob")
    assert bob.liked == [12]
    bob.add("liked", [13])
    store.save("Bob", bob)  # now in a file of its own, which names its owner
    assert ProfileStore(tmp_path).load("Bob").liked == [12, 13]
    assert json.loads((tmp_path / "Bob.json").read_text()) == {"liked": [12]}  # left as it was
    assert store.load("bob") == Profile()  # another id, even on a case-insensitive file system


@pytest.mark.anyio
async def test_colliding_and_long_ids_over_http(make_client: Client, tmp_path: Path) -> None:
    async with make_client() as (client, _):
        for item, user in zip([10, 11, 12, 13, 14, 15, 16, 17], COLLIDING, strict=True):
            session = await client.post("/sessions", json={"user": user})
            assert session.status_code == 201, session.text
            sid = session.json()["session_id"]
            liked = await client.post(f"/sessions/{sid}/feedback", json={"item_id": item, "value": "liked"})
            assert liked.json()["liked"] == [item]
        # The long id failed with "File name too long" and a text/plain 500 on each of these.
        created = await client.post("/sessions", json={"user": LONG})
        assert created.status_code == 201, created.text
        liked = await client.post(
            f"/sessions/{created.json()['session_id']}/feedback", json={"item_id": 16, "value": "liked"}
        )
        assert liked.status_code == 200, liked.text
        chat = await client.post("/chat", json={"message": "crime", "user": LONG})
        assert chat.status_code == 200, chat.text
        recommend = await client.post("/recommend", json={"user": LONG, "k": 2})
        assert recommend.status_code == 200, recommend.text
        completion = await client.post(
            "/v1/chat/completions",
            json={"model": "recai-agent", "user": LONG, "messages": [{"role": "user", "content": "crime"}]},
        )
        assert completion.status_code == 200, completion.text
    async with make_client() as (client, _):  # a restarted server: each id reads back its own likes
        for item, user in zip([10, 11, 12, 13, 14, 15, 16, 17], COLLIDING, strict=True):
            session = await client.post("/sessions", json={"user": user})
            assert session.json()["profile"]["liked"] == [item], user
        session = await client.post("/sessions", json={"user": LONG})
        assert session.json()["profile"]["liked"] == [16]
    assert not list(tmp_path.parent.glob("carol*"))  # "../carol_x" stayed inside the profiles folder


# ------------------------------------------------------------------ 3: leftovers of a crash
def test_a_store_removes_crash_leftovers_and_nothing_else(tmp_path: Path) -> None:
    import os

    tmp_path.mkdir(exist_ok=True)
    # The leftover the issue found: an empty temporary file of the pid-less naming, over an hour old.
    old = tmp_path / ".carol_x.json.tmp-k2j4h5g6"
    old.touch()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    # A process killed in the middle of a profile write, with today's naming.
    crash = (
        "import os, sys\n"
        "from recai.data.atomic import atomic_file\n"
        "with atomic_file(sys.argv[1]) as tmp:\n"
        "    os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(tmp_path / "dave.json")], check=True, timeout=60)
    crashed = [p for p in tmp_path.iterdir() if p.name.startswith(".dave.json.tmp-")]
    assert len(crashed) == 1
    keep = [tmp_path / "alice.json", tmp_path / "notes.txt", tmp_path / ".hidden", tmp_path / ".x.tmp-notes"]
    for path in keep:
        path.write_text("{}")
    recent = tmp_path / ".erin.json.tmp-a1b2c3d4"  # pid-less but new: perhaps a write in progress
    recent.touch()
    from recai.data.atomic import atomic_file

    with atomic_file(tmp_path / "frank.json") as writing:  # a write in progress in this process
        ProfileStore(tmp_path)
        assert writing.exists()
    assert not old.exists() and not crashed[0].exists()
    assert all(path.exists() for path in [*keep, recent])


# ------------------------------------------------------------------ 8: one request stalls everyone
def misspelt_listing(lines: int) -> str:
    titles = ["Teh Godfathr", "Pulp Fictoin", "Reservior Dgs", "Heet", "Amelei", "Beuaty and teh Baest"]
    rows = [f"{n}. {titles[n % len(titles)]} q{n}" for n in range(1, lines + 1)]
    return "Try these.\n\nRecommended:\n" + "\n".join(rows)


@pytest.mark.anyio
async def test_grounding_a_huge_history_is_bounded_and_leaves_the_event_loop_free(
    make_client: Client,
) -> None:
    started, health_done = threading.Event(), threading.Event()
    calls: list[str] = []
    served_during_grounding: list[bool] = []
    async with make_client() as (client, agent):
        catalog = agent.dataset.catalog
        real_ground = catalog.ground

        def ground(title: str, **kwargs: Any) -> Any:
            calls.append(title)
            if len(calls) == 1:  # hold the first grounding until /health has answered (or 10 s passed)
                started.set()
                served_during_grounding.append(health_done.wait(10))
            return real_ground(title, **kwargs)

        catalog.ground = ground  # type: ignore[method-assign]
        listing = misspelt_listing(8910)  # the request: 248 KB, 8,910 misspelt lines
        messages = [
            {"role": "user", "content": "crime films"},
            {"role": "assistant", "content": listing},
            {"role": "user", "content": "which is the shortest?"},
        ]
        body = {"model": "recai-agent", "messages": messages}
        assert len(json.dumps(body)) < 256 * 1024
        heavy = asyncio.create_task(client.post("/v1/chat/completions", json=body))
        while not started.is_set() and not heavy.done():
            await asyncio.sleep(0.01)
        health = await client.get("/health")
        health_done.set()
        response = await heavy
    assert health.status_code == 200 and response.status_code == 200, response.text
    assert served_during_grounding == [True]  # /health answered while the grounding was running
    listed = [title for title in calls if re.fullmatch(r".+ q\d+", title)]  # the agent grounds its own too
    assert 0 < len(listed) <= 50  # ServeSettings.max_grounded_items


@pytest.mark.anyio
async def test_only_the_newest_listed_items_are_grounded(make_client: Client) -> None:
    seen: list[list[dict[str, str]]] = []
    async with make_client(max_grounded_items=2) as (client, agent):
        model = agent.llm
        respond = model._function  # type: ignore[attr-defined]
        model._function = lambda messages: seen.append(messages) or respond(messages)  # type: ignore[attr-defined]
        messages = [
            {"role": "user", "content": "something by Coppola"},
            {"role": "assistant", "content": "Try these.\n\nRecommended:\n1. The Godfather (1972)\n2. Heat (1995)"},
            {"role": "user", "content": "and French films?"},
            {"role": "assistant", "content": "Sure.\n\nRecommended:\n1. Amélie (2001)\n2. Pulp Fiction (1994)\n3. Heat (1995)"},
            {"role": "user", "content": "which is shorter?"},
        ]  # fmt: skip
        response = await client.post(
            "/v1/chat/completions", json={"model": "recai-agent", "messages": messages}
        )
    assert response.status_code == 200, response.text
    prompt = seen[0][-1]["content"]
    assert "recommended: Amélie (2001); Pulp Fiction (1994)" in prompt  # the newest list, cut to 2
    assert "The Godfather (1972)" not in prompt  # past the bound: not grounded


@pytest.mark.anyio
async def test_the_grounding_bound_holds_across_many_replies(make_client: Client) -> None:
    calls: list[str] = []
    async with make_client() as (client, agent):
        catalog = agent.dataset.catalog
        real_ground = catalog.ground
        catalog.ground = lambda title, **kw: calls.append(title) or real_ground(title, **kw)  # type: ignore[method-assign]
        messages: list[dict[str, str]] = []
        for turn in range(99):  # 99 earlier replies of 12 listed lines each: 1,188 titles
            listing = "\n".join(f"{n}. Pulp Fictoin {turn}-{n}" for n in range(1, 13))
            messages += [
                {"role": "user", "content": f"more {turn}"},
                {"role": "assistant", "content": f"Here.\n\nRecommended:\n{listing}"},
            ]
        messages.append({"role": "user", "content": "and now?"})
        response = await client.post(
            "/v1/chat/completions", json={"model": "recai-agent", "messages": messages}
        )
    assert response.status_code == 200, response.text
    listed = [title for title in calls if title.startswith("Pulp Fictoin ")]
    assert len(listed) == 50  # ServeSettings.max_grounded_items
    assert listed[0] == "Pulp Fictoin 98-1"  # the newest reply first


# ------------------------------------------------------------------ 9: spoofable client identity
@contextmanager
def served_like_recai_serve(
    agent: Agent, settings: ServeSettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A uvicorn server started with the arguments `recai serve` passes (server.run), in a thread."""
    import uvicorn

    from recai.serve import server as serve_server

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: captured.update(app=app, kwargs=kwargs))
    serve_server.run(agent, settings, host="127.0.0.1", port=free_port())
    config = uvicorn.Config(captured["app"], **captured["kwargs"])
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-hostile", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
        captured["app"].state.recai.runner.close(grace_s=1)


@pytest.mark.network
def test_forwarded_for_from_localhost_is_not_a_new_client(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path / "profiles")
    settings = ServeSettings(rate_per_minute=60, rate_burst=3, max_sessions_per_client=2)
    with served_like_recai_serve(agent, settings, monkeypatch) as url:
        created = [
            httpx.post(f"{url}/sessions", json={}, headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
            for n in range(3)
        ]
        assert created == [201, 201, 429]  # the 50-per-client cap, here 2, holds
        spoofed = httpx.get(f"{url}/items/10", headers={"X-Forwarded-For": "10.9.9.9"})
        error_of(spoofed, 429, "rate_limited")  # the fourth request, past the burst of 3


@pytest.mark.anyio
async def test_a_configured_proxy_is_believed(make_client: Client) -> None:
    # httpx's ASGI transport connects from 127.0.0.1, the proxy named here
    async with make_client(forwarded_allow_ips=["127.0.0.1"], rate_burst=1) as (client, _):
        codes = [
            (await client.get("/items/10", headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(3)
        ]
        assert codes == [200, 200, 200]
        again = await client.get("/items/10", headers={"X-Forwarded-For": "203.0.113.1"})
        error_of(again, 429, "rate_limited")
    async with make_client(forwarded_allow_ips=["10.1.1.1"], rate_burst=1) as (client, _):
        await client.get("/items/10", headers={"X-Forwarded-For": "203.0.113.1"})
        other = await client.get("/items/10", headers={"X-Forwarded-For": "203.0.113.2"})
        error_of(other, 429, "rate_limited")  # 127.0.0.1 is not that proxy: its header is ignored


# ------------------------------------------------------------------ 10: OPTIONS, slow bodies, types
@pytest.mark.anyio
async def test_options_needs_the_token_and_counts_against_the_rate(make_client: Client) -> None:
    async with make_client(token="s3cret", rate_burst=2) as (client, _):
        error_of(await client.options("/sessions"), 401, "unauthorized")
        auth = {"Authorization": "Bearer s3cret"}
        for _ in range(2):
            error_of(await client.options("/sessions", headers=auth), 405, "method_not_allowed")
        error_of(await client.options("/sessions", headers=auth), 429, "rate_limited")
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with make_client(token="s3cret", rate_burst=2, cors_origins=["https://app.example"]) as (client, _):
        assert (await client.options("/chat", headers=preflight)).status_code == 200  # browsers send no token
        assert (await client.options("/chat", headers=preflight)).status_code == 200
        error_of(await client.options("/chat", headers=preflight), 429, "rate_limited")
    async with make_client(cors_origins=["https://app.example"]) as (client, _):
        refused = await client.options("/chat", headers={**preflight, "Origin": "https://evil.example"})
        error_of(refused, 400, "cors_rejected")


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            part = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no complete answer within the socket timeout; got {data!r}") from None
        if not part:
            return data
        data += part


@pytest.mark.network
def test_a_body_shorter_than_its_content_length_times_out(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = build_agent(dataset, stand_in_model(), tmp_path / "profiles")
    with served_like_recai_serve(agent, ServeSettings(body_timeout_s=0.5), monkeypatch) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=8) as sock:
            sock.sendall(
                b"POST /chat HTTP/1.1\r\nHost: recai.test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"message": "cri'
            )
            answer = read_response(sock)  # the server closes the connection after answering
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert httpx.get(f"{url}/health").status_code == 200


@pytest.mark.anyio
async def test_lone_surrogates_are_422_everywhere(make_client: Client) -> None:
    async with make_client() as (client, _):
        completion = await client.post(
            "/v1/chat/completions",
            **raw_json('{"model": "recai-agent", "messages": [{"role": "user", "content": "hi \\ud800"}]}'),
        )
        assert "messages.0.content" in error_of(completion, 422, "invalid_request")["message"]
        parts = '[{"type": "text", "text": "\\udfff"}]'
        error_of(
            await client.post(
                "/v1/chat/completions",
                **raw_json(
                    f'{{"model": "recai-agent", "messages": [{{"role": "user", "content": {parts}}}]}}'
                ),
            ),
            422,
            "invalid_request",
        )
        for path, body in [
            ("/v1/chat/completions", '{"model": "recai-\\ud800", "messages": [{"role": "user", "content": "hi"}]}'),
            ("/v1/chat/completions", '{"model": "recai-agent", "user": "\\udc80", "messages": [{"role": "user", "content": "hi"}]}'),
            ("/chat", '{"message": "hi \\ud800"}'),
            ("/chat", '{"message": "hi", "\\ud800": 1}'),
            ("/sessions", '{"user": "carol\\ud800"}'),
            ("/recommend", '{"history": ["Heat \\ud800"]}'),
            ("/recommend", '{"where": "title = \'\\ud800\'"}'),
        ]:  # fmt: skip
            error_of(await client.post(path, **raw_json(body)), 422, "invalid_request")
        sid = (await client.post("/sessions", json={})).json()["session_id"]
        feedback = await client.post(
            f"/sessions/{sid}/feedback", **raw_json('{"item_id": "\\ud800", "value": "liked"}')
        )
        error_of(feedback, 422, "invalid_request")


@pytest.mark.anyio
async def test_loose_types_are_refused(make_client: Client) -> None:
    async with make_client() as (client, _):
        sid = (await client.post("/sessions", json={})).json()["session_id"]
        completion = {"model": "recai-agent", "messages": [{"role": "user", "content": "crime"}]}
        for path, body in [
            ("/chat", {"message": "crime", "stream": "yes"}),
            ("/chat", {"message": "crime", "stream": 1}),
            ("/chat", {"message": "crime", "session_id": 12345}),
            ("/chat", {"message": ["crime"]}),
            ("/v1/chat/completions", {**completion, "stream": "yes"}),
            ("/v1/chat/completions", {**completion, "stream_options": {"include_usage": "yes"}}),
            ("/v1/chat/completions", {**completion, "model": 1}),
            (f"/sessions/{sid}/feedback", {"item_id": True, "value": "liked"}),
            (f"/sessions/{sid}/feedback", {"item_id": 12.0, "value": "liked"}),
            ("/recommend", {"k": True}),
            ("/recommend", {"k": "5"}),
            ("/recommend", {"history": [True]}),
            ("/recommend", {"history": [12], "exclude_history": "no"}),
            ("/sessions", {"user": 7}),
        ]:
            error_of(await client.post(path, json=body), 422, "invalid_request")
        assert (
            await client.post(f"/sessions/{sid}/feedback", json={"item_id": 12, "value": "liked"})
        ).json()["liked"] == [12]  # the real types still work


@pytest.mark.anyio
async def test_every_error_is_the_documented_json_body(
    make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_client(max_body_bytes=8192) as (client, agent):
        error_of(await client.delete("/health"), 405, "method_not_allowed")
        wrong_method = await client.put("/chat", json={"message": "hi"})
        error_of(wrong_method, 405, "method_not_allowed")
        assert wrong_method.headers["allow"] == "POST"
        error_of(await client.post("/static/app.js"), 405, "method_not_allowed")
        error_of(await client.get("/static/no-such-file.js"), 404, "not_found")
        error_of(await client.get("/static/../../pyproject.toml"), 404)
        error_of(await client.get("/items/..%2F..%2Fetc%2Fpasswd"), 404)
        error_of(await client.get("/items/%00"), 404, "unknown_item")
        error_of(await client.get("/items/%ED%A0%80"), 404, "unknown_item")  # not UTF-8: replaced, not a 500
        assert (await client.get("/items/search?q=%ED%A0%80%00")).status_code == 200
        error_of(await client.post("/chat", **raw_json("[" * 3000 + "]" * 3000)), 400, "bad_request")
        error_of(await client.post("/chat", **raw_json('{"message": "hi"')), 422, "invalid_request")
        error_of(
            await client.post("/chat", content=b"\xff\xfe", headers={"content-type": "application/json"}), 422
        )
        error_of(await client.post("/chat", json={"message": "y" * 9000}), 413, "body_too_large")
        error_of(await client.get("/items/search", params={"q": "x", "k": "many"}), 422, "invalid_request")
        error_of(await client.get("/items/search", params={"q": "x", "k": 10**30}), 422)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OSError(36, "File name too long", "/secret/path")

        monkeypatch.setattr(agent.profile_store, "load", broken)
        crashed = error_of(await client.post("/sessions", json={"user": "carol"}), 500, "internal_error")
        assert "/secret/path" not in crashed["message"]  # the log has the details, the client does not
        error_of(await client.post("/recommend", json={"user": "carol"}), 500, "internal_error")
