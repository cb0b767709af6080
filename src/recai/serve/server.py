"""``recai serve``: build the agent, warm it up, and run the app under uvicorn with JSON logs and a
graceful shutdown (on SIGINT/SIGTERM uvicorn stops accepting connections, lets open requests finish for
``shutdown_grace_s``, then the turn pool gets the same grace)."""

from __future__ import annotations

import logging
from typing import Any

from recai.agent import Agent
from recai.serve.settings import ServeSettings
from recai.serve.stand_in import SPEC as STAND_IN
from recai.serve.stand_in import stand_in_model

log = logging.getLogger("recai.serve")


def build_agent(data: str = "demo", llm: str | None = None, **kwargs: Any) -> Agent:
    """The agent for a dataset; ``llm`` is a model spec, or ``scripted:stand-in`` for no model at all."""
    chat = stand_in_model() if llm == STAND_IN else llm
    agent = Agent.from_dataset(data, llm=chat, **kwargs)
    agent.warm_up()
    return agent


def run(agent: Agent, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    from recai.serve.app import create_app

    app = create_app(agent, settings)
    log.info(
        "serving",
        extra={
            "fields": {
                "url": f"http://{host}:{port}/",
                "dataset": agent.dataset.name,
                "model": agent.llm.name,
                "auth": settings.token is not None,
                "workers": settings.workers,
                "trusted_proxies": settings.forwarded_allow_ips,
            }
        },
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON handler (configure_logging) formats uvicorn's lines too
        access_log=False,  # the Guard logs every request with its id and latency
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS), so any local
        # client could pick its own address and dodge the per-client limits; the app believes only
        # settings.forwarded_allow_ips (empty by default).
        proxy_headers=False,
    )
