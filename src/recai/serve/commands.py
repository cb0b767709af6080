"""`recai serve`: the HTTP API and web page. Registered in :mod:`recai.cli`.

FastAPI is imported only when the command runs (``recai --help`` imports every command module)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from recai.cli_options import (
    AgentLlmOpt,
    CommandError,
    DataOpt,
    DemonstrationsOpt,
    EncoderOpt,
    PlannerOpt,
    agent_settings,
    err,
)


def serve(
    data: DataOpt = "demo",
    llm: AgentLlmOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="RECAI_SERVE_TOKEN", help="Require 'Authorization: Bearer TOKEN' on the API."),
    ] = None,
    cors: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call the API from a browser (repeatable).")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Server processes on the port (more than 1 needs a sqlite or redis --store).")
    ] = 1,
    turn_threads: Annotated[int, typer.Option(help="Agent turns that run at the same time per process.")] = 4,
    turn_queue: Annotated[
        int,
        typer.Option(
            help="Turns that may wait for a turn thread, per process; more get 503 server_busy. Size it "
            "to the conversations you expect at once."
        ),
    ] = 16,
    store: Annotated[
        str | None,
        typer.Option(
            help="Where sessions live: memory, sqlite:///PATH or redis://HOST:PORT/DB (default: a SQLite "
            "file beside the dataset's cached indexes, so sessions survive a restart)."
        ),
    ] = None,
    rate_limit: Annotated[float, typer.Option(help="Requests per client per minute (0: no limit).")] = 120.0,
    max_sessions: Annotated[int, typer.Option(help="Live sessions the server keeps.")] = 1000,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For is "
            "believed ('*': any). Default: none, so limits key on the connection's address."
        ),
    ] = "",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    encoder: EncoderOpt = None,
    planner: PlannerOpt = None,
    demonstrations: DemonstrationsOpt = None,
) -> None:
    """Serve the agent: HTTP API (streaming chat, recommend, search, OpenAI-compatible) and a web page."""
    try:
        from recai.serve import server
        from recai.serve.logs import configure_logging
        from recai.serve.settings import ServeSettings
    except ImportError as exc:
        raise CommandError(f"{exc}; install the serve extra: pip install 'recai[serve]'") from None

    configure_logging(log_level)
    settings = ServeSettings(
        token=token,
        cors_origins=list(cors or []),
        turn_threads=turn_threads,
        queue=turn_queue,
        rate_per_minute=rate_limit,
        max_sessions=max_sessions,
        forwarded_allow_ips=[ip.strip() for ip in forwarded_allow_ips.split(",") if ip.strip()],
        store=store or "memory",
    )
    server.check_workers(workers, store)
    if store:  # a bad URL or an unreachable store fails here, naming --store
        server.check_store(store, settings.store_timeout_s)
    err.print("[dim]loading the agent (the first use of a dataset builds and caches its indexes) ...[/]")
    agent_kwargs = agent_settings(encoder, planner, demonstrations)
    agent = server.build_agent(data, llm, progress=True, **agent_kwargs)
    if not store:
        settings = settings.model_copy(update={"store": server.default_store(agent)})
    spec = server.WorkerSpec.of(data, llm, settings, agent_kwargs, log_level=log_level)
    err.print(
        f"[bold]recai[/] serving {escape(agent.dataset.name)} on http://{host}:{port}/ with {workers} "
        f"worker{'s' if workers > 1 else ''}, sessions in {escape(settings.store)} (Ctrl-C stops)"
    )
    if workers == 1:
        server.run(agent, settings, host=host, port=port)
    else:
        del agent  # the workers build their own from the caches it wrote
        server.run_workers(spec, host=host, port=port, workers=workers)
