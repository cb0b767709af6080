"""The gate every HTTP request passes: request ids, bearer-token auth, per-client rate limits, a body
size cap, a deadline for the body, and one structured log line per request.

It is plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed responses pass through untouched.
The page, its static files, ``/health`` and the OpenAPI schema are public; everything else needs the
token when one is set, whatever the method. The one exception is a CORS preflight when CORS is on:
browsers send those without credentials. Preflights still count against the rate limit.

Clients are told apart by their address (``scope["client"]``): the connection's peer, unless
``forwarded_allow_ips`` names the proxy in front, whose ``X-Forwarded-For`` then counts (see
:func:`recai.serve.app.create_app`). The body must arrive within ``body_timeout_s``, so a client that
announces more bytes than it sends cannot hold a connection and a worker.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recai.serve.errors import error_response
from recai.serve.settings import ServeSettings

log = logging.getLogger("recai.serve")

PUBLIC_PATHS = frozenset(
    {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/favicon.ico"}
)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/static/")


class RateLimiter:
    """A token bucket per client, so one client cannot starve the others.

    Args:
        per_minute: Requests a client may make per minute on average; 0 turns limiting off.
        burst: Requests a client may make at once.
        max_clients: Buckets kept before full ones are forgotten.
    """

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = per_minute / 60.0, float(burst), max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_clients:  # forget clients whose buckets are full again
            full = [c for c, (t, seen) in self._buckets.items() if t + (now - seen) * self.rate >= self.burst]
            for c in full:
                del self._buckets[c]
        return 0.0


class Guard:
    """The outermost layer of the app (inside the proxy-header one), so that every request, CORS
    preflights included, is counted and logged: it checks the bearer token and the rate limit, tags the
    request with an id and writes the access log.

    Args:
        app: The app inside.
        settings: The token and rate limits.
        cors: Wraps the Guard's own refusals in the app's CORS layer, so a page on an allowed origin can
            read them.
    """

    def __init__(
        self, app: ASGIApp, settings: ServeSettings, cors: Callable[[ASGIApp], ASGIApp] | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
        self._token = settings.token.encode() if settings.token else None
        self._cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = (headers.get("x-request-id") or uuid.uuid4().hex[:16])[:64]
        scope.setdefault("state", {})["request_id"] = request_id
        client = scope["client"][0] if scope.get("client") else "unknown"
        path: str = scope["path"]
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            rejection = self._check(scope, headers, client, path)
            if rejection is not None:
                if self._cors is not None and not self._preflight(scope, headers):
                    rejection = self._cors(rejection)
                await rejection(scope, receive, send_with_id)
            else:
                await self.app(scope, self._capped(receive), send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None)  # the template: session ids stay out of logs
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "path": route or path[:200],
                "status": status,
                "ms": round(1000 * (time.perf_counter() - started), 1),
                "client": client,
            }
            log.info("request", extra={"fields": fields})

    def _check(self, scope: Scope, headers: Headers, client: str, path: str) -> Any:
        if is_public(path):
            return None
        if self._token is not None and not self._preflight(scope, headers):
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
                return error_response(
                    401,
                    "unauthorized",
                    "this server needs a bearer token: send 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        wait = self.limiter.check(client)
        if wait > 0:
            return error_response(
                429,
                "rate_limited",
                f"too many requests from this client (limit {self.settings.rate_per_minute:g} per minute, "
                f"bursts of {self.settings.rate_burst}); retry in {wait:.1f} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return error_response(413, "body_too_large", self._too_large())
        return None

    def _preflight(self, scope: Scope, headers: Headers) -> bool:
        """A CORS preflight, which the CORS layer inside answers (only when CORS is on)."""
        return (
            bool(self.settings.cors_origins)
            and scope["method"] == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.settings.max_body_bytes} bytes"

    def _capped(self, receive: Receive) -> Receive:
        """Count the body as it arrives (chunked bodies carry no Content-Length), and give the whole body
        ``body_timeout_s``. Once the body is complete, ``receive`` only waits for the client to leave
        (a streamed reply listens for that), which must not time out."""
        limit, timeout_s = self.settings.max_body_bytes, self.settings.body_timeout_s
        deadline = time.monotonic() + timeout_s
        seen, complete = 0, False

        async def capped() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(  # FastAPI passes HTTPException on, to the JSON error handler
                    408,
                    f"the request body did not arrive within {timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, self._too_large())
                complete = not message.get("more_body", False)
            else:  # http.disconnect
                complete = True
            return message

        return capped
