"""Running agent turns for many sessions at once without letting them see each other.

Two things make that safe:

- **A context per turn.** The agent runs every turn on its own
  :class:`recai.agent.context.AgentContext` (the session's profile; the heavy resources are the agent's), so
  turns of different sessions on one Agent never see each other's profile.
- **A lease per session.** A turn holds its session's lease in the session store, so a second turn of
  the same session, on this worker or any other, is refused with 409; the lease goes back when the turn
  ends, and expires if the worker dies.
- **A bounded thread pool.** Turns run on their own pool of ``turn_threads`` threads with at most
  ``queue`` more waiting; anything beyond is refused at once with 503, so a slow LLM call fills this pool
  and nothing else: health checks, search and ``/recommend`` keep their own threads.

Text chunks travel from the worker thread to the request's event loop through an asyncio queue, after
the turn's items, which are known before the reply is written (a client shows them while it streams).
When a client goes away or a turn runs past ``turn_timeout_s``, the worker is told to stop at its next
chunk.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from recai.agent import Agent, TurnResult
from recai.errors import RecaiError
from recai.serve.errors import ApiError
from recai.serve.sessions import ServedSession, SessionStore
from recai.serve.settings import ServeSettings

log = logging.getLogger("recai.serve")
#: what a finished turn reports: its session, its result and how many seconds it took
TurnDone = Callable[[ServedSession, TurnResult, float], None]


@dataclass
class TurnEvent:
    """One thing a running turn tells the request that waits for it (streamed as SSE, or collected).

    Attributes:
        kind: "items", "delta", "result", "error" or "keepalive".
        text: A "delta"'s text.
        result: A "result"'s whole turn.
        error: An "error"'s exception.
        items: An "items" event's recommended ids, known before the reply is written.
    """

    kind: str
    text: str = ""
    result: TurnResult | None = None
    error: BaseException | None = None
    items: list[Any] | None = None


class TurnTimeoutError(TimeoutError, RecaiError):
    """A turn ran past ``turn_timeout_s``; answered as 504 ``turn_timeout``."""


class RunningTurn:
    """The event-loop side of one turn: iterate :meth:`events` for deltas, then a result or an error.

    Args:
        loop: The event loop the request waits on.
        timeout_s: The longest the turn may take.
        keepalive_s: How often a silent turn sends a keep-alive event.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float, keepalive_s: float) -> None:
        self._loop = loop
        self.timeout_s, self.keepalive_s = timeout_s, keepalive_s
        self._queue: asyncio.Queue[TurnEvent] = asyncio.Queue()
        self.cancelled = threading.Event()

    def emit(self, event: TurnEvent) -> None:
        """Called from the worker thread."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self.cancelled.set()

    async def events(self) -> AsyncIterator[TurnEvent]:
        """Deltas (and keep-alive ticks while the turn is silent), then one result or error."""
        timeout_s, keepalive_s = self.timeout_s, self.keepalive_s
        deadline = self._loop.time() + timeout_s
        try:
            while True:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    yield TurnEvent(
                        "error", error=TurnTimeoutError(f"the turn took longer than {timeout_s:g} s")
                    )
                    return
                try:
                    event = await asyncio.wait_for(self._queue.get(), min(keepalive_s, remaining))
                except asyncio.TimeoutError:
                    yield TurnEvent("keepalive")
                    continue
                yield event
                if event.kind in ("result", "error"):
                    return
        finally:
            self.cancelled.set()  # a no-op after the result; otherwise the worker stops at its next chunk

    async def result(self) -> TurnResult:
        """The whole turn at once (non-streaming callers); errors as ApiError."""
        async for event in self.events():
            if event.kind == "result" and event.result is not None:
                return event.result
            if event.kind == "error":
                raise turn_error(event.error)
        raise ApiError(500, "turn_failed", "the turn ended without a result")


def turn_error(error: BaseException | None) -> ApiError:
    """The HTTP error for a failed turn: 504 for a timeout, the error itself for an ApiError (the store
    was unavailable when the turn was saved: 503), 500 for anything else."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, TurnTimeoutError):
        return ApiError(504, "turn_timeout", str(error))
    return ApiError(500, "turn_failed", f"the turn failed: {type(error).__name__}: {error}")


class TurnRunner:
    """Admits turns up to ``turn_threads + queue`` and runs them on a private thread pool of
    ``turn_threads`` threads, so slow LLM turns never block the event loop; each turn holds its session's
    lease in ``sessions`` while it runs.

    Args:
        agent: The agent that runs the turns.
        sessions: Where the turns' sessions live.
        settings: The server's settings; ``turn_threads``, ``queue``, ``turn_timeout_s`` and
            ``keepalive_s`` size the pool and time each turn (their defaults and meaning live there).
        on_done: Called with (session, result, seconds) when a turn succeeds.
    """

    def __init__(
        self, agent: Agent, sessions: SessionStore, settings: ServeSettings, on_done: TurnDone | None = None
    ) -> None:
        self.agent, self.sessions = agent, sessions
        self.timeout_s, self.keepalive_s = settings.turn_timeout_s, settings.keepalive_s
        self.workers, self.capacity = settings.turn_threads, settings.turn_threads + settings.queue
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="recai-turn")
        self._lock = threading.Condition()
        self._admitted = 0
        self._closing = False
        self._on_done = on_done

    @property
    def admitted(self) -> int:
        """Turns running or waiting for a worker."""
        return self._admitted

    @property
    def closing(self) -> bool:
        return self._closing

    async def start(self, served: ServedSession, text: str) -> RunningTurn:
        """Admit and start a turn, or raise 503 (server full, shutting down, or the store unavailable)
        or 409 (session busy)."""
        with self._lock:
            if self._closing:
                raise ApiError(
                    503, "shutting_down", "the server is shutting down", headers={"Retry-After": "5"}
                )
            if self._admitted >= self.capacity:
                raise ApiError(
                    503,
                    "server_busy",
                    f"all {self.workers} workers are busy and {self.capacity - self.workers} turns are "
                    "waiting; try again shortly",
                    headers={"Retry-After": "2"},
                )
            self._admitted += 1
        try:  # the lease is store I/O: off the event loop
            await run_in_threadpool(self.sessions.begin_turn, served)
        except BaseException:
            self._release_slot()
            raise
        turn = RunningTurn(asyncio.get_running_loop(), self.timeout_s, self.keepalive_s)
        context = contextvars.copy_context()  # usage scopes and components stay per turn
        try:
            self._executor.submit(context.run, self._work, served, text, turn)
        except RuntimeError:  # the executor has shut down
            self._finished(served)
            raise ApiError(503, "shutting_down", "the server is shutting down") from None
        return turn

    def _work(self, served: ServedSession, text: str, turn: RunningTurn) -> None:
        started = time.perf_counter()
        final: TurnEvent | None = None
        try:
            if turn.cancelled.is_set():  # the client left while the turn was queued
                return
            stream = self.agent.chat_stream(
                served.session, text, on_items=lambda ids: turn.emit(TurnEvent("items", items=list(ids)))
            )
            chunks = iter(stream)
            try:
                for chunk in chunks:
                    if turn.cancelled.is_set():
                        break
                    turn.emit(TurnEvent("delta", text=chunk))
            finally:
                chunks.close()  # stops the agent's generator here, in its own thread and context
            if stream.result is not None:
                if self._on_done is not None:
                    self._on_done(served, stream.result, time.perf_counter() - started)
                final = TurnEvent("result", result=stream.result)
            else:
                log.info("turn cancelled", extra={"fields": {"session": served.id[:8]}})
        except Exception as exc:  # the model or a tool broke: tell the client, keep the server up
            log.exception("turn failed", extra={"fields": {"session": served.id[:8]}})
            final = TurnEvent("error", error=exc)
        finally:
            self._finished(served)  # first, so the session is free by the time its client hears back
            if final is not None:
                turn.emit(final)

    def _finished(self, served: ServedSession) -> None:
        self.sessions.end_lease(served)
        self._release_slot()

    def _release_slot(self) -> None:
        with self._lock:
            self._admitted -= 1
            self._lock.notify_all()

    def close(self, grace_s: float) -> None:
        """Refuse new turns, give running ones ``grace_s`` to finish, then stop the pool."""
        deadline = time.monotonic() + grace_s
        with self._lock:
            self._closing = True
            while self._admitted and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))
            left = self._admitted
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("turn pool closed", extra={"fields": {"unfinished_turns": left}})
