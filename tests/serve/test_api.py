"""The HTTP API against the real app (httpx over ASGI, no sockets), driven by scripted models."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from recai.llm import ScriptedChatModel
from recai.llm.base import Message
from recai.serve.logs import JsonFormatter
from recai.serve.stand_in import stand_in_model

pytestmark = pytest.mark.anyio

Sse = Callable[[str], list[tuple[str, Any]]]


async def new_session(client: httpx.AsyncClient, user: str | None = None) -> str:
    response = await client.post("/sessions", json={"user": user} if user else {})
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"type", "code", "message"} <= set(body["error"]), body
    return dict(body["error"])


# ------------------------------------------------------------------ basics
async def test_health_and_a_valid_openapi_schema(make_client: Any) -> None:
    from openapi_spec_validator import validate

    async with make_client() as (client, _):
        health = (await client.get("/health")).json()
        assert health["status"] == "ok" and health["items"] == 8 and health["model"] == "scripted:stand-in"
        spec = (await client.get("/openapi.json")).json()
    validate(spec)  # raises on an invalid document
    for path in ("/chat", "/sessions", "/recommend", "/items/search", "/v1/chat/completions", "/health"):
        assert path in spec["paths"], path
    assert "ErrorBody" in spec["components"]["schemas"]


async def test_a_session_lives_through_chat_reset_and_delete(make_client: Any) -> None:
    async with make_client() as (client, _):
        sid = await new_session(client)
        turn = await client.post(
            "/chat", json={"session_id": sid, "message": "a crime film about the godfather"}
        )
        assert turn.status_code == 200, turn.text
        body = turn.json()
        assert body["session_id"] == sid and [c["id"] for c in body["items"]][:2] == [16, 17]
        card = body["items"][0]
        assert (
            card["title"] == "The Godfather" and card["year"] == 1972 and card["tags"] == ["Crime", "Drama"]
        )
        assert {"label": "Runtime", "value": "175 min"} in card["facts"]
        assert "**The Godfather (1972)**" in body["reply"]
        assert [s["tool"] for s in body["trace"]["steps"]] == ["semantic_search", "rank"]

        view = (await client.get(f"/sessions/{sid}")).json()
        assert [t["user"] for t in view["turns"]] == ["a crime film about the godfather"]
        assert view["turns"][0]["items"] == [c["id"] for c in body["items"]]

        reset = await client.post(f"/sessions/{sid}/reset")
        assert reset.status_code == 200 and reset.json()["turns"] == []
        assert (await client.delete(f"/sessions/{sid}")).status_code == 204
        gone = await client.get(f"/sessions/{sid}")
        assert gone.status_code == 404 and error_of(gone)["code"] == "session_not_found"


async def test_chat_streams_items_then_deltas_trace_and_done(make_client: Any, sse: Sse) -> None:
    async with make_client() as (client, _):
        response = await client.post(
            "/chat", json={"message": "a crime film about the godfather", "stream": True}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response.text)
    names = [name for name, _ in events]
    # the cards come before the reply, so a client shows them while the text is still being written
    assert names[:2] == ["session", "items"] and names[-2:] == ["trace", "done"]
    assert names.count("items") == 1 and set(names[2:-2]) == {"delta"}
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert (
        len(deltas) >= 2
    )  # streamed sentence by sentence (the grounding check holds each one), not as one block
    assert "".join(deltas) == events[-1][1]["reply"]
    assert [c["title"] for c in events[1][1]["items"]][:2] == ["The Godfather", "The Godfather Part II"]
    assert events[-2][1]["plans"][0]["intent"] == "recommend"
    session_id = events[0][1]["session_id"]
    assert isinstance(session_id, str) and len(session_id) >= 16


async def test_chat_without_a_session_starts_one_for_the_user(make_client: Any) -> None:
    async with make_client() as (client, _):
        first = (await client.post("/chat", json={"message": "hello", "user": "carol"})).json()
        assert first["items"] == [] and first["reply"].startswith("Hello")
        view = (await client.get(f"/sessions/{first['session_id']}")).json()
        assert view["user"] == "carol" and len(view["turns"]) == 1
        mismatch = await client.post(
            "/chat", json={"message": "hi", "session_id": first["session_id"], "user": "mallory"}
        )
        assert mismatch.status_code == 422 and error_of(mismatch)["code"] == "user_mismatch"


# ------------------------------------------------------------------ errors and limits
async def test_bad_requests_get_clear_json_errors(make_client: Any) -> None:
    async with make_client(max_body_bytes=4096) as (client, _):
        long = await client.post("/chat", json={"message": "x" * 2001})
        assert long.status_code == 422 and error_of(long)["code"] == "message_too_long"
        assert "limit is 2000" in error_of(long)["message"]
        missing = await client.post("/chat", json={})
        assert missing.status_code == 422 and error_of(missing)["message"].startswith("message:")
        extra = await client.post("/chat", json={"message": "hi", "colour": "red"})
        assert extra.status_code == 422 and "colour" in error_of(extra)["message"]
        broken = await client.post(
            "/chat", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422 and error_of(broken)["code"] == "invalid_request"
        unknown = await client.post("/chat", json={"message": "hi", "session_id": "nope"})
        assert unknown.status_code == 404 and error_of(unknown)["code"] == "session_not_found"
        route = await client.get("/no/such/route")
        assert route.status_code == 404 and error_of(route)["code"] == "not_found"
        big = await client.post("/chat", json={"message": "y" * 5000})
        assert big.status_code == 413 and error_of(big)["code"] == "body_too_large"

        async def chunks() -> Any:  # no Content-Length: the cap counts the body as it arrives
            for _ in range(10):
                yield b" " * 1000

        chunked = await client.post("/chat", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and error_of(chunked)["code"] == "body_too_large"


async def test_the_rate_limit_is_per_client_and_says_when_to_retry(make_client: Any) -> None:
    async with make_client(rate_per_minute=60, rate_burst=3) as (client, _):
        codes = [(await client.get("/items/10")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = await client.get("/items/10")
        assert error_of(limited)["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert (await client.get("/health")).status_code == 200  # never limited


async def test_session_limits_per_client_server_wide_and_idle_expiry(make_client: Any) -> None:
    async with make_client(max_sessions_per_client=2, max_sessions=3) as (client, _):
        await new_session(client)
        await new_session(client)
        third = await client.post("/sessions", json={})
        assert third.status_code == 429 and error_of(third)["code"] == "too_many_sessions"
    async with make_client(max_sessions=1) as (client, _):
        await new_session(client)
        full = await client.post("/sessions", json={})
        assert (
            full.status_code == 503
            and full.headers["retry-after"]
            and "limit of 1" in error_of(full)["message"]
        )
    async with make_client(session_ttl_s=0.05, max_sessions=1) as (client, _):
        sid = await new_session(client)
        await asyncio.sleep(0.1)
        assert (await client.get(f"/sessions/{sid}")).status_code == 404
        await new_session(client)  # the expired one no longer counts


async def test_bearer_token_guards_the_api_but_not_the_page(make_client: Any) -> None:
    async with make_client(token="s3cret") as (client, _):
        assert (await client.get("/health")).status_code == 200
        page = await client.get("/")
        assert page.status_code == 200 and "<h1>recai" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert (await client.get("/static/app.js")).status_code == 200
        missing = await client.post("/sessions", json={})
        assert missing.status_code == 401 and error_of(missing)["type"] == "authentication_error"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await client.post("/sessions", json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.post("/sessions", json={}, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 201


async def test_cors_allows_only_the_configured_origins(make_client: Any) -> None:
    async with make_client(cors_origins=["https://app.example"], token="t") as (client, _):
        preflight = await client.options(
            "/chat",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        denied = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in denied.headers
        refused = await client.post("/sessions", json={}, headers={"Origin": "https://app.example"})
        assert refused.status_code == 401  # CORS headers on errors too, so the page can read them
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
    async with make_client() as (client, _):
        plain = await client.get("/health", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in plain.headers  # no origins configured: no CORS


# ------------------------------------------------------------------ feedback and profiles
async def test_likes_update_the_profile_shared_by_the_users_sessions(
    make_client: Any, tmp_path: Path
) -> None:
    async with make_client() as (client, _):
        first, second = await new_session(client, "alice"), await new_session(client, "alice")
        liked = await client.post(f"/sessions/{first}/feedback", json={"item_id": 12, "value": "liked"})
        assert liked.json() == {"liked": [12], "disliked": []}
        disliked = await client.post(
            f"/sessions/{first}/feedback", json={"item_id": "10", "value": "disliked"}
        )
        assert disliked.json() == {"liked": [12], "disliked": [10]}  # ids keep the catalog's type
        assert (await client.get(f"/sessions/{second}")).json()["profile"] == {
            "liked": [12],
            "disliked": [10],
        }
        stored = json.loads((tmp_path / "profiles" / "alice.json").read_text())
        assert stored["liked"] == [12] and stored["disliked"] == [10]

        anonymous = await new_session(client)
        assert (await client.get(f"/sessions/{anonymous}")).json()["profile"] == {"liked": [], "disliked": []}
        await client.post(f"/sessions/{anonymous}/feedback", json={"item_id": 13, "value": "liked"})
        cleared = await client.post(f"/sessions/{first}/feedback", json={"item_id": 12, "value": "none"})
        assert cleared.json() == {"liked": [], "disliked": [10]}
        assert (await client.post(f"/sessions/{anonymous}/reset")).json()["profile"]["liked"] == []
        assert (await client.post(f"/sessions/{first}/reset")).json()["profile"]["disliked"] == [10]
        unknown = await client.post(f"/sessions/{first}/feedback", json={"item_id": 999, "value": "liked"})
        assert unknown.status_code == 422 and error_of(unknown)["code"] == "unknown_item"

    async with make_client() as (client, _):  # a restarted server reads the saved profile
        sid = await new_session(client, "alice")
        assert (await client.get(f"/sessions/{sid}")).json()["profile"]["disliked"] == [10]


async def test_a_disliked_item_is_not_recommended_in_that_session(make_client: Any) -> None:
    async with make_client() as (client, _):
        sid = await new_session(client)
        before = (await client.post("/chat", json={"session_id": sid, "message": "godfather crime"})).json()
        assert before["items"][0]["id"] == 16
        await client.post(f"/sessions/{sid}/feedback", json={"item_id": 16, "value": "disliked"})
        after = (await client.post("/chat", json={"session_id": sid, "message": "godfather crime"})).json()
        assert 16 not in [c["id"] for c in after["items"]]
        other = (await client.post("/chat", json={"message": "godfather crime"})).json()
        assert other["items"][0]["id"] == 16  # another session is not affected


# ------------------------------------------------------------------ recommend and search
async def test_recommend_straight_from_the_tools(make_client: Any) -> None:
    async with make_client() as (client, _):
        similar = (await client.post("/recommend", json={"history": ["Heat"], "k": 3})).json()
        assert similar["history"] == [12] and 12 not in [c["id"] for c in similar["items"]]
        assert [s["tool"] for s in similar["steps"]] == ["similar_to", "rank"] and len(similar["items"]) == 3
        french = (await client.post("/recommend", json={"where": "language = 'french'", "k": 5})).json()
        assert {c["id"] for c in french["items"]} == {13, 14}
        assert french["steps"][0]["args"] == {"where": "language = 'french'"}
        assert "language = 'French'" in french["steps"][0]["facts"]  # grounded like the agent's filter
        logged = (await client.post("/recommend", json={"user": "a", "k": 8})).json()
        assert logged["history"] == [10, 11, 12, 13]  # the dataset's log knows user "a"
        assert not {10, 11, 12, 13} & {c["id"] for c in logged["items"]}
        body = {"history": [10, 11], "by": "popularity", "k": 8, "exclude_history": False}
        again = (await client.post("/recommend", json=body)).json()
        assert {10, 11} <= {c["id"] for c in again["items"]}  # a re-purchase caller gets them back
        described = (await client.post("/recommend", json={"query": "godfather", "k": 2})).json()
        assert [c["id"] for c in described["items"]] == [16, 17]

        unknown = await client.post("/recommend", json={"history": ["Heet 2: the return"]})
        assert unknown.status_code == 422 and "did you mean" in error_of(unknown)["message"]
        bad_sql = await client.post("/recommend", json={"where": "genres = 'Telenovela'"})
        assert bad_sql.status_code == 422 and error_of(bad_sql)["code"] == "tool_failed"
        no_history = await client.post("/recommend", json={"by": "similar"})
        assert no_history.status_code == 422 and error_of(no_history)["code"] == "no_history"
        too_many = await client.post("/recommend", json={"k": 51})
        assert too_many.status_code == 422 and error_of(too_many)["code"] == "k_too_large"


async def test_search_finds_titles_then_meanings(make_client: Any) -> None:
    async with make_client() as (client, _):
        godfather = (await client.get("/items/search", params={"q": "godfather", "k": 3})).json()["items"]
        assert [(c["id"], c["match"]) for c in godfather[:2]] == [(16, "title"), (17, "title")]
        accents = (await client.get("/items/search", params={"q": "amelie"})).json()["items"]
        assert accents[0]["title"] == "Amélie"
        meaning = (await client.get("/items/search", params={"q": "crime thriller dogs"})).json()["items"]
        assert meaning[0]["id"] == 11 and any(c["match"] == "semantic" for c in meaning)
        empty = await client.get("/items/search", params={"q": ""})
        assert empty.status_code == 422
        assert (await client.get("/items/10")).json()["title"] == "Pulp Fiction"
        missing = await client.get("/items/999")
        assert missing.status_code == 404 and error_of(missing)["code"] == "unknown_item"


# ------------------------------------------------------------------ concurrency
def isolation_model(delay_s: float) -> ScriptedChatModel:
    """Plans from messages like 'session3: dislike Heat; Amélie'; answers name the session."""

    def reply(messages: list[Message]) -> str:
        last = messages[-1]["content"]
        if last.rstrip().endswith("Plan:"):
            request = last.rpartition("Message: ")[2].rpartition("\nPlan:")[0]
            titles = [t for t in request.partition(": dislike")[2].strip().split("; ") if t]
            time.sleep(delay_s)  # turns interleave: the others run their tools meanwhile
            steps = [{"tool": "rank", "args": {"by": "popularity"}}]
            return json.dumps(
                {"intent": "recommend", "steps": steps, "feedback": {"liked": [], "disliked": titles}}
            )
        request = last.rpartition("User's message: ")[2]
        return f"Done for {request.partition(':')[0]}."

    return ScriptedChatModel(reply, chunk_size=3)


async def test_simultaneous_sessions_never_see_each_others_memory(make_client: Any) -> None:
    titles = ["Pulp Fiction", "Reservoir Dogs", "Heat", "Amélie", "The Godfather"]
    model = isolation_model(0.03)
    async with make_client(model, turn_threads=4) as (client, _):

        async def converse(n: int) -> list[dict[str, Any]]:
            sid = await new_session(client)
            results = []
            for message in (
                f"session{n}: dislike {'; '.join(titles[:n])}",
                f"session{n}: dislike",
                f"session{n}: more",
            ):
                response = await client.post("/chat", json={"session_id": sid, "message": message})
                assert response.status_code == 200, response.text
                results.append(response.json())
            return results

        conversations = await asyncio.gather(*(converse(n) for n in range(6)))
    for n, turns in enumerate(conversations):
        mine = set(titles[:n])
        for turn in turns:
            assert turn["reply"] == f"Done for session{n}."
            rank = turn["trace"]["steps"][-1]
            assert rank["details"]["excluded"] == n, (n, turn["trace"])  # only this session's dislikes
            assert not {c["title"] for c in turn["items"]} & mine
    for messages in model.calls:  # every prompt shows one session's dialogue and profile only
        prompt = messages[-1]["content"]
        sessions = set(re.findall(r"session\d+", prompt))
        assert len(sessions) == 1, prompt


async def test_a_slow_model_fills_only_the_turn_pool(make_client: Any) -> None:
    async with make_client(stand_in_model(delay_s=0.4), turn_threads=1, queue=0) as (client, _):
        slow = asyncio.create_task(client.post("/chat", json={"message": "crime"}))
        while (await client.get("/health")).json()["turns_running"] == 0:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        busy = await client.post("/chat", json={"message": "romance"})
        assert (
            busy.status_code == 503
            and error_of(busy)["code"] == "server_busy"
            and busy.headers["retry-after"]
        )
        assert (await client.get("/health")).json()["sessions"] == 1  # the refused turn left no session
        search = await client.get("/items/search", params={"q": "heat"})
        assert search.status_code == 200 and time.perf_counter() - started < 0.3  # not stuck behind the LLM
        assert (await slow).status_code == 200


async def test_one_turn_at_a_time_per_session(make_client: Any) -> None:
    async with make_client(stand_in_model(delay_s=0.3), turn_threads=2) as (client, _):
        sid = await new_session(client)
        first = asyncio.create_task(client.post("/chat", json={"session_id": sid, "message": "crime"}))
        while (await client.get("/health")).json()["turns_running"] == 0:
            await asyncio.sleep(0.01)
        second = await client.post("/chat", json={"session_id": sid, "message": "romance"})
        assert second.status_code == 409 and error_of(second)["code"] == "session_busy"
        assert (await client.post(f"/sessions/{sid}/reset")).status_code == 409
        assert (await first).status_code == 200


async def test_failures_and_timeouts_are_reported_not_hung(make_client: Any, sse: Sse) -> None:
    async with make_client(ScriptedChatModel([])) as (client, _):  # a model with nothing to say
        failed = await client.post("/chat", json={"message": "hi"})
        assert failed.status_code == 500 and "ScriptExhaustedError" in error_of(failed)["message"]
        streamed = sse((await client.post("/chat", json={"message": "hi", "stream": True})).text)
        assert streamed[-1][0] == "error" and streamed[-1][1]["error"]["code"] == "turn_failed"
        assert (await client.get("/health")).status_code == 200
    async with make_client(stand_in_model(delay_s=0.5), turn_timeout_s=0.2) as (client, _):
        timed_out = await client.post("/chat", json={"message": "crime"})
        assert timed_out.status_code == 504 and error_of(timed_out)["code"] == "turn_timeout"


# ------------------------------------------------------------------ OpenAI-compatible
async def test_a_plain_openai_client_can_chat_and_stream(make_client: Any) -> None:
    from openai import AsyncOpenAI, AuthenticationError, NotFoundError

    async with make_client(token="k") as (client, _):
        transport = client._transport  # the same in-process app
        http = httpx.AsyncClient(transport=transport, base_url="http://recai.test/v1")
        oa = AsyncOpenAI(base_url="http://recai.test/v1", api_key="k", http_client=http, max_retries=0)
        models = await oa.models.list()
        assert [m.id for m in models.data] == ["recai-agent"]
        reply = await oa.chat.completions.create(
            model="recai-agent", messages=[{"role": "user", "content": "a crime film about the godfather"}]
        )
        content = reply.choices[0].message.content or ""
        assert (
            "**The Godfather (1972)**" in content and "\n\nRecommended:\n1. The Godfather (1972)" in content
        )
        assert reply.usage is not None and reply.usage.total_tokens > 0

        stream = await oa.chat.completions.create(
            model="recai-agent",
            stream=True,
            stream_options={"include_usage": True},
            messages=[
                {"role": "system", "content": "ignored: the agent has its own prompts"},
                {"role": "user", "content": "a crime film about the godfather"},
                {"role": "assistant", "content": content},
                {"role": "user", "content": "something french"},
            ],
        )
        pieces, finish = [], None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
        assert finish == "stop" and len(pieces) >= 3 and "Recommended:" in "".join(pieces)

        with pytest.raises(NotFoundError):
            await oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        bad = AsyncOpenAI(base_url="http://recai.test/v1", api_key="wrong", http_client=http, max_retries=0)
        with pytest.raises(AuthenticationError):
            await bad.models.list()
        assert (await client.get("/health")).json()["sessions"] == 0  # one-request sessions are ended
        await http.aclose()


async def test_openai_history_becomes_the_agents_dialogue(make_client: Any) -> None:
    seen: list[list[Message]] = []
    model = stand_in_model()

    def spy(messages: list[Message]) -> str:
        seen.append(messages)
        from recai.serve.stand_in import respond

        return respond(messages)

    model._function = spy
    async with make_client(model) as (client, _):
        history = [
            {"role": "user", "content": "something by Coppola"},
            {
                "role": "assistant",
                "content": "Try these.\n\nRecommended:\n1. The Godfather (1972)\n2. Heat (1995)",
            },
            {"role": "user", "content": [{"type": "text", "text": "which is shorter?"}]},
        ]
        response = await client.post(
            "/v1/chat/completions", json={"model": "recai-agent", "messages": history}
        )
        assert response.status_code == 200
        planner_prompt = seen[0][-1]["content"]
        assert "User: something by Coppola" in planner_prompt
        assert "recommended: The Godfather (1972); Heat (1995)" in planner_prompt
        last_assistant = await client.post(
            "/v1/chat/completions",
            json={
                "model": "recai-agent",
                "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            },
        )
        assert last_assistant.status_code == 422 and "last message" in error_of(last_assistant)["message"]


# ------------------------------------------------------------------ logs
async def test_every_request_is_one_json_log_line_without_the_message(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recai.serve")
    async with make_client() as (client, _):
        response = await client.post(
            "/chat", json={"message": "my secret wish: a crime film"}, headers={"X-Request-ID": "req-42"}
        )
        session_id = response.json()["session_id"]
        await client.get(f"/sessions/{session_id}")
    assert response.headers["x-request-id"] == "req-42"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    request = next(line for line in lines if line["event"] == "request" and line["path"] == "/chat")
    assert request["status"] == 200 and request["request_id"] == "req-42" and request["ms"] > 0
    turn = next(line for line in lines if line["event"] == "turn")
    assert turn["items"] == 3 and turn["llm_calls"] == 2
    assert all("secret wish" not in json.dumps(line) for line in lines)
    assert any(line.get("path") == "/sessions/{session_id}" for line in lines)  # route templates only:
    assert all(session_id not in json.dumps(line) for line in lines)  # a session id is a capability


# ------------------------------------------------------------------ shutdown (a real server)
@pytest.mark.network
def test_shutdown_lets_a_running_turn_finish_then_refuses_new_ones(make_client: Any, sse: Sse) -> None:
    from tests.serve.live import live_server

    made = make_client(stand_in_model(delay_s=0.3))
    events: list[tuple[str, Any]] = []
    with live_server(made.app) as (url, server):
        first_byte = threading.Event()

        def talk() -> None:
            with httpx.stream(
                "POST", f"{url}/chat", json={"message": "crime", "stream": True}, timeout=10
            ) as r:
                body = b""
                for part in r.iter_bytes():
                    first_byte.set()
                    body += part
            events.extend(sse(body.decode()))

        thread = threading.Thread(target=talk)
        thread.start()
        assert first_byte.wait(5)
        server.should_exit = True  # what SIGTERM does
        thread.join(10)
    assert [name for name, _ in events][-1] == "done"  # the turn in flight finished
    assert made.app.state.recai.runner.closing
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)
