"""The agent's tools: typed, schema-validated operations over the catalog and the candidate bus.

:class:`Tool` is the base class (a name, a description, a JSON schema for the arguments, ``run``); the
built-in tools are the SQL ones (:class:`InfoQueryTool`, :class:`FilterTool`), retrieval
(:class:`SemanticSearchTool`, :class:`SimilarItemsTool`, :class:`CandidateStoreTool`), follow-ups
(:class:`PreviousResultsTool`) and ranking (:class:`RankTool`); ``recai.agent.agent.default_tools()``
gives one of each.
"""

from recai.agent.tools.base import Tool, ToolError, ToolResult
from recai.agent.tools.previous import PreviousResultsTool
from recai.agent.tools.ranking import RankTool
from recai.agent.tools.retrieval import CandidateStoreTool, SemanticSearchTool, SimilarItemsTool
from recai.agent.tools.sql import FilterTool, InfoQueryTool

__all__ = [
    "CandidateStoreTool",
    "FilterTool",
    "InfoQueryTool",
    "PreviousResultsTool",
    "RankTool",
    "SemanticSearchTool",
    "SimilarItemsTool",
    "Tool",
    "ToolError",
    "ToolResult",
]
