"""What an operator tunes when putting the agent behind HTTP: limits, auth, CORS and the worker pool.

The defaults suit one small server shared by a handful of people; every limit answers with a 4xx (or a
503 when the server itself is full) and a JSON body that says which limit was hit.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeSettings(BaseModel):
    """Limits and switches of the HTTP server (see docs/serve.md). Unknown fields are an error, so a
    renamed setting (``workers`` is now ``turn_threads``) fails loudly instead of being ignored.

    Each field is documented by its description (the CLI and docs/serve.md show them).
    """

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, description="Bearer token every API call must send; None: open.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API.")
    max_message_chars: int = Field(default=2000, ge=1, description="Longest user message.")
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest request body.")
    max_sessions: int = Field(default=1000, ge=1, description="Live sessions on the server.")
    max_sessions_per_client: int = Field(default=50, ge=1, description="Live sessions per client address.")
    session_ttl_s: float = Field(default=3600.0, gt=0, description="Idle time after which a session ends.")
    max_turns_kept: int = Field(default=100, ge=1, description="Turns a session keeps (older ones drop).")
    rate_per_minute: float = Field(default=120.0, ge=0, description="Requests per client per minute; 0: off.")
    rate_burst: int = Field(default=40, ge=1, description="Requests a client may send at once.")
    turn_threads: int = Field(default=4, ge=1, description="Turns that run at the same time in one process.")
    queue: int = Field(default=16, ge=0, description="Turns that may wait for a worker; more are refused.")
    turn_timeout_s: float = Field(default=180.0, gt=0, description="Longest a client waits for one turn.")
    keepalive_s: float = Field(default=15.0, gt=0, description="SSE comment sent while a turn is silent.")
    shutdown_grace_s: float = Field(default=30.0, ge=0, description="Time running turns get to finish.")
    max_k: int = Field(default=50, ge=1, description="Most items /recommend and /items/search return.")
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a client has to send the whole request body (then 408)."
    )
    max_grounded_items: int = Field(
        default=50,
        ge=0,
        description="Listed items of earlier replies that /v1/chat/completions grounds back to the catalog, "
        "newest first; older lists are dropped.",
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="Proxy addresses (or networks, or '*') whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed; empty: none, so the client is the connection's peer address.",
    )
    store: str = Field(
        default="memory",
        description="Where sessions live: 'memory' (this process only), 'sqlite:///PATH' (worker processes "
        "on one machine) or 'redis://HOST:PORT/DB' (several machines).",
    )
    store_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for the session store (then 503 store_unavailable)."
    )
    model_name: str = Field(default="recai-agent", description="The agent's name on /v1/models.")
