"""A Tool: a name, a description for the planner, a JSON schema for its arguments, and ``run``.

Arguments come from an LLM, so they are validated against the schema before the tool runs, and a
tool reports problems as :class:`ToolError` with a sentence the planner can act on when it replans.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from jsonschema import Draft202012Validator

from recai.agent.bus import CandidateBus
from recai.errors import RecaiError

if TYPE_CHECKING:
    from recai.agent.context import AgentContext


def arguments_schema(
    required: dict[str, Any] | None = None, optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON schema of a tool's arguments: an object with exactly these properties (``required``
    ones first), nothing else: the arguments are LLM output, and an unknown key is an error the planner
    hears about rather than a value silently ignored."""
    required = required or {}
    schema: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def titles_argument(max_items: int) -> dict[str, Any]:
    """The schema of a list of item names as people type them (1 to ``max_items``)."""
    return {
        "type": "array",
        "items": {"type": "string", "maxLength": 200},
        "minItems": 1,
        "maxItems": max_items,
    }


class ToolError(RuntimeError, RecaiError):
    """A tool could not do what the plan asked; the message is shown to the planner on replanning."""


@dataclass
class ToolResult:
    """What a tool tells the turn: facts for the responder (short text) and data for the trace."""

    facts: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Tool(ABC):
    """An operation the planner may put in a plan: a name, a description for the planner, a JSON schema
    for its arguments (validated before it runs: they come from an LLM) and ``run``, which narrows or
    re-scores the candidate bus. Tools get everything else from the turn's
    :class:`~recai.agent.context.AgentContext`.

    Attributes:
        name: the name plans use.
        description: one line for the planner's prompt.
        parameters: the JSON schema of the arguments.
        orders_candidates: the tool puts the candidates in their final order.
        facts_for_reply: the tool's facts are worth the responder's reading time.
    """

    name: str
    description: str
    parameters: ClassVar[dict[str, Any]]
    #: The tool puts the candidates in their final order, so a recommending plan that uses it is
    #: complete: the agent appends its default ``rank`` step only to plans without such a tool.
    orders_candidates: ClassVar[bool] = False
    #: The tool's facts are worth the responder's reading time (answers, corrections, how a title was
    #: read); bookkeeping ("ranked 28 candidates") stays in the trace only.
    facts_for_reply: ClassVar[bool] = True

    def validate(self, args: Any) -> dict[str, Any]:
        """Check ``args`` against the tool's schema; raise ToolError naming the first problem."""
        if not isinstance(args, dict):
            raise ToolError(f"{self.name}: arguments must be an object, got {type(args).__name__}")
        errors = sorted(Draft202012Validator(self.parameters).iter_errors(args), key=lambda e: list(e.path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.path) or "arguments"
            raise ToolError(f"{self.name}: {where}: {err.message}")
        return args

    @abstractmethod
    def run(self, args: dict[str, Any], bus: CandidateBus, ctx: AgentContext, step: int) -> ToolResult:
        """Do the work, narrowing or re-scoring ``bus`` in place."""

    def card(self) -> str:
        """One line for the planner prompt."""
        props = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", []))
        args = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        return f"- {self.name}({args}): {self.description}"
