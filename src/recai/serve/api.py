"""The agent's own HTTP API: sessions, chat (JSON or server-sent events), feedback, recommendations and
search without the LLM, health. Every error is the JSON body of :mod:`recai.serve.errors`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from recai import __version__
from recai.serve import sse
from recai.serve.cards import ItemCard
from recai.serve.errors import ApiError, ErrorBody, error_body
from recai.serve.recommend import recommend, search
from recai.serve.schemas import (
    ChatRequest,
    ChatResponse,
    CreateSession,
    FeedbackRequest,
    Health,
    ProfileView,
    RecommendRequest,
    RecommendResponse,
    SearchResponse,
    SessionView,
    TurnView,
)
from recai.serve.sessions import ServedSession
from recai.serve.state import ServerState, client_of, server_state
from recai.serve.turns import RunningTurn, turn_error

State = Annotated[ServerState, Depends(server_state)]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "Missing or wrong bearer token",
        404: "Unknown session or item",
        409: "A turn is already running in this session",
        413: "Request body too large",
        422: "Invalid request (the message says which field and why)",
        429: "Rate limit or per-client session limit",
        503: "Server busy, full or shutting down, or the session store unavailable",
    }.items()
}

router = APIRouter()


@router.get("/health", tags=["server"])
def health(state: State) -> Health:
    """Liveness and load; public even when a token is set."""
    return Health(
        status="shutting_down" if state.runner.closing else "ok",
        version=__version__,
        dataset=state.agent.dataset.name,
        items=len(state.agent.dataset.catalog),
        model=state.agent.llm.name,
        sessions=len(state.sessions),
        turns_running=state.runner.admitted,
        turn_capacity=state.runner.capacity,
        max_message_chars=state.settings.max_message_chars,
        auth=state.settings.token is not None,
    )


def session_view(served: ServedSession) -> SessionView:
    profile = served.session.profile
    return SessionView(
        session_id=served.id,
        user=served.user,
        created=served.created,
        turns=[TurnView(user=t.user, reply=t.reply, items=t.item_ids) for t in served.session.dialogue.turns],
        profile=ProfileView(liked=list(profile.liked), disliked=list(profile.disliked)),
    )


@router.post("/sessions", status_code=201, tags=["sessions"], responses=ERRORS)
def create_session(body: CreateSession, request: Request, state: State) -> SessionView:
    """Start a conversation; with ``user`` it shares that user's long-term profile."""
    return session_view(state.sessions.create(client_of(request), body.user))


@router.get("/sessions/{session_id}", tags=["sessions"], responses=ERRORS)
def get_session(session_id: str, state: State) -> SessionView:
    return session_view(state.sessions.get(session_id))


@router.post("/sessions/{session_id}/reset", tags=["sessions"], responses=ERRORS)
def reset_session(session_id: str, state: State) -> SessionView:
    """Forget the conversation; a user's long-term profile stays, an anonymous session's is cleared."""
    return session_view(state.sessions.reset(session_id))


@router.delete("/sessions/{session_id}", status_code=204, tags=["sessions"], responses=ERRORS)
def delete_session(session_id: str, state: State) -> Response:
    state.sessions.delete(session_id)
    return Response(status_code=204)


@router.post("/sessions/{session_id}/feedback", tags=["sessions"], responses=ERRORS)
def feedback(session_id: str, body: FeedbackRequest, state: State) -> ProfileView:
    """Like, dislike or clear an item; ranking then prefers or excludes it. A user's profile is saved."""
    served = state.sessions.get(session_id)
    profile = state.sessions.feedback(served, _existing_id(state, body.item_id), body.value)
    return ProfileView(liked=list(profile.liked), disliked=list(profile.disliked))


def _existing_id(state: ServerState, item_id: int | str) -> Any:
    """The catalog's own id (with its type) for an id sent as a number or a string."""
    catalog = state.agent.dataset.catalog
    pos = catalog.index_of([item_id], missing="mark")[0]
    if pos < 0:
        raise ApiError(422, "unknown_item", f"no item with id '{str(item_id)[:64]}' in the catalog")
    raw = catalog.ids[int(pos)]
    return raw.item() if hasattr(raw, "item") else raw


@router.post(
    "/chat",
    tags=["chat"],
    responses={
        **ERRORS,
        200: {
            "description": "The turn as JSON, or with `stream: true` as server-sent events: `session`, "
            "`delta` (repeated), `items`, `trace`, `done`; or `error`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        504: {"model": ErrorBody, "description": "The turn took longer than the server's turn timeout"},
    },
)
async def chat(body: ChatRequest, request: Request, state: State) -> Any:
    """One turn of the conversation: plan, tools, a streamed answer, item cards and the trace."""
    text = state.check_message(body.message)
    if body.session_id is None:  # the store and a user's profile file: off the event loop
        served = await run_in_threadpool(state.sessions.create, client_of(request), body.user)
        try:
            turn = await state.runner.start(served, text)
        except ApiError:  # a refused first turn leaves no session behind
            await run_in_threadpool(state.sessions.discard, served.id)
            raise
    else:
        served = await run_in_threadpool(state.sessions.get, body.session_id)
        if body.user is not None and body.user != served.user:
            raise ApiError(422, "user_mismatch", "this session belongs to another user id (or to none)")
        turn = await state.runner.start(served, text)
    if body.stream:
        return StreamingResponse(
            _sse_turn(state, served, turn), media_type="text/event-stream", headers=sse.HEADERS
        )
    result = await turn.result()
    return ChatResponse(
        session_id=served.id,
        reply=result.reply,
        items=state.item_cards(result.items),
        trace=sse.plain_json(result.trace.to_dict()),
    )


async def _sse_turn(state: ServerState, served: ServedSession, turn: RunningTurn) -> AsyncIterator[bytes]:
    yield sse.event("session", {"session_id": served.id})
    sent_items = False
    async for event in turn.events():
        if event.kind == "keepalive":
            yield sse.KEEPALIVE
        elif event.kind == "items" and not sent_items:  # before the reply: cards show while it streams
            cards = [c.model_dump() for c in state.item_cards(event.items or [])]
            yield sse.event("items", {"items": cards})
            sent_items = True
        elif event.kind == "delta":
            yield sse.event("delta", {"text": event.text})
        elif event.kind == "result":
            assert event.result is not None
            if not sent_items:
                cards = [c.model_dump() for c in state.item_cards(event.result.items)]
                yield sse.event("items", {"items": cards})
            yield sse.event("trace", event.result.trace.to_dict())
            yield sse.event("done", {"reply": event.result.reply})
        else:
            error = turn_error(event.error)
            yield sse.event("error", error_body(error.status, error.code, error.message))


@router.post("/recommend", tags=["recommend"], responses=ERRORS)
def recommend_items(body: RecommendRequest, state: State) -> RecommendResponse:
    """Recommendations for a history or a user straight from the recommender tools (no LLM)."""
    state.check_k(body.k)
    profile = state.agent.profile_store.load(body.user) if body.user is not None else None
    return recommend(state.agent, state.cards, body, profile)


@router.get("/items/search", tags=["items"], responses=ERRORS)
def search_items(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words of a title or a description.")],
    k: Annotated[int, Query(ge=1)] = 10,
) -> SearchResponse:
    """Title matches (substring, then fuzzy) followed by semantic matches from the item index."""
    return SearchResponse(query=q, items=search(state.agent, state.cards, q, state.check_k(k)))


@router.get("/items/{item_id}", tags=["items"], responses=ERRORS)
def get_item(item_id: str, state: State) -> ItemCard:
    catalog = state.agent.dataset.catalog
    pos = catalog.index_of([item_id], missing="mark")[0]
    if pos < 0:
        raise ApiError(404, "unknown_item", f"no item with id '{item_id[:64]}' in the catalog")
    return state.cards.card_at(int(pos))
