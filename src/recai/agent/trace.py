"""What a turn did, step by step: the plans, each tool run, the critic's verdict and the answer.

The trace is typed while the turn builds it and becomes JSON only at the edges (the server's ``trace``
event, ``recai chat --trace``, saved benchmark results): :meth:`TurnTrace.to_dict` writes the same keys,
in the same order, that saved traces have always had, so files written before stay comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlanStep:
    """One plan of the turn (the first, or a replan).

    Attributes:
        plan: the plan as it ran: repaired, and with the default ``rank`` step the executor appends to a
            recommending plan without one (the trace shows this one).
        written: the plan as the planner wrote it, before any repair; tool learning trains on these.
    """

    plan: dict[str, Any]
    written: dict[str, Any]


@dataclass
class ToolStep:
    """One tool run of a plan.

    Attributes:
        plan: which plan of the turn the step belongs to (1 = the first).
        step: the step's number within its plan (from 1).
        tool: the tool the plan named (it may name one that does not exist).
        args: the arguments as the plan wrote them.
        input_size: candidates on the bus before the step.
        latency_s: how long the step took.
        output_size: candidates on the bus after the step (None when it failed).
        details: what the tool reported for the trace (None when it failed).
        error: why the step failed (None when it did not).
    """

    plan: int
    step: int
    tool: str | None
    args: Any
    input_size: int
    latency_s: float = 0.0
    output_size: int | None = None
    details: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "plan": self.plan,
            "step": self.step,
            "tool": self.tool,
            "args": self.args,
            "input_size": self.input_size,
        }
        if self.error is not None:
            record.update(error=self.error, latency_s=self.latency_s)
        else:
            record.update(output_size=self.output_size, latency_s=self.latency_s, details=self.details)
        return record


@dataclass
class CritiqueStep:
    """The critic's verdict on a drafted answer (reflection).

    Attributes:
        ok: whether the answer meets the request.
        problem: what is wrong with it (the replan is told this), or why there is no verdict.
    """

    ok: bool
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problem": self.problem}


@dataclass
class ResponseStep:
    """The answer: the items shown and what the grounding checks held back.

    Attributes:
        items: the recommended item ids, best first.
        items_at_s: seconds from the turn's start until the items were known (a client shows them then).
        contradicted: a drafted answer to a one-row lookup that did not name the row's item (replaced).
        grounding: what the grounding check removed or flagged in the streamed answer (None: no check ran).
    """

    items: list[Any]
    items_at_s: float
    contradicted: str | None = None
    grounding: dict[str, list[str]] | None = None


@dataclass
class TurnTrace:
    """Everything a turn did, for the server's trace event, ``recai chat --trace``, evaluation and tool
    learning.

    Attributes:
        request: the user's message.
        plans: the plans, first and replanned, in order.
        steps: every tool run of every plan, in order.
        replans: how many times the turn went back to the planner.
        planner_error: why the planner's output was unusable, when it was.
        repairs: what was changed in the first plan before it ran (and why).
        planner_tokens: the first planner call's (prompt, completion) tokens.
        feedback: what the plans' feedback did to the profile: ``constraints`` added, ``unsaid`` titles
            (never stored), ``liked``/``disliked`` titles stored.
        not_found: names the user gave that the catalog lacks, with the closest titles.
        critique: the critic's verdict, when reflection ran.
        response: the answer's items and grounding, once known.
        llm: usage per component (planner, responder, critic): calls, tokens, latency.
        llm_calls: LLM calls of the turn.
        latency_s: the turn's duration.
        llm_latency_s: the time spent in LLM calls.
    """

    request: str
    plans: list[PlanStep] = field(default_factory=list)
    steps: list[ToolStep] = field(default_factory=list)
    replans: int = 0
    planner_error: str | None = None
    repairs: list[str] = field(default_factory=list)
    planner_tokens: tuple[int, int] | None = None
    feedback: dict[str, list[str]] = field(default_factory=dict)
    not_found: dict[str, list[str]] | None = None
    critique: CritiqueStep | None = None
    response: ResponseStep | None = None
    llm: dict[str, dict[str, Any]] = field(default_factory=dict)
    llm_calls: int = 0
    latency_s: float = 0.0
    llm_latency_s: float = 0.0

    @property
    def intent(self) -> str | None:
        """The intent of the last plan (None before any)."""
        return self.plans[-1].plan["intent"] if self.plans else None

    def steps_of(self, plan: int) -> list[ToolStep]:
        """The tool runs of one plan (1 = the first)."""
        return [s for s in self.steps if s.plan == plan]

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data, with the keys (and their order) saved traces have."""
        out: dict[str, Any] = {
            "request": self.request,
            "plans": [p.plan for p in self.plans],
            "steps": [s.to_dict() for s in self.steps],
            "replans": self.replans,
        }
        if self.planner_error is not None:
            out["planner_error"] = self.planner_error
        if self.repairs:
            out["repairs"] = list(self.repairs)
        if self.planner_tokens is not None:
            out["planner_tokens"] = list(self.planner_tokens)
        if self.feedback:
            out["feedback"] = {kind: list(values) for kind, values in self.feedback.items()}
        if self.not_found is not None:
            out["not_found"] = dict(self.not_found)
        if self.critique is not None:
            out["critic"] = [self.critique.to_dict()]
        if self.response is not None:
            out["items_at_s"] = self.response.items_at_s
            if self.response.contradicted is not None:
                out["grounding_answer"] = {"contradicted": self.response.contradicted}
            if self.response.grounding is not None:
                out["grounding"] = dict(self.response.grounding)
        out["llm"] = self.llm
        out["llm_calls"] = self.llm_calls
        out["latency_s"] = self.latency_s
        out["llm_latency_s"] = self.llm_latency_s
        if self.response is not None:
            out["items"] = self.response.items
        return out

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (numpy numbers in tool details become plain numbers)."""
        return json.dumps(self.to_dict(), default=_plain, **kwargs)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
