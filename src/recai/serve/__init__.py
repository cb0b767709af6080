"""Serving the agent: an HTTP API (sessions, streaming chat, recommendations and search without the LLM,
an OpenAI-compatible endpoint) and a web page, with limits, auth, CORS and structured logs.

Needs the ``serve`` extra (FastAPI and uvicorn). ``recai serve`` runs it; in code::

    from recai.serve import ServeSettings, create_app

    app = create_app(agent, ServeSettings(token="..."))

The names are imported on first access: ``recai serve --help`` imports this package without
FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".app": ["create_app"],
        ".settings": ["ServeSettings"],
    },
)

__all__ = ["ServeSettings", "create_app"]

if TYPE_CHECKING:
    from recai.serve.app import create_app
    from recai.serve.settings import ServeSettings
