"""``recai serve``: build the agent, warm it up, and run the app under uvicorn with JSON logs and a
graceful shutdown (on SIGINT/SIGTERM uvicorn stops accepting connections, lets open requests finish for
``shutdown_grace_s``, then the turn pool gets the same grace).

With ``workers`` > 1, uvicorn runs that many processes on one port. Each builds its own agent from a
:class:`WorkerSpec` (passed in the environment, since uvicorn spawns fresh interpreters), and they share
sessions through the store (SQLite or Redis; the in-process store is refused). The parent builds the
agent once before the workers start, so the indexes cached under ``RECAI_HOME`` are written by one
process and only read by the workers, which then start fast.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from recai.agent import Agent
from recai.serve.settings import ServeSettings
from recai.serve.stand_in import SPEC as STAND_IN
from recai.serve.stand_in import stand_in_model
from recai.serve.stores import open_store, shared

log = logging.getLogger("recai.serve")
WORKER_ENV = "RECAI_SERVE_WORKER"


def build_agent(data: str = "demo", llm: str | None = None, **kwargs: Any) -> Agent:
    """The agent for a dataset; ``llm`` is a model spec, or ``scripted:stand-in`` for no model at all."""
    chat = stand_in_model() if llm == STAND_IN else llm
    agent = Agent.from_dataset(data, llm=chat, **kwargs)
    agent.warm_up()
    return agent


def default_store(agent: Agent) -> str:
    """``recai serve``'s store when none is named: a SQLite file beside the agent's cached indexes and
    profiles (one per dataset), so sessions survive a restart and workers can share them."""
    return f"sqlite:///{(agent.resources.cache_dir / 'sessions.sqlite3').resolve()}"


def check_workers(workers: int, store: str | None) -> None:
    """Several processes need a store they can all reach; say so before anything starts. ``store`` None
    is the default (SQLite), which they can share."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers})")
    if workers > 1 and store is not None and not shared(store):
        raise ValueError(
            f"--store {store} keeps sessions inside one process, so --workers {workers} could not "
            "share them; use --store sqlite:///PATH (one machine) or --store redis://HOST:PORT/DB"
        )


def check_store(url: str, timeout_s: float = 5.0) -> None:
    """Open the store at ``url`` and ask it one question: a bad URL or an unreachable store is a
    ValueError naming ``--store`` before the server starts (later outages are 503s)."""
    from recai.serve.errors import ApiError

    backend = open_store(url, timeout_s=timeout_s)
    try:
        backend.count(ttl_s=1.0)
    except ApiError as exc:
        raise ValueError(f"--store {url}: {exc.message}") from None
    finally:
        backend.close()


def _uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    return {
        "log_config": None,  # our JSON handler (configure_logging) formats uvicorn's lines too
        "access_log": False,  # the Guard logs every request with its id and latency
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s) or None,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS), so any local
        # client could pick its own address and dodge the per-client limits; the app believes only
        # settings.forwarded_allow_ips (empty by default).
        "proxy_headers": False,
    }


def run(agent: Agent, settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``agent`` in this process."""
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
                "workers": 1,
                "turn_threads": settings.turn_threads,
                "store": settings.store.partition(":")[0],
                "trusted_proxies": settings.forwarded_allow_ips,
            }
        },
    )
    uvicorn.run(app, host=host, port=port, **_uvicorn_options(settings))


@dataclass
class WorkerSpec:
    """What a worker process needs to build the same agent and app as the parent (JSON-safe).

    Attributes:
        data: The dataset to serve.
        llm: The chat model spec, or None for the stand-in.
        settings: The ServeSettings fields.
        agent_settings: The AgentSettings fields, or None for the defaults.
        planner_llm: A separate planner model spec, if any.
        log_level: The workers' log level.
        torch_threads: Torch threads per worker, if set.
    """

    data: str
    llm: str | None
    settings: dict[str, Any]
    agent_settings: dict[str, Any] | None = None
    planner_llm: str | None = None
    log_level: str = "info"
    torch_threads: int | None = None

    @classmethod
    def of(
        cls, data: str, llm: str | None, settings: ServeSettings, agent_kwargs: dict[str, Any], **kw: Any
    ) -> WorkerSpec:
        agent_settings = agent_kwargs.get("settings")
        planner = agent_kwargs.get("planner_llm")
        if planner is not None and not isinstance(planner, str):
            raise ValueError("--workers > 1 needs the planner as a model spec, not a loaded model")
        return cls(
            data=data,
            llm=llm,
            settings=settings.model_dump(),
            agent_settings=dataclasses.asdict(agent_settings) if agent_settings is not None else None,
            planner_llm=planner,
            **kw,
        )

    def agent_kwargs(self) -> dict[str, Any]:
        from recai.agent.context import AgentSettings

        out: dict[str, Any] = {}
        if self.agent_settings is not None:
            out["settings"] = AgentSettings(**self.agent_settings)
        if self.planner_llm is not None:
            out["planner_llm"] = self.planner_llm
        return out


def run_workers(spec: WorkerSpec, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 2) -> None:
    """Serve with ``workers`` processes on one port. Build (and drop) the agent in this process first,
    so its caches are on disk and the workers only read them; each worker builds its own agent."""
    import uvicorn

    settings = ServeSettings(**spec.settings)
    check_workers(workers, settings.store)
    gc.collect()  # the parent's agent, dropped by the caller: the supervisor stays small
    log.info(
        "serving",
        extra={
            "fields": {
                "url": f"http://{host}:{port}/",
                "dataset": spec.data,
                "model": spec.llm,
                "auth": settings.token is not None,
                "workers": workers,
                "turn_threads": settings.turn_threads,
                "store": settings.store.partition(":")[0],
                "trusted_proxies": settings.forwarded_allow_ips,
            }
        },
    )
    if spec.torch_threads is None:  # workers share the cores: one worker's encoder need not take them all
        spec.torch_threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ[WORKER_ENV] = json.dumps(dataclasses.asdict(spec))
    uvicorn.run(
        "recai.serve.server:worker_app", factory=True, workers=workers, host=host, port=port,
        **_uvicorn_options(settings),
    )  # fmt: skip


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the agent and the app from the parent's WorkerSpec."""
    from recai.serve.app import create_app
    from recai.serve.logs import configure_logging

    raw = os.environ.get(WORKER_ENV)
    if raw is None:
        raise RuntimeError(f"{WORKER_ENV} is not set: start workers with `recai serve --workers N`")
    spec = WorkerSpec(**json.loads(raw))
    configure_logging(spec.log_level)
    if spec.torch_threads:
        try:
            import torch

            torch.set_num_threads(spec.torch_threads)
        except ImportError:
            pass
    agent = build_agent(spec.data, spec.llm, progress=False, **spec.agent_kwargs())
    return create_app(agent, ServeSettings(**spec.settings))
