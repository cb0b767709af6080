"""Request and response bodies of the agent's own API (the OpenAI-compatible ones live with their
router). Length limits that depend on settings are checked in the handlers, so the message names them.

Request bodies are strict: a JSON ``true`` is not the id 1 and ``"yes"`` is not a boolean, so a client's
mistake is a 422 rather than a guess. Their text must be valid Unicode: JSON can spell a lone surrogate
(``"\\ud800"``), which no reply, log line or file name can encode.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recai.serve.cards import ItemCard

UserId = Field(default=None, min_length=1, max_length=128, description="Long-term profile owner.")


def surrogate_at(value: Any) -> str | None:
    """Where in a parsed JSON value a string (or a key) holds a lone surrogate (``messages.2.content``;
    ``""`` for the whole value), or None. A loop, not recursion: a body may nest deeply."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                stack.append((where, key))
                stack.append((f"{where}.{key}".lstrip("."), inner))
        elif isinstance(item, list):
            stack.extend((f"{where}.{n}".lstrip("."), inner) for n, inner in enumerate(item))
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where
    return None


class RequestBody(BaseModel):
    """A JSON request body: strict types, and no lone surrogates anywhere in it."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = surrogate_at(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'} holds a lone surrogate; send valid Unicode text")
        return data


class Strict(RequestBody):
    """A request body that refuses unknown fields, so a misspelt option is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSession(Strict):
    """Body of ``POST /sessions``."""

    user: str | None = UserId


class ProfileView(BaseModel):
    """What a session has learnt about the user's taste."""

    liked: list[int | str] = Field(description="Catalog ids the user liked.")
    disliked: list[int | str] = Field(description="Catalog ids the user disliked.")


class TurnView(BaseModel):
    """One exchange of a session's dialogue."""

    user: str = Field(description="The user's message.")
    reply: str = Field(description="The agent's reply.")
    items: list[int | str] = Field(description="Catalog ids the reply recommended.")


class SessionView(BaseModel):
    """A session as ``GET /sessions/{id}`` shows it."""

    session_id: str = Field(description="The session's id.")
    user: str | None = Field(description="The long-term profile owner, or null for an anonymous session.")
    created: float = Field(description="When the session started (epoch seconds).")
    turns: list[TurnView] = Field(description="The dialogue, oldest first.")
    profile: ProfileView = Field(description="The user's taste as the session knows it.")


class ChatRequest(Strict):
    """Body of ``POST /chat``: one user message, in a new or an existing session."""

    message: str = Field(min_length=1, description="The user's message.")
    session_id: str | None = Field(default=None, max_length=64, description="Omit to start a new session.")
    user: str | None = UserId
    stream: bool = Field(default=False, description="Answer as server-sent events.")


class ChatResponse(BaseModel):
    """The agent's answer to one ``POST /chat`` message."""

    session_id: str = Field(description="The session the turn ran in (new when the request named none).")
    reply: str = Field(description="The agent's reply.")
    items: list[ItemCard] = Field(description="The items the reply recommends, in its order.")
    trace: dict[str, Any] = Field(description="How the turn ran: plan, tool calls, timings.")


class FeedbackRequest(Strict):
    """Body of ``POST /sessions/{id}/feedback``: the user's verdict on one item."""

    item_id: int | str = Field(description="The catalog id.")
    value: Literal["liked", "disliked", "none"] = Field(
        description="The verdict; none forgets an earlier one."
    )


class RecommendRequest(Strict):
    """Body of ``POST /recommend``: a one-shot recommendation, no session and no LLM."""

    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Use this user's profile and, if the dataset's log knows the user, their history.",
    )
    history: list[int | str] = Field(
        default_factory=list,
        max_length=200,
        description="Catalog ids or titles the user liked, oldest first.",
    )
    k: int = Field(default=10, ge=1, description="How many items to return.")
    where: str | None = Field(
        default=None, max_length=600, description="A SQL WHERE condition over the catalog's columns."
    )
    query: str | None = Field(
        default=None, min_length=2, max_length=300, description="A free-text description."
    )
    by: Literal["auto", "similar", "preference", "popularity"] = Field(
        default="auto",
        description="auto: similar to the history (item-CF and content) if there is one, else popularity.",
    )
    exclude_history: bool = Field(default=True, description="Leave the history's items out of the results.")


class ToolStep(BaseModel):
    """One tool call behind a ``/recommend`` answer, so a client can show how it was made."""

    tool: str = Field(description="The tool's name.")
    args: dict[str, Any] = Field(description="The arguments it was called with.")
    output_size: int | str = Field(description='Candidate items left after it, or "all" when unrestricted.')
    latency_ms: float = Field(description="How long it took.")
    facts: str = Field(description="What it found, in words.")


class RecommendResponse(BaseModel):
    """The answer of ``POST /recommend``."""

    items: list[ItemCard] = Field(description="The recommended items, best first.")
    steps: list[ToolStep] = Field(description="The tool calls that produced them.")
    history: list[int | str] = Field(description="The history as resolved to catalog ids.")


class SearchResponse(BaseModel):
    """The answer of ``GET /items/search``."""

    query: str = Field(description="The query as given.")
    items: list[ItemCard] = Field(description="The matching items, best first.")


class Health(BaseModel):
    """The answer of ``GET /health``: whether the server takes work, and what it serves."""

    status: Literal["ok", "shutting_down"] = Field(description="shutting_down: finishing running turns.")
    version: str = Field(description="recai's version.")
    dataset: str = Field(description="The dataset served.")
    items: int = Field(description="Items in its catalog.")
    model: str = Field(description="The chat model behind the agent.")
    sessions: int = Field(description="Live sessions.")
    turns_running: int = Field(description="Turns running in this process.")
    turn_capacity: int = Field(description="Turns this process runs at once.")
    max_message_chars: int = Field(description="The longest message /chat accepts.")
    auth: bool = Field(description="Whether API calls need a bearer token.")
