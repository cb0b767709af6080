"""Plan-first: one LLM call turns the user's message into a plan (ordered tool calls) constrained to a
JSON schema built from the tools' own argument schemas, with demonstrations chosen per request.

Demonstrations are (request, plan) pairs in exactly the JSON the executor runs, checked against the
plan schema when loaded. They are picked by embedding similarity to the request (``dynamic``), by
string similarity when no encoder is available (``lexical``), or always the first n (``fixed``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from rapidfuzz import fuzz

from recai.agent.tools.base import Tool
from recai.data.grounding import parse_title, title_key
from recai.llm.base import ChatModel, Completion
from recai.llm.prompting import render_prompt

INTENTS = ("recommend", "question", "chat")

#: (temperature, seed) for the plans of the current context only; see :func:`planner_sampling`.
_SAMPLING: ContextVar[tuple[float, int | None] | None] = ContextVar("recai_planner_sampling", default=None)


@contextmanager
def planner_sampling(temperature: float, seed: int | None) -> Iterator[None]:
    """Plan with ``temperature`` and ``seed`` inside this block, in this thread (or batch item) only.

    Trajectory recording samples a retry of a failed conversation while other conversations run on the
    same agent at the same time; setting ``planner.temperature`` would change their plans too.
    """
    token = _SAMPLING.set((float(temperature), seed))
    try:
        yield
    finally:
        _SAMPLING.reset(token)


def plan_schema(tools: list[Tool], max_steps: int = 6) -> dict[str, Any]:
    """The JSON schema of a plan; each step's arguments are that tool's own schema.

    A step is written flat, ``{"tool": "filter", "where": "..."}``: five tokens fewer per step than the
    nested ``{"tool": ..., "args": {...}}`` form, which a plan may still use (older demonstrations and
    recorded trajectories) and which :func:`normalise_plan` turns every step into.
    """
    step_variants: list[dict[str, Any]] = []
    for tool in tools:
        params = tool.parameters
        step_variants.append(
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, **params.get("properties", {})},
                "required": ["tool", *params.get("required", [])],
                "additionalProperties": False,
            }
        )
        step_variants.append(
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, "args": params},
                "required": ["tool", "args"],
                "additionalProperties": False,
            }
        )
    titles = {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 5}
    return {
        "type": "object",
        "properties": {
            "intent": {"enum": list(INTENTS)},
            "steps": {"type": "array", "items": {"anyOf": step_variants}, "maxItems": max_steps},
            "feedback": {
                "type": "object",
                "properties": {
                    "liked": titles,
                    "disliked": titles,
                    "constraints": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 120},
                        "maxItems": 3,
                    },
                },
                # every member is optional: compact plans (the demonstrations' form, and what a distilled
                # planner learns to write) leave empty lists out, and normalise_plan fills them
                "additionalProperties": False,
            },
            "reply": {"type": "string", "maxLength": 600},
        },
        # feedback and reply are optional: most plans have neither, and every token the planner does not
        # have to write is about 30 ms on a 2-core CPU.
        "required": ["intent", "steps"],
        "additionalProperties": False,
    }


@dataclass
class Demonstration:
    """One (request, plan) example shown to the planner: small models plan far better from examples of the
    catalog's own plan shapes than from instructions alone.

    Attributes:
        request: the user's message.
        plan: the plan that answers it.
    """

    request: str
    plan: dict[str, Any]

    def render(self) -> str:
        return f"Message: {self.request}\nPlan: {compact_plan_json(self.plan)}"


def planner_card(catalog: Any, max_values: int = 3) -> str:
    """The table as the planner needs it, in few tokens: each column's type, range or frequent values,
    and what the log columns mean. The id column is left out (people never ask by id)."""
    from recai.data.schema import ColumnRole

    lines = [f"({len(catalog)} rows):"]
    items = catalog.items
    for spec in catalog.schema.columns:
        if spec.name not in items or spec.role in (ColumnRole.ID, ColumnRole.IGNORE):
            continue
        s = items[spec.name]
        desc = f"; {spec.description}" if spec.description else ""
        if spec.role is ColumnRole.TITLE:
            lines.append(f"- {spec.name} (text)")
        elif spec.role in (ColumnRole.NUMERIC, ColumnRole.POPULARITY) and s.notna().any():
            unit = f" {spec.unit}" if spec.unit else ""
            lines.append(f"- {spec.name} (number {_short(s.min())}-{_short(s.max())}{unit}{desc})")
        elif spec.role is ColumnRole.DATE and s.notna().any():
            lines.append(f"- {spec.name} (date {_short(s.min())} to {_short(s.max())}{desc})")
        elif spec.role in (ColumnRole.CATEGORICAL, ColumnRole.MULTI_CATEGORICAL):
            counts = catalog.column_values(spec.name)
            kind = "list" if spec.role is ColumnRole.MULTI_CATEGORICAL else "text"
            # a column of hundreds of names (people) is described by its size: examples would be noise
            shown = max_values if len(counts) <= 100 else 0
            more = f", ... {len(counts)} values" if len(counts) > shown else ""
            top = ", ".join(counts.index[:shown])
            lines.append(f"- {spec.name} ({kind}{desc}): {top}{more}".replace(": , ", ": "))
        else:
            lines.append(f"- {spec.name} (text{desc})")
    for column in catalog.log_columns():
        lines.append(f"- {column.name} (number): {column.description}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if hasattr(value, "date") and callable(value.date):
        return str(value.date())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flat_step(step: dict[str, Any]) -> dict[str, Any]:
    """A step as the planner writes it: the tool's name and its arguments side by side."""
    if "args" not in step:
        return dict(step)
    return {"tool": step.get("tool"), **(step.get("args") or {})}


def nested_step(step: dict[str, Any]) -> dict[str, Any]:
    """A step as the executor and the trace read it: ``{"tool": name, "args": {...}}``."""
    if "args" in step:
        return {"tool": step.get("tool"), "args": step["args"]}
    return {"tool": step.get("tool"), "args": {k: v for k, v in step.items() if k != "tool"}}


def compact_plan_json(plan: dict[str, Any]) -> str:
    """A plan as the planner should write it: flat steps, no empty optional fields, no spaces (fewer
    tokens to read and to decode)."""
    shown = {key: value for key, value in plan.items() if key not in ("feedback", "reply")}
    if "steps" in shown:
        shown["steps"] = [flat_step(s) for s in shown["steps"]]
    feedback = {key: value for key, value in (plan.get("feedback") or {}).items() if value}
    if feedback:
        shown["feedback"] = feedback
    if plan.get("reply"):
        shown["reply"] = plan["reply"]
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))


class Demonstrations:
    """A store of (request, plan) examples and the policy that picks them for a request.

    Args:
        examples: the examples.
        mode: how they are picked: "dynamic" (by embedding similarity), "lexical" (by string similarity)
            or "fixed" (the first ones, always).
        encoder: the text encoder "dynamic" picks with (without one, picking is "lexical").
    """

    def __init__(self, examples: list[Demonstration], *, mode: str = "dynamic", encoder: Any = None) -> None:
        if mode not in ("dynamic", "lexical", "fixed"):
            raise ValueError("mode must be 'dynamic', 'lexical' or 'fixed'")
        self.examples = examples
        self.mode = mode if (mode != "dynamic" or encoder is not None) else "lexical"
        self.encoder = encoder
        self._vectors: np.ndarray | None = None

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, schema: dict[str, Any] | None = None, **kwargs: Any
    ) -> Demonstrations:
        """Read a JSON list of {request, plan}; every plan must satisfy ``schema`` (the executor's format)."""
        if path is None:
            text = resources.files("recai.agent").joinpath("demonstrations", "films.json").read_text("utf-8")
            source = "recai/agent/demonstrations/films.json"
        else:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        raw = json.loads(text)
        examples = []
        validator = Draft202012Validator(schema) if schema is not None else None
        for i, entry in enumerate(raw):
            if validator is not None:
                errors = list(validator.iter_errors(entry["plan"]))
                if errors:
                    raise ValueError(
                        f"{source}: demonstration {i} ('{entry['request']}') is not a valid plan: "
                        f"{errors[0].message}"
                    )
            examples.append(Demonstration(entry["request"], entry["plan"]))
        return cls(examples, **kwargs)

    def select(self, request: str, n: int) -> list[Demonstration]:
        if n <= 0 or not self.examples:
            return []
        if self.mode == "fixed":
            return self.examples[:n]
        if self.mode == "dynamic":
            if self._vectors is None:
                self._vectors = self.encoder.encode([d.request for d in self.examples], "query")
            sims = self._vectors @ self.encoder.encode([request], "query")[0]
        else:
            sims = np.array([fuzz.token_set_ratio(request.lower(), d.request.lower()) for d in self.examples])
        order = np.argsort(-sims, kind="stable")[:n]
        return [self.examples[i] for i in sorted(order)]  # keep the file's order: stable prompts cache better


class Planner:
    """Turns a message (with dialogue and profile) into a validated plan, and replans once on request.

    The prompt is built for llama.cpp's prefix cache: everything that is the same for every turn on a
    catalog (instructions, schema card, tools, and the ``fixed`` demonstrations: one per plan shape,
    derived from the catalog) is the system message, read once and then served from the cache; the
    user message holds only what changes (more examples picked by similarity, the dialogue, the profile
    and the message), a few dozen tokens on a first turn.

    Args:
        llm: the model that plans.
        tools: the tools a plan may use (their cards are in the prompt, their schemas in the plan's).
        schema_card: the catalog's columns as the planner reads them.
        item_noun: what the items are called ("films").
        demonstrations: the examples picked per request.
        n_demonstrations: how many examples are picked per request.
        max_steps: most steps a plan may have.
        fixed: examples shown in every prompt (one per plan shape).
    """

    def __init__(
        self,
        llm: ChatModel,
        tools: list[Tool],
        *,
        schema_card: str,
        item_noun: str,
        demonstrations: Demonstrations,
        n_demonstrations: int = 3,
        max_steps: int = 6,
        fixed: list[Demonstration] | None = None,
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.schema = plan_schema(tools, max_steps)
        self.demonstrations = demonstrations
        self.n_demonstrations = n_demonstrations
        # Greedy by default; trajectory recording samples a retry of a failure through planner_sampling,
        # which overrides these for one conversation without touching the others.
        self.temperature = 0.0
        self.seed: int | None = None
        self.item_noun = item_noun
        self.schema_card = schema_card
        self.set_fixed([] if fixed is None else fixed)

    def set_fixed(self, fixed: list[Demonstration]) -> None:
        """The demonstrations every prompt shows (in the cached system message)."""
        self.fixed = list(fixed)
        self.system = render_prompt(
            "planner_system",
            package="recai.agent",
            item_noun=self.item_noun,
            schema_card=self.schema_card,
            tools="\n".join(t.card() for t in self.tools),
            examples="\n".join(d.render() for d in self.fixed) or "(see below)",
        )

    def messages(self, request: str, dialogue: str, profile: str) -> list[dict[str, str]]:
        picked = self.demonstrations.select(request, self.n_demonstrations)
        more = "\n".join(d.render() for d in picked)
        user = render_prompt(
            "planner_user",
            package="recai.agent",
            more_examples=f"Examples:\n{more}\n" if more else "",
            dialogue=dialogue or "(this is the first message)",
            profile=profile or "nothing yet",
            request=request,
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def plan(
        self, messages: list[dict[str, str]], max_tokens: int = 400
    ) -> tuple[dict[str, Any], Completion]:
        temperature, seed = _SAMPLING.get() or (self.temperature, self.seed)
        result = self.llm.complete(
            messages,
            response_format=self.schema,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            describe_schema=False,
        )
        return normalise_plan(result.parsed), result

    def replan(
        self, messages: list[dict[str, str]], previous: dict[str, Any], error: str
    ) -> tuple[dict[str, Any], Completion]:
        followup = [
            *messages,
            {"role": "assistant", "content": compact_plan_json(previous)},
            {"role": "user", "content": render_prompt("replan", package="recai.agent", error=error)},
        ]
        return self.plan(followup)


def said_in(title: str, text: str, *, threshold: float = 85.0) -> bool:
    """Whether a title the planner put in ``feedback`` was written in the conversation ``text``.

    Small models fill ``liked`` with famous titles nobody mentioned; storing those would poison the
    user's long-term profile, so feedback must be grounded in what was said. Title and text are read
    with the catalog grounder's normalisation (years, articles, accents, numbers); typos are tolerated."""
    main, alternatives, _year = parse_title(title)
    haystack = title_key(text)
    for core in filter(None, (title_key(t) for t in (main, *alternatives))):
        if re.search(rf"(?<!\w){re.escape(core)}(?!\w)", haystack):
            return True
        # Fuzzy only for longer titles: a short one would match half the words of any message.
        if len(core) >= 5 and fuzz.partial_ratio(core, haystack) >= threshold:
            return True
    return False


def said_feedback(plan: dict[str, Any], text: str) -> tuple[dict[str, Any], list[str]]:
    """The plan with feedback titles kept only when ``text`` mentions them, and the titles removed."""
    feedback = dict(plan.get("feedback") or {})
    removed: list[str] = []
    for kind in ("liked", "disliked"):
        titles = [str(t) for t in feedback.get(kind) or []]
        kept = [t for t in titles if said_in(t, text)]
        removed += [t for t in titles if t not in kept]
        if kind in feedback:
            feedback[kind] = kept
    return ({**plan, "feedback": feedback} if "feedback" in plan else dict(plan)), removed


def normalise_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Fill the optional fields, and small repairs that cannot change meaning: a chat plan runs no tools."""
    feedback = plan.get("feedback") or {}
    plan["feedback"] = {
        "liked": list(feedback.get("liked") or []),
        "disliked": list(feedback.get("disliked") or []),
        "constraints": list(feedback.get("constraints") or []),
    }
    plan["reply"] = plan.get("reply") or ""
    plan["steps"] = [nested_step(s) for s in plan.get("steps") or [] if isinstance(s, dict)]
    if plan["intent"] == "chat":
        plan["steps"] = []
    elif (
        plan["intent"] == "recommend"
        and plan["steps"]
        and all(s["tool"] == "sql_query" for s in plan["steps"])
    ):
        # a lookup and nothing that finds items: a question, answered from its rows (not a ranking of
        # the whole catalog appended to a lookup)
        plan["intent"] = "question"
    return plan
