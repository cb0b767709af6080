"""Plan-first: one LLM call turns the user's message into a plan (ordered tool calls) constrained to a
JSON schema built from the tools' own argument schemas, with demonstrations chosen per request.

Demonstrations are (request, plan) pairs in exactly the JSON the executor runs, checked against the
plan schema when loaded. They are picked by embedding similarity to the request (``dynamic``), by
string similarity when no encoder is available (``lexical``), or always the first n (``fixed``).
"""

from __future__ import annotations

import json
import re
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


def plan_schema(tools: list[Tool], max_steps: int = 6) -> dict[str, Any]:
    """The JSON schema of a plan; each step's arguments are that tool's own schema."""
    step_variants = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.name}, "args": tool.parameters},
            "required": ["tool", "args"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
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
    request: str
    plan: dict[str, Any]

    def render(self) -> str:
        return f"Message: {self.request}\nPlan: {compact_plan_json(self.plan)}"


def compact_plan_json(plan: dict[str, Any]) -> str:
    """A plan as the planner should write it: no empty optional fields, no spaces (fewer tokens to decode)."""
    shown = {key: value for key, value in plan.items() if key not in ("feedback", "reply")}
    feedback = {key: value for key, value in (plan.get("feedback") or {}).items() if value}
    if feedback:
        shown["feedback"] = feedback
    if plan.get("reply"):
        shown["reply"] = plan["reply"]
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))


class Demonstrations:
    """A store of (request, plan) examples and the policy that picks them."""

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
    """Turns a message (with dialogue and profile) into a validated plan, and replans once on request."""

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
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.schema = plan_schema(tools, max_steps)
        self.demonstrations = demonstrations
        self.n_demonstrations = n_demonstrations
        # Greedy by default; trajectory recording samples (temperature, seed) when it retries a failure.
        self.temperature = 0.0
        self.seed: int | None = None
        self.system = render_prompt(
            "planner_system",
            package="recai.agent",
            item_noun=item_noun,
            schema_card=schema_card,
            tools="\n".join(t.card() for t in tools),
        )

    def messages(self, request: str, dialogue: str, profile: str) -> list[dict[str, str]]:
        demos = "\n\n".join(d.render() for d in self.demonstrations.select(request, self.n_demonstrations))
        user = render_prompt(
            "planner_user",
            package="recai.agent",
            demonstrations=demos or "(none)",
            dialogue=dialogue or "(this is the first message)",
            profile=profile or "nothing yet",
            request=request,
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def plan(
        self, messages: list[dict[str, str]], max_tokens: int = 400
    ) -> tuple[dict[str, Any], Completion]:
        result = self.llm.complete(
            messages,
            response_format=self.schema,
            max_tokens=max_tokens,
            temperature=self.temperature,
            seed=self.seed,
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
    if plan["intent"] == "chat":
        plan["steps"] = []
    return plan
