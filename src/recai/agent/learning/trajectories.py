"""Planning trajectories: what the planner saw, what it wrote, what happened, and whether it worked.

A trajectory record is one conversation (a templated request or a simulated session), appended to a
:class:`~recai.evaluate.runs.RunFolder` (``records.jsonl``, flushed and fsync'd per record; a rerun with
the same config skips the done ones, so recording resumes). Each record holds its turns:

- ``request``, ``dialogue`` and ``messages`` (the planner prompt exactly as the planner model got it);
- ``plans``: every plan the planner wrote in that turn (the first, and a replan if any), as written,
  each with the ``error`` its execution ran into (a tool error or an emptied bus; None when it ran);
- ``planner_error`` (the planner's output failed the schema), ``intent``, ``items``;
- ``success``: for a templated turn, its declarative check held; for a simulated session, the simulated
  user found the target in that session.

A templated conversation that failed can be retried with a sampling planner (``attempts``); each attempt
is a record of its own, tied together by ``conversation``.

:class:`TurnRecorder` is an agent turn hook, so any agent (the CLI chat, the server) can log its turns
the same way.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from recai.agent.agent import Agent, TurnEvent
from recai.agent.learning.requests import TemplateRequest, check_turn
from recai.agent.planner import planner_sampling
from recai.agent.trace import TurnTrace
from recai.data.errors import plain_value
from recai.evaluate.conversation import AgentSystem, ConversationEvaluator, ConversationSample
from recai.evaluate.generative import evaluate_pending
from recai.evaluate.runs import RunFolder
from recai.llm.batch import BatchSettings, run_batch


def plan_errors(trace: TurnTrace) -> list[str | None]:
    """For each plan of a turn, why its execution failed (None when it ran through)."""
    out: list[str | None] = []
    for number in range(1, len(trace.plans) + 1):
        steps = trace.steps_of(number)
        error = next((f"step {s.step} ({s.tool}): {s.error}" for s in steps if s.error is not None), None)
        if error is None and steps:
            last = steps[-1]
            if last.output_size == 0 and last.tool != "sql_query":
                error = f"step {last.step} ({last.tool}) left no candidates"
        out.append(error)
    if trace.planner_error and out:
        out[-1] = out[-1] or f"planner: {trace.planner_error}"
    return out


def turn_record(event: TurnEvent) -> dict[str, Any]:
    """The JSON form of one turn for the trajectory log."""
    trace = event.trace
    errors = plan_errors(trace)
    if trace.planner_error and len(event.written_plans) == 1 and not trace.replans:
        errors = [f"planner: {trace.planner_error}"]  # the first plan was a fallback, not the model's
    return {
        "request": event.request,
        "dialogue": event.dialogue,
        "messages": event.planner_messages,
        "plans": [
            {"plan": plan, "error": errors[i] if i < len(errors) else None}
            for i, plan in enumerate(event.written_plans)
        ],
        "planner_error": trace.planner_error,
        "replans": trace.replans,
        "intent": trace.intent,
        "items": [plain_value(i) for i in event.result.items],
        "latency_s": trace.latency_s,
    }


class TurnRecorder:
    """An agent turn hook that collects turn records; ``take()`` hands them over and starts afresh.

    Inside :meth:`collecting`, the turns of that thread (or batch item) go to a list of their own, so
    several conversations recorded at once on one agent never take each other's turns.

    Args:
        sink: receives every turn record at once instead, for logging a live agent.
    """

    def __init__(self, sink: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.sink = sink
        self._turns: list[tuple[TurnEvent, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._local: ContextVar[list[tuple[TurnEvent, dict[str, Any]]] | None] = ContextVar(
            f"recai_turn_recorder_{id(self)}", default=None
        )

    def __call__(self, event: TurnEvent) -> None:
        record = turn_record(event)
        if self.sink is not None:
            self.sink(record)
            return
        local = self._local.get()
        if local is not None:  # only this context appends to it: no lock needed
            local.append((event, record))
            return
        with self._lock:
            self._turns.append((event, record))

    def take(self) -> list[tuple[TurnEvent, dict[str, Any]]]:
        with self._lock:
            turns, self._turns = self._turns, []
        return turns

    @contextmanager
    def collecting(self) -> Iterator[list[tuple[TurnEvent, dict[str, Any]]]]:
        """The turns made in this context (thread, batch item) while the block runs, in order."""
        turns: list[tuple[TurnEvent, dict[str, Any]]] = []
        token = self._local.set(turns)
        try:
            yield turns
        finally:
            self._local.reset(token)


def _attached(agent: Agent) -> TurnRecorder:
    recorder = TurnRecorder()
    agent.turn_hooks.append(recorder)
    return recorder


def _attempt_seed(request_id: str, attempt: int) -> int:
    """A seed per (request, attempt), stable across runs and processes (unlike ``hash``)."""
    return zlib.crc32(f"{request_id}@{attempt}".encode()) % 2**31


def record_templates(
    agent: Agent,
    requests: Sequence[TemplateRequest],
    run: RunFolder,
    *,
    attempts: int = 1,
    temperature: float = 0.7,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> int:
    """Run each templated conversation on a fresh session and append its trajectory; returns how many
    conversations were recorded now (done ones are skipped).

    The first attempt plans greedily. With ``attempts > 1`` a conversation that failed is run again with
    the planner sampling (``temperature``, a seed per request and attempt) until one attempt succeeds or
    the attempts are spent: rejection sampling, so the shapes a greedy teacher gets wrong (refinements,
    the user's own candidates) still reach the training data. Every attempt is its own record
    (``template:<id>`` then ``template:<id>@2``...) with the same ``conversation``, so the split keeps
    them on one side; raising ``attempts`` later resumes where the earlier run stopped.

    ``batch`` sets how many conversations run at once on the agent (default: what its models allow) and
    a budget; each conversation has its own session, sampling settings and turn list, and the records
    are appended in request order, so the run folder is the same at any concurrency."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if not 0.0 < temperature <= 2.0 and attempts > 1:
        raise ValueError(f"a retry must sample: temperature must be in (0, 2], got {temperature}")
    succeeded: dict[str, bool] = {}
    for record in run.records():
        conversation = str(record.get("conversation") or record["id"])
        succeeded[conversation] = succeeded.get(conversation, False) or bool(record.get("success"))
    done = run.done_ids()

    def record_id(request: TemplateRequest, attempt: int) -> str:
        return f"template:{request.id}" + (f"@{attempt}" if attempt > 1 else "")

    todo = [r for r in requests if any(record_id(r, a) not in done for a in range(1, attempts + 1))]
    greedy = (agent.planner.temperature, agent.planner.seed)
    recorder = _attached(agent)

    def one(request: TemplateRequest) -> list[dict[str, Any]]:
        """Every attempt made now at one conversation (its own key of ``succeeded`` only)."""
        conversation = f"template:{request.id}"
        records = []
        for attempt in range(1, attempts + 1):
            if succeeded.get(conversation):
                break
            if record_id(request, attempt) in done:
                continue
            sampling = greedy if attempt == 1 else (temperature, _attempt_seed(request.id, attempt))
            session = agent.session()
            turns = []
            for turn in request.turns:
                with planner_sampling(*sampling), recorder.collecting() as collected:
                    result = agent.chat(session, turn.text)
                (event, record), *_ = collected
                record["success"] = check_turn(turn.check, agent.dataset.catalog, event.trace, result.items)
                turns.append(record)
            success = all(t["success"] for t in turns)
            succeeded[conversation] = success
            records.append(
                {
                    "id": record_id(request, attempt),
                    "conversation": conversation,
                    "source": "template",
                    "shape": request.shape,
                    "teacher": agent.planner_llm.name,
                    "attempt": attempt,
                    "temperature": sampling[0],
                    "turns": turns,
                    "success": success,
                    "scores": {"success": float(success)},
                }
            )
        return records

    def append(records: list[dict[str, Any]]) -> None:
        for record in records:
            run.append(record)

    batch = batch or BatchSettings()
    agent.ensure_demonstrations()  # once, before conversations run side by side
    try:
        made = run_batch(
            todo,
            one,
            concurrency=batch.concurrency_for(agent.planner_llm, agent.llm),
            on_result=append,
            budget=batch.budget,
            desc="templated requests",
            unit="conversation",
            progress=progress,
        )
    finally:
        agent.turn_hooks.remove(recorder)
    return sum(len(records) for records in made)


def record_simulated(
    agent: Agent,
    evaluator: ConversationEvaluator,
    samples: Sequence[ConversationSample],
    run: RunFolder,
    *,
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> int:
    """Simulated-user sessions with the evaluator's :class:`UserSimulator` (the agent as the system
    under test); every turn of a session is marked with that session's success. ``batch`` sets how
    many sessions run at once (each on its own :class:`AgentSystem`) and a budget."""
    recorder = _attached(agent)

    def one(sample: ConversationSample) -> dict[str, Any]:
        with recorder.collecting() as collected:
            session = evaluator.run_session(AgentSystem(agent), sample)
        success = session["success_turn"] is not None
        turns = [record for _, record in collected]
        for record in turns:
            record["success"] = success
        return {
            "id": f"simulated:{sample.id}",
            "source": "simulator",
            "shape": None,
            "teacher": agent.planner_llm.name,
            "turns": turns,
            "success": success,
            "target": session["target"],
            "errors": session["errors"],
            "scores": {"success": float(success)},
        }

    done = {f"{s.id}" for s in samples if f"simulated:{s.id}" in run.done_ids()}
    agent.ensure_demonstrations()  # once, before sessions run side by side
    try:
        records = evaluate_pending(
            samples,
            one,
            desc="simulated sessions",
            unit="session",
            on_record=run.append,
            skip_ids=done,
            progress=progress,
            batch=batch,
            models=[agent.planner_llm, agent.llm, evaluator.simulator.llm],
        )
    finally:
        agent.turn_hooks.remove(recorder)
    return len(records)
