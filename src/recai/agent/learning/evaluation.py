"""How well a planner model plans: validity, agreement with the teacher, and end-to-end success.

- **Validity.** ``schema_valid``: the model's output parses and satisfies the plan schema (backends
  without native constraints get the base class's validated retries); ``executable``: the plan also runs
  against the catalog through the agent's own executor without a tool error or an emptied bus.
- **Match against held-out teacher plans.** ``exact``: same intent and the same steps with the same
  arguments (arguments compared after light normalisation: case, spaces, SQL re-rendered by sqlglot);
  ``intent`` and ``tools`` (the same tool sequence, i.e. the same plan shape); ``step_precision``,
  ``step_recall`` and ``step_f1`` over (tool, arguments) steps as a multiset, and ``tool_f1`` over tool
  names alone.
- **End to end.** The agent with the planner model in place of its own plans simulated sessions with
  the evaluator's user simulator; the share of sessions that found the target is the success rate.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from recai.agent.agent import Agent
from recai.agent.learning.dataset import plan_shape, reference_plan
from recai.agent.planner import Planner, normalise_plan
from recai.evaluate.conversation import AgentSystem
from recai.gen.examples import GenExample
from recai.llm.base import ChatModel
from recai.llm.batch import BatchSettings
from recai.llm.structured import SchemaError

MATCH_KEYS = ("exact", "intent", "tools", "step_precision", "step_recall", "step_f1", "tool_f1")


def _norm_sql(text: str) -> str:
    import sqlglot

    try:
        return sqlglot.transpile(text, read="duckdb", write="duckdb")[0].lower()
    except Exception:  # not SQL this parser reads: compare it as plain text
        return " ".join(text.lower().split())


def _norm_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return _norm_sql(value) if key in ("sql", "where") else " ".join(value.lower().split())
    if isinstance(value, list):
        return tuple(_norm_value(key, v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm_value(k, v)) for k, v in value.items()))
    return value


def step_key(step: dict[str, Any]) -> tuple[str, Any]:
    """A step as a comparable value: its tool and normalised arguments."""
    args = step.get("args") or {}
    return str(step.get("tool")), tuple(sorted((k, _norm_value(k, v)) for k, v in args.items()))


def _f1(predicted: Counter[Any], reference: Counter[Any]) -> tuple[float, float, float]:
    if not predicted and not reference:
        return 1.0, 1.0, 1.0
    hit = sum((predicted & reference).values())
    precision = hit / sum(predicted.values()) if predicted else 0.0
    recall = hit / sum(reference.values()) if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def compare_plans(predicted: dict[str, Any] | None, reference: dict[str, Any]) -> dict[str, float]:
    """Agreement of a plan with the teacher's (all zeros when there is no plan)."""
    if predicted is None:
        return dict.fromkeys(MATCH_KEYS, 0.0)
    p_steps = [step_key(s) for s in predicted.get("steps") or []]
    r_steps = [step_key(s) for s in reference.get("steps") or []]
    precision, recall, f1 = _f1(Counter(p_steps), Counter(r_steps))
    _, _, tool_f1 = _f1(Counter(t for t, _ in p_steps), Counter(t for t, _ in r_steps))
    intent = predicted.get("intent") == reference.get("intent")
    return {
        "exact": float(intent and p_steps == r_steps),
        "intent": float(intent),
        "tools": float(plan_shape(predicted) == plan_shape(reference)),
        "step_precision": precision,
        "step_recall": recall,
        "step_f1": f1,
        "tool_f1": tool_f1,
    }


def planner_for(agent: Agent, llm: ChatModel) -> Planner:
    """A planner with the agent's tools, prompts and demonstrations but another model."""
    planner = copy.copy(agent.planner)
    planner.llm = llm
    return planner


def evaluate_plan(
    planner: Planner, agent: Agent, example: GenExample, *, max_tokens: int = 300
) -> dict[str, Any]:
    """One held-out example: the model's plan for the recorded prompt, its validity and its match."""
    reference = normalise_plan(reference_plan(example))
    record: dict[str, Any] = {"id": example.id, "shape": example.task, "reference": reference}
    try:
        plan, completion = planner.plan(example.prompt, max_tokens=max_tokens)
        record.update(plan=plan, attempts=completion.attempts, latency_s=round(completion.latency_s, 3))
        record["completion_tokens"] = completion.completion_tokens
    except SchemaError as exc:
        record.update(plan=None, error=f"schema: {exc}"[:500], raw=(exc.raw[-1] if exc.raw else "")[:500])
    executable = False
    if record["plan"] is not None:
        _, _, failure, _ = agent.execute_plan(record["plan"])
        executable = failure is None
        if failure is not None:
            record["error"] = failure[:500]
    record["scores"] = {
        "schema_valid": float(record["plan"] is not None),
        "executable": float(executable),
        **compare_plans(record["plan"], reference),
    }
    return record


def evaluate_planner(
    llm: ChatModel,
    agent: Agent,
    examples: Sequence[GenExample],
    *,
    max_tokens: int = 300,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    skip_ids: set[str] | frozenset[str] = frozenset(),
    progress: bool = True,
    batch: BatchSettings | None = None,
) -> list[dict[str, Any]]:
    """Plan every held-out example with ``llm`` (resumable through ``on_record`` / ``skip_ids``);
    ``batch`` sets how many are planned at once (records stay in example order) and a budget."""
    from recai.evaluate.generative import evaluate_pending

    planner = planner_for(agent, llm)
    return evaluate_pending(
        examples,
        lambda example: evaluate_plan(planner, agent, example, max_tokens=max_tokens),
        desc=f"plans by {llm.name}",
        unit="plan",
        on_record=on_record,
        skip_ids=skip_ids,
        progress=progress,
        batch=batch,
        models=[llm],
    )


def summarize_plans(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of every score, overall and per plan shape of the reference."""

    def means(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        keys = ("schema_valid", "executable", *MATCH_KEYS)
        return {k: round(float(np.mean([r["scores"][k] for r in rows])), 4) if rows else 0.0 for k in keys}

    shapes = sorted({r["shape"] for r in records})
    return {
        "examples": len(records),
        **means(records),
        "per_shape": {
            shape: {"n": len(rows), **means(rows)}
            for shape in shapes
            for rows in [[r for r in records if r["shape"] == shape]]
        },
    }


@contextmanager
def planner_system(agent: Agent, llm: ChatModel) -> Iterator[AgentSystem]:
    """``agent`` with ``llm`` as its planner (the responder unchanged), as the system that
    :meth:`~recai.evaluate.conversation.ConversationEvaluator.run` simulates sessions with, end to end;
    the agent's own planner is back when the block ends. Its demonstrations are built on entry, once,
    before sessions run side by side."""
    original = agent.planner
    agent.planner = planner_for(agent, llm)
    try:
        agent.ensure_demonstrations()
        yield AgentSystem(agent, name=f"agent-planner:{llm.name}")
    finally:
        agent.planner = original
