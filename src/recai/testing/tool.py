"""The agent Tool conformance suite, and :func:`discover_tools` (every Tool class recai defines). Needs
pytest.

A tool's test class provides a ``tool`` fixture (an instance) and a ``tool_args`` fixture (arguments a
planner could send it); the suite runs it in an :class:`~recai.agent.context.AgentContext` over the
eight-film dataset of :mod:`recai.testing.data` with the bag-of-words encoder (override ``context`` to
use your own)::

    from recai.testing import ToolSuite

    class TestMyTool(ToolSuite):
        @pytest.fixture
        def tool(self) -> Tool:
            return MyTool()

        @pytest.fixture
        def tool_args(self) -> dict:
            return {"query": "crime films"}
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from recai.agent.bus import CandidateBus
from recai.agent.context import AgentContext, AgentResources, AgentSettings
from recai.agent.tools.base import Tool, ToolError, ToolResult
from recai.data import Dataset
from recai.testing.data import film_dataset
from recai.testing.fakes import BagOfWordsEncoder

__all__ = ["ToolSuite", "discover_tools", "film_context"]

_TOOL_CLASS = re.compile(r"^class \w+\([^)]*\bTool\b[^)]*\):", re.M)


def discover_tools() -> list[type[Tool]]:
    """Every concrete :class:`Tool` subclass defined in recai, sorted by module and name.

    Each module whose source defines a class deriving from ``Tool`` is imported (nothing else is, so
    heavy pillars stay unloaded); a tool added to any pillar is found without a list to update.
    """
    import recai

    root = Path(recai.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if _TOOL_CLASS.search(path.read_text(encoding="utf-8")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            importlib.import_module(".".join(p for p in parts if p != "__init__"))
    found: set[type[Tool]] = set()
    stack = list(Tool.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        ours = cls.__module__.startswith("recai.") and not cls.__module__.startswith("recai.testing")
        if ours and not inspect.isabstract(cls):
            found.add(cls)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def film_context(dataset: Dataset | None = None) -> AgentContext:
    """An agent context over ``dataset`` (default: the eight films) with the bag-of-words encoder and a
    previous answer (Pulp Fiction, Reservoir Dogs, Heat and both Godfathers; the first two shown)."""
    dataset = film_dataset() if dataset is None else dataset
    settings = AgentSettings(retrieve_k=5, sasrec_budget_s=2.0)
    context = AgentContext(AgentResources(dataset, settings, progress=False, encoder=BagOfWordsEncoder()))
    ids = [i for i in (10, 11, 12, 16, 17) if i in set(context.catalog.ids)]
    context.previous_candidates = context.catalog.index_of(ids).tolist()
    context.previous_shown = context.previous_candidates[:2]
    return context


class ToolSuite:
    """Mix into a test class that defines ``tool`` and ``tool_args`` fixtures.

    Every tool: a sound schema with no extra properties, a card naming it, validation errors that name
    the tool, and a run that returns a :class:`ToolResult` and only narrows or reorders the bus. It has
    no settings: the ``tool`` and ``tool_args`` fixtures (and ``context``, the eight-film agent context
    unless overridden) are all it needs.
    """

    @pytest.fixture
    def context(self) -> AgentContext:
        return film_context()

    def test_schema_and_card(self, tool: Tool) -> None:
        Draft202012Validator.check_schema(tool.parameters)
        assert tool.parameters.get("type") == "object"
        assert tool.parameters["additionalProperties"] is False
        assert re.fullmatch(r"[a-z][a-z0-9_]*", tool.name), f"tool names are snake_case: {tool.name!r}"
        assert tool.name in tool.card() and len(tool.description) > 20

    def test_bad_arguments_name_the_problem(self, tool: Tool, tool_args: dict[str, Any]) -> None:
        with pytest.raises(ToolError, match=tool.name):
            tool.validate({"unexpected": 1})
        with pytest.raises(ToolError, match="must be an object"):
            tool.validate(["not", "an", "object"])
        assert tool.validate(tool_args) == tool_args

    def test_it_only_narrows_or_reorders(
        self, tool: Tool, tool_args: dict[str, Any], context: AgentContext
    ) -> None:
        catalog = context.catalog
        bus = CandidateBus(len(catalog))
        bus.restrict(list(range(min(6, len(catalog)))), step=0, tool="setup")
        before = set(bus.candidates().tolist())
        result = tool.run(tool.validate(tool_args), bus, context, step=1)
        assert isinstance(result, ToolResult) and isinstance(result.facts, str)
        assert isinstance(result.details, dict)
        assert set(bus.candidates().tolist()) <= before

    def test_scores_on_the_bus_stay_sorted_when_it_orders(
        self, tool: Tool, tool_args: dict[str, Any], context: AgentContext
    ) -> None:
        if not tool.orders_candidates:
            pytest.skip("the tool does not claim to order the candidates")
        bus = CandidateBus(len(context.catalog))
        bus.restrict(list(range(min(6, len(context.catalog)))), step=0, tool="setup")
        tool.run(tool.validate(tool_args), bus, context, step=1)
        scores = bus.current_scores()
        assert all(a >= b for a, b in itertools.pairwise(scores))
