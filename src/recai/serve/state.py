"""What the request handlers share: the agent, its sessions, the turn pool, the card builder, settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from recai.agent import Agent, TurnResult
from recai.serve.cards import ItemCards
from recai.serve.errors import ApiError
from recai.serve.sessions import LEASE_GRACE_S, ServedSession, SessionStore
from recai.serve.settings import ServeSettings
from recai.serve.stores import SessionBackend, open_store
from recai.serve.turns import TurnRunner

log = logging.getLogger("recai.serve")


@dataclass
class ServerState:
    """Everything a request handler needs, built once per app and reached through a dependency.

    Attributes:
        agent: The agent.
        settings: The server's settings.
        sessions: The session store.
        runner: Runs turns off the event loop.
        cards: Builds item cards for the catalog.
    """

    agent: Agent
    settings: ServeSettings
    sessions: SessionStore
    runner: TurnRunner
    cards: ItemCards

    @classmethod
    def build(
        cls, agent: Agent, settings: ServeSettings, backend: SessionBackend | None = None
    ) -> ServerState:
        """The state for ``agent``; the sessions live in ``backend``, else in the store ``settings.store``
        names (opened here)."""
        sessions = SessionStore(
            agent,
            max_sessions=settings.max_sessions,
            max_per_client=settings.max_sessions_per_client,
            ttl_s=settings.session_ttl_s,
            max_turns=settings.max_turns_kept,
            backend=backend or open_store(settings.store, timeout_s=settings.store_timeout_s),
            lease_s=settings.turn_timeout_s + LEASE_GRACE_S,
        )

        def done(served: ServedSession, result: TurnResult, seconds: float) -> None:
            sessions.end_turn(served)  # before the client hears "done": the turn is in the store
            trace = result.trace
            log.info(
                "turn",
                extra={
                    "fields": {
                        "session": served.id[:8],
                        "ms": round(1000 * seconds, 1),
                        "llm_calls": trace.llm_calls,
                        "replans": trace.replans,
                        "items": len(result.items),
                        "reply_chars": len(result.reply),
                    }
                },
            )

        runner = TurnRunner(agent, sessions, settings, on_done=done)
        return cls(agent, settings, sessions, runner, ItemCards(agent.dataset.catalog))

    def check_message(self, text: str) -> str:
        if len(text) > self.settings.max_message_chars:
            raise ApiError(
                422,
                "message_too_long",
                f"the message has {len(text)} characters; the limit is {self.settings.max_message_chars}",
            )
        if not text.strip():
            raise ApiError(422, "empty_message", "the message is empty")
        return text

    def check_k(self, k: int) -> int:
        if k > self.settings.max_k:
            raise ApiError(422, "k_too_large", f"k is {k}; the limit is {self.settings.max_k}")
        return k

    def item_cards(self, ids: list[Any]) -> list[Any]:
        return self.cards.cards(ids)


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the state of the app handling this request."""
    state: ServerState = request.app.state.recai
    return state


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
