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
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSession(Strict):
    user: str | None = UserId


class ProfileView(BaseModel):
    liked: list[int | str]
    disliked: list[int | str]


class TurnView(BaseModel):
    user: str
    reply: str
    items: list[int | str]


class SessionView(BaseModel):
    session_id: str
    user: str | None
    created: float
    turns: list[TurnView]
    profile: ProfileView


class ChatRequest(Strict):
    message: str = Field(min_length=1, description="The user's message.")
    session_id: str | None = Field(default=None, max_length=64, description="Omit to start a new session.")
    user: str | None = UserId
    stream: bool = Field(default=False, description="Answer as server-sent events.")


class ChatResponse(BaseModel):
    session_id: str
    reply: str
    items: list[ItemCard]
    trace: dict[str, Any]


class FeedbackRequest(Strict):
    item_id: int | str
    value: Literal["liked", "disliked", "none"]


class RecommendRequest(Strict):
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
    k: int = Field(default=10, ge=1)
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
    exclude_history: bool = True


class ToolStep(BaseModel):
    tool: str
    args: dict[str, Any]
    output_size: int | str
    latency_ms: float
    facts: str


class RecommendResponse(BaseModel):
    items: list[ItemCard]
    steps: list[ToolStep]
    history: list[int | str]


class SearchResponse(BaseModel):
    query: str
    items: list[ItemCard]


class Health(BaseModel):
    status: Literal["ok", "shutting_down"]
    version: str
    dataset: str
    items: int
    model: str
    sessions: int
    turns_running: int
    turn_capacity: int
    max_message_chars: int
    auth: bool
