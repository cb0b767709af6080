"""Fixtures for the server tests: an agent over the tiny catalog with a fake encoder (no weights) and a
scripted model, and an httpx client wired straight to the app (no sockets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recai.agent import Agent, AgentSettings
from recai.agent.memory import ProfileStore
from recai.data import Dataset
from recai.llm.base import ChatModel
from recai.serve import ServeSettings, create_app
from recai.serve.stand_in import stand_in_model
from recai.testing.fakes import BagOfWordsEncoder


def build_agent(dataset: Dataset, llm: ChatModel, profiles: Path) -> Agent:
    agent = Agent(
        dataset,
        llm,
        settings=AgentSettings(k=3, retrieve_k=5, sasrec_budget_s=2.0),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(profiles),
        progress=False,
    )
    agent.warm_up()
    return agent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_client(dataset: Dataset, tmp_path: Path) -> Callable[..., Any]:
    """``make_client(llm=None, **settings)`` -> an async context manager yielding (client, agent)."""

    class Made:
        def __init__(self, llm: ChatModel | None, settings: dict[str, Any]) -> None:
            self.agent = build_agent(dataset, llm or stand_in_model(), tmp_path / "profiles")
            self.app = create_app(self.agent, ServeSettings(**settings))
            self.client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app), base_url="http://recai.test", timeout=30
            )

        async def __aenter__(self) -> tuple[httpx.AsyncClient, Agent]:
            return self.client, self.agent

        async def __aexit__(self, *exc: object) -> None:
            await self.client.aclose()
            self.app.state.recai.runner.close(grace_s=5)

    return lambda llm=None, **settings: Made(llm, settings)


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """(event name, JSON data) pairs of a server-sent-events body; comments are skipped."""
    import json

    events = []
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            payload = "\n".join(data)
            events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


@pytest.fixture
def sse() -> Callable[[str], list[tuple[str, Any]]]:
    return parse_sse


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One redis-server for the session's tests (each test starts from an empty database)."""
    from tests.serve.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    redis_server.flush()
    return str(redis_server.url)
