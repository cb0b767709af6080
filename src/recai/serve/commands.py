"""`recai serve`: the HTTP API and web page. Registered in :mod:`recai.cli`.

FastAPI is imported only when the command runs (``recai --help`` imports every command module)."""

from __future__ import annotations

from dataclasses import dataclass
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
    option_group,
)
from recai.serve.settings import ServeSettings

_SETTINGS = ServeSettings()  # the defaults of the options that set a ServeSettings field
HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(envvar="RECAI_SERVE_TOKEN", help="Require 'Authorization: Bearer TOKEN' on the API."),
]
CorsOpt = Annotated[
    list[str] | None, typer.Option(help="An origin allowed to call the API from a browser (repeatable).")
]
WorkersOpt = Annotated[
    int, typer.Option(help="Server processes on the port (more than 1 needs a sqlite or redis --store).")
]
TurnThreadsOpt = Annotated[int, typer.Option(help="Agent turns that run at the same time per process.")]
TurnQueueOpt = Annotated[
    int,
    typer.Option(
        help="Turns that may wait for a turn thread, per process; more get 503 server_busy. Size it "
        "to the conversations you expect at once."
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        help="Where sessions live: memory, sqlite:///PATH or redis://HOST:PORT/DB (default: a SQLite "
        "file beside the dataset's cached indexes, so sessions survive a restart)."
    ),
]
RateLimitOpt = Annotated[float, typer.Option(help="Requests per client per minute (0: no limit).")]
MaxSessionsOpt = Annotated[int, typer.Option(help="Live sessions the server keeps.")]
ForwardedAllowIpsOpt = Annotated[
    str,
    typer.Option(
        help="Comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For is "
        "believed ('*': any). Default: none, so limits key on the connection's address."
    ),
]
LogLevelOpt = Annotated[str, typer.Option(help="debug, info, warning or error.")]


@dataclass(frozen=True)
class ServerOptions:
    """How `recai serve` runs its server: where it listens, its processes and logging, and the limits
    it turns into :class:`~recai.serve.settings.ServeSettings` (defaults from there).

    Attributes:
        host: the address to listen on.
        port: the port to listen on.
        token: the bearer token every API call must send; None: open.
        cors: the origins allowed to call the API from a browser.
        workers: server processes on the port (more than 1 needs a sqlite or redis store).
        turn_threads: agent turns that run at the same time per process.
        turn_queue: turns that may wait for a turn thread, per process.
        store: where sessions live; None: a SQLite file beside the dataset's cached indexes.
        rate_limit: requests per client per minute (0: no limit).
        max_sessions: live sessions the server keeps.
        forwarded_allow_ips: comma-separated proxies whose X-Forwarded-For is believed.
        log_level: debug, info, warning or error.
    """

    host: HostOpt = "127.0.0.1"
    port: PortOpt = 8000
    token: TokenOpt = None
    cors: CorsOpt = None
    workers: WorkersOpt = 1
    turn_threads: TurnThreadsOpt = _SETTINGS.turn_threads
    turn_queue: TurnQueueOpt = _SETTINGS.queue
    store: StoreOpt = None
    rate_limit: RateLimitOpt = _SETTINGS.rate_per_minute
    max_sessions: MaxSessionsOpt = _SETTINGS.max_sessions
    forwarded_allow_ips: ForwardedAllowIpsOpt = ""
    log_level: LogLevelOpt = "info"

    def settings(self) -> ServeSettings:
        """The server's settings (the store ``memory`` until the default one is known)."""
        return ServeSettings(
            token=self.token,
            cors_origins=list(self.cors or []),
            turn_threads=self.turn_threads,
            queue=self.turn_queue,
            rate_per_minute=self.rate_limit,
            max_sessions=self.max_sessions,
            forwarded_allow_ips=[ip.strip() for ip in self.forwarded_allow_ips.split(",") if ip.strip()],
            store=self.store or "memory",
        )


@option_group(ServerOptions, "server")
def serve(
    data: DataOpt = "demo",
    llm: AgentLlmOpt = None,
    *,
    server: ServerOptions,
    encoder: EncoderOpt = None,
    planner: PlannerOpt = None,
    demonstrations: DemonstrationsOpt = None,
) -> None:
    """Serve the agent: HTTP API (streaming chat, recommend, search, OpenAI-compatible) and a web page."""
    try:
        from recai.serve import server as http_server
        from recai.serve.logs import configure_logging
    except ImportError as exc:
        raise CommandError(f"{exc}; install the serve extra: pip install 'recai[serve]'") from None

    configure_logging(server.log_level)
    settings = server.settings()
    http_server.check_workers(server.workers, server.store)
    if server.store:  # a bad URL or an unreachable store fails here, naming --store
        http_server.check_store(server.store, settings.store_timeout_s)
    err.print("[dim]loading the agent (the first use of a dataset builds and caches its indexes) ...[/]")
    agent_kwargs = agent_settings(encoder, planner, demonstrations)
    agent = http_server.build_agent(data, llm, progress=True, **agent_kwargs)
    if not server.store:
        settings = settings.model_copy(update={"store": http_server.default_store(agent)})
    spec = http_server.WorkerSpec.of(data, llm, settings, agent_kwargs, log_level=server.log_level)
    err.print(
        f"[bold]recai[/] serving {escape(agent.dataset.name)} on http://{server.host}:{server.port}/ with "
        f"{server.workers} worker{'s' if server.workers > 1 else ''}, sessions in {escape(settings.store)} "
        "(Ctrl-C stops)"
    )
    if server.workers == 1:
        http_server.run(agent, settings, host=server.host, port=server.port)
    else:
        del agent  # the workers build their own from the caches it wrote
        http_server.run_workers(spec, host=server.host, port=server.port, workers=server.workers)
