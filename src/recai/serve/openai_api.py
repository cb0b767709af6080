"""The agent as an OpenAI-compatible "model": ``POST /v1/chat/completions`` (streaming too) and
``GET /v1/models``, so any chat client that speaks that API can talk to it.

The endpoint is stateless, as the API is: each request carries the whole conversation. Earlier user and
assistant messages become the agent's dialogue; the last message must be the user's and is the turn. The
agent's own prompts stay in charge, so system messages are ignored. The reply is the agent's answer
followed by the recommended items as a numbered list under ``Recommended:``; when that message comes back
in a later request, the list is read back (grounded to the catalog), so "the second one" still works.
The request's ``user`` field, when set, names the long-term profile.

Grounding a listed title is fuzzy matching over the catalog, so a request could ask for thousands of
them: only the newest ``max_grounded_items`` listed lines are grounded (older lists are dropped, and a
line longer than a title can be is skipped), and that work runs on a worker thread, never on the event
loop that every other request shares.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from recai.agent.memory import Turn
from recai.serve import sse
from recai.serve.api import ERRORS
from recai.serve.errors import ApiError, error_body
from recai.serve.schemas import RequestBody
from recai.serve.sessions import ServedSession
from recai.serve.state import ServerState, client_of, server_state
from recai.serve.turns import RunningTurn, turn_error

ITEMS_HEADER = "Recommended:"
_LISTED = re.compile(r"\s*\d{1,3}\.\s+(\S.*)")
MAX_LISTED_LINE = 300  # characters: longer than any title, so not one of our listed items

State = Annotated[ServerState, Depends(server_state)]
router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: str = Field(description='The part\'s kind; only "text" is read.')
    text: str | None = Field(default=None, description="The text of a text part.")


class ChatMessage(BaseModel):
    """One message of an OpenAI chat request."""

    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(description="Who wrote it.")
    content: str | list[ContentPart] | None = Field(default=None, description="The text, or its parts.")


class StreamOptions(BaseModel):
    """Options of a streamed answer."""

    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = Field(default=False, description="End the stream with a usage chunk.")


class CompletionRequest(RequestBody):
    """The fields the agent uses; sampling options (temperature, top_p, ...) are accepted and ignored.
    The fields it uses are strict (``"stream": "yes"`` is a 422)."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str = Field(description="The agent's name (see /v1/models); another name is a 404.")
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=200,
        description="The conversation so far; the last user message is answered.",
    )
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    stream_options: StreamOptions | None = Field(default=None, description="Options of a streamed answer.")
    user: str | None = Field(
        default=None, min_length=1, max_length=128, description="Long-term profile owner."
    )


class ModelCard(BaseModel):
    """One model of ``GET /v1/models``."""

    id: str = Field(description="The agent's name.")
    object: Literal["model"] = "model"
    created: int = Field(description="When the server started (epoch seconds).")
    owned_by: str = "recai"


class ModelList(BaseModel):
    """The answer of ``GET /v1/models``: the one agent this server runs."""

    object: Literal["list"] = "list"
    data: list[ModelCard] = Field(description="The models.")


@router.get("/models", responses=ERRORS)
def list_models(state: State) -> ModelList:
    return ModelList(data=[ModelCard(id=state.settings.model_name, created=int(_STARTED))])


_STARTED = time.time()


@router.post(
    "/chat/completions",
    responses={
        **ERRORS,
        200: {
            "description": "A chat.completion object, or with `stream: true` chat.completion.chunk events "
            "ending in `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def chat_completions(body: CompletionRequest, request: Request, state: State) -> Any:
    """One agent turn over an OpenAI-style conversation."""
    if body.model != state.settings.model_name:
        raise ApiError(
            404,
            "model_not_found",
            f"there is no model '{body.model[:80]}'; this server has '{state.settings.model_name}'",
        )
    conversation = [(m.role, _text(m.content)) for m in body.messages if m.role in ("user", "assistant")]
    if not conversation or conversation[-1][0] != "user":
        raise ApiError(422, "invalid_request", "messages: the last message must be the user's")
    text = state.check_message(conversation[-1][1])
    # both read the disk or the catalog: off the event loop
    served = await run_in_threadpool(state.sessions.create, client_of(request), body.user)
    try:
        await run_in_threadpool(_restore_dialogue, state, served, conversation[:-1])
        turn = await state.runner.start(served, text)
    except BaseException:  # refused, failed or cancelled: the one-request session must not linger
        state.sessions.discard(served.id)
        raise
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _chunks(state, served, turn, completion_id, created, include_usage),
            media_type="text/event-stream",
            headers=sse.HEADERS,
        )
    try:
        result = await turn.result()
    finally:
        state.sessions.discard(served.id)
    content = result.reply + _listing(state, result.items)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": state.settings.model_name,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": _usage(result.trace.llm),
        "recai": {"items": result.items},
    }


async def _chunks(
    state: ServerState,
    served: ServedSession,
    turn: RunningTurn,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse.event(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": state.settings.model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            },
        )

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for event in turn.events():
            if event.kind == "keepalive":
                yield sse.KEEPALIVE
            elif event.kind == "items":
                continue  # the OpenAI format has no cards: the items come as a listing after the text
            elif event.kind == "delta":
                yield chunk({"content": event.text})
            elif event.kind == "result" and event.result is not None:
                listing = _listing(state, event.result.items)
                if listing:
                    yield chunk({"content": listing})
                yield chunk({}, "stop")
                if include_usage:
                    usage = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": state.settings.model_name,
                        "choices": [],
                        "usage": _usage(event.result.trace.llm),
                    }
                    yield sse.event(None, usage)
            else:
                error = turn_error(event.error)
                yield sse.event(None, error_body(error.status, error.code, error.message))
        yield sse.event(None, "[DONE]")
    finally:
        state.sessions.discard(served.id)


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text or "" for part in content if part.type == "text")


def _listing(state: ServerState, items: list[Any]) -> str:
    if not items:
        return ""
    catalog = state.agent.dataset.catalog
    lines = [f"{n}. {catalog.title_of(i)}" for n, i in enumerate(items, start=1)]
    return f"\n\n{ITEMS_HEADER}\n" + "\n".join(lines)


def _restore_dialogue(state: ServerState, served: ServedSession, history: list[tuple[str, str]]) -> None:
    """Earlier (user, assistant) pairs become the session's dialogue; listed items are grounded back, the
    newest ``max_grounded_items`` of them (CPU work: call it on a worker thread)."""
    pairs: list[tuple[str, str, str]] = []  # (user text, reply, the reply's listing)
    pending: str | None = None
    for role, text in history[-2 * state.settings.max_turns_kept :]:
        if role == "user":
            pending = text if pending is None else f"{pending}\n{text}"
            continue
        reply, _, listed = text.partition(f"\n\n{ITEMS_HEADER}\n")
        pairs.append((pending or "", reply.strip(), listed))
        pending = None
    budget = state.settings.max_grounded_items
    grounded: list[list[Any]] = []
    for _, _, listed in reversed(pairs):  # the newest lists matter most ("the second one")
        ids, tried = _ground_listing(state, listed, budget)
        budget -= tried
        grounded.append(ids)
    catalog = state.agent.dataset.catalog
    for (user, reply, _), ids in zip(pairs, reversed(grounded), strict=True):
        served.session.dialogue.add(
            Turn(user=user, reply=reply, items=[catalog.title_of(i) for i in ids], item_ids=ids)
        )


def _ground_listing(state: ServerState, listed: str, budget: int) -> tuple[list[Any], int]:
    """Catalog ids of a listing's numbered lines (unknown titles are skipped), and how many lines were
    tried: at most ``budget``, since grounding is fuzzy matching over the whole catalog."""
    catalog = state.agent.dataset.catalog
    ids: list[Any] = []
    tried = 0
    for line in listed.splitlines():
        if tried >= budget:
            break
        match = _LISTED.fullmatch(line) if len(line) <= MAX_LISTED_LINE else None
        if match is None:
            continue
        tried += 1
        grounding = catalog.ground(match.group(1).strip())
        if grounding.resolved:
            item = grounding.item_id
            ids.append(item.item() if hasattr(item, "item") else item)
    return ids, tried


def _usage(llm: dict[str, dict[str, Any]]) -> dict[str, int]:
    prompt = sum(int(v.get("prompt_tokens", 0)) for v in llm.values())
    completion = sum(int(v.get("completion_tokens", 0)) for v in llm.values())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
