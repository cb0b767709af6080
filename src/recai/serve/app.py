"""The FastAPI application: the agent's API, the OpenAI-compatible endpoint and the web page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp

from recai import __version__
from recai.agent import Agent
from recai.serve import api, openai_api
from recai.serve.errors import error_response, install_error_handlers
from recai.serve.guard import Guard
from recai.serve.settings import ServeSettings
from recai.serve.state import ServerState
from recai.serve.stores import SessionBackend

# Model text is shown on the page; it is inserted as text, and this policy is the second line of defence.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_dir() -> Path:
    return Path(str(resources.files("recai.serve") / "static"))


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, but a refused preflight gets the JSON error body like every other error.

    Takes Starlette's ``CORSMiddleware`` arguments.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")
        return error_response(response.status_code, "cors_rejected", f"CORS preflight refused: {reason}")


def create_app(
    agent: Agent, settings: ServeSettings | None = None, *, store: SessionBackend | None = None
) -> FastAPI:
    """An app serving ``agent``; build the agent first (``Agent.from_dataset``) and warm it up. Sessions
    live in ``store``, else in the one ``settings.store`` names (default: this process's memory)."""
    settings = settings or ServeSettings()
    state = ServerState.build(agent, settings, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.runner.close(settings.shutdown_grace_s)  # uvicorn has already drained the connections
        state.sessions.backend.close()

    app = FastAPI(
        title="recai",
        version=__version__,
        summary="A conversational recommender agent over HTTP.",
        description="Sessions, streaming chat, recommendations and search without the LLM, and an "
        'OpenAI-compatible endpoint. Errors are `{"error": {"type", "code", "message"}}`.',
        lifespan=lifespan,
    )
    app.state.recai = state
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(openai_api.router)
    static = static_dir()

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=static), name="static")
    # Starlette runs the middleware added last first: the proxy headers (when a proxy is configured), then
    # the Guard (every request is counted, checked and logged, preflights included), then CORS.
    cors: Callable[[ASGIApp], ASGIApp] | None = None
    if settings.cors_origins:
        options: dict[str, Any] = {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST", "DELETE", "OPTIONS"],
            "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
            "expose_headers": ["X-Request-ID", "Retry-After"],
        }
        app.add_middleware(JsonCORSMiddleware, **options)
        cors = partial(JsonCORSMiddleware, **options)  # the Guard's refusals carry the CORS headers too

    app.add_middleware(Guard, settings=settings, cors=cors)
    if settings.forwarded_allow_ips:
        # Only these proxies are believed. uvicorn must not rewrite the client itself: run it with
        # proxy_headers=False (recai serve does), or it believes X-Forwarded-For from 127.0.0.1.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app
