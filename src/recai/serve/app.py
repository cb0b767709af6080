"""The FastAPI application: the agent's API, the OpenAI-compatible endpoint and the web page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from recai import __version__
from recai.agent import Agent
from recai.serve import api, openai_api
from recai.serve.errors import install_error_handlers
from recai.serve.guard import Guard
from recai.serve.settings import ServeSettings
from recai.serve.state import ServerState

# Model text is shown on the page; it is inserted as text, and this policy is the second line of defence.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_dir() -> Path:
    return Path(str(resources.files("recai.serve") / "static"))


def create_app(agent: Agent, settings: ServeSettings | None = None) -> FastAPI:
    """An app serving ``agent``; build the agent first (``Agent.from_dataset``) and warm it up."""
    settings = settings or ServeSettings()
    state = ServerState.build(agent, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.runner.close(settings.shutdown_grace_s)  # uvicorn has already drained the connections

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
    app.add_middleware(Guard, settings=settings)
    if settings.cors_origins:  # outermost, so preflights and errors carry the CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    return app
