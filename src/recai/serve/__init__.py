"""Serving the agent: an HTTP API (sessions, streaming chat, recommendations and search without the LLM,
an OpenAI-compatible endpoint) and a web page, with limits, auth, CORS and structured logs.

Needs the ``serve`` extra (FastAPI and uvicorn). ``recai serve`` runs it; in code::

    from recai.serve import ServeSettings, create_app

    app = create_app(agent, ServeSettings(token="..."))
"""

from recai.serve.app import create_app
from recai.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
